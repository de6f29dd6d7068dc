"""What ``faap compare``'s options may be: the sort keys and output formats, and the refusal of
contradictory options and unwritable outputs before any run is read (torch-free)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from faapkit.errors import ConfigError, FaapError

if TYPE_CHECKING:
    from faapkit.plugins import FaapPluginManager

SORT_KEYS = {
    "ap_gap": "AP_gap",
    "ar_gap": "AR_gap",
    "ap_change": "AP_gap_change",
    "ar_change": "AR_gap_change",
    "epoch": "epoch",
    "run": "run",
}
FORMATS = ("auto", "table", "tsv")


def check_options(
    choices: tuple[str, str, str],
    format_: str,
    epochs: tuple[bool, bool],
    outputs: tuple[Path | None, Path | None],
    force: bool,
    plugins: Callable[[], FaapPluginManager],
) -> None:
    """Refuse contradictory options and unwritable outputs before any run is read (``choices``:
    ``--sort``, ``--metric``, ``--select-rule``; ``epochs``: ``--all-epochs``, ``--evaluated-only``;
    ``outputs``: ``--csv``, ``--plot``). ``plugins`` loads the plugin manager, asked only when an
    output file exists (a run's file is never replaced)."""
    sort, metric, rule = choices
    csv_out, plot = outputs
    from faapkit.train.selection import SelectRule

    # option values: configuration errors (exit 2), like every other command's
    if rule not in get_args(SelectRule):
        raise ConfigError(f"--select-rule must be {' or '.join(get_args(SelectRule))}, not {rule!r}")
    if sort not in SORT_KEYS:
        raise ConfigError(f"--sort must be one of {', '.join(SORT_KEYS)}, not {sort!r}")
    if metric not in ("ap_gap", "ar_gap"):
        raise ConfigError(f"--metric must be ap_gap or ar_gap, not {metric!r}")
    if format_ not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {format_!r}")
    if all(epochs):
        raise ConfigError("--all-epochs and --evaluated-only contradict each other: give one")
    if csv_out is not None and plot is not None and csv_out.absolute().resolve() == plot.absolute().resolve():
        raise FaapError(f"--csv and --plot both name {csv_out}: the plot would replace the CSV; give two files")
    from faapkit.artifacts.outputs import check_output

    def _run_artefact(target: Path) -> str | None:
        from faapkit.compare.gather import run_artefact

        return run_artefact(target, plugins())  # the plugins are loaded only if a file is there

    if csv_out is not None:
        check_output(csv_out, "--csv", force=force, replaceable=_run_artefact)
    if plot is not None:
        from faapkit.compare.plot import plot_formats

        formats = plot_formats()  # also says a missing matplotlib before any work
        check_output(plot, "--plot", force=force, replaceable=_run_artefact, suffixes=formats, what="a figure")
