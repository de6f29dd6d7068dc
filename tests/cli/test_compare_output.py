"""Readable output: compare at 80 columns, in a pipe and on a terminal; --plot; shell completion;
the per-epoch line of faap train."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console
from rich.progress import Progress

from faapkit.cli.progress import TrainReporter, epoch_line
from faapkit.compare.columns import fmt, fmt_ci
from tests.conftest import run_here
from tests.eval.test_compare_discovery import research_root

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _numbers(rows: list[dict]) -> list[str]:
    """Every gap, change and CI the rows hold, formatted as the table prints them."""
    out = []
    for r in rows:
        out += [fmt(r[k], True) for k in ("AP_gap", "AP_gap_change") if r.get(k) is not None]
        out += [fmt_ci(r[k]) for k in ("AP_change_ci",) if r.get(k)]
    return out


def _assert_unfolded(text: str, numbers: list[str], width: int | None) -> None:
    lines = text.splitlines()
    for line in lines:
        assert width is None or len(line) <= width, line
        assert line.count("[") == line.count("]"), f"a CI split across lines: {line!r}"
        assert "…" not in line, f"a cut cell: {line!r}"
    tokens = {t for line in lines for t in re.split(r"[\s]+", line)}
    missing = [n for n in numbers if n not in tokens]
    assert not missing, f"numbers not printed whole on one line: {missing[:5]}"


@pytest.mark.parametrize("width", [80, 120])
def test_compare_at_80_and_120_columns_never_folds_a_number(tmp_path, width):
    root = research_root(tmp_path)
    code, out, _ = run_here("compare", str(root), "--json", "--mix-datasets")
    rows = json.loads(out)["rows"]
    assert any(r.get("AP_change_ci") for r in rows)  # the faapkit run's bootstrap CIs are among them
    env = {"COLUMNS": str(width)}
    code, out, err = run_here("compare", str(root), "--format", "table", "--mix-datasets", env=env)
    assert code == 0, err
    _assert_unfolded(out, _numbers(rows), width)
    assert f"left out at {width} columns" in err and "\t" not in out


def _seed_set(run: str, seeds: list[int]) -> dict:
    from faapkit.evaluate.across_seeds import spread

    changes = [-0.0464 + 0.0121 * i for i in range(len(seeds))]
    shares = [0.2799 - 0.0851 * i for i in range(len(seeds))]
    return {
        "run": run,
        "version": "level-up",
        "split": "test",
        "checkpoint": "chosen on val",
        "seeds": seeds,
        "AP_gap_baseline": 0.1572,
        "change": spread(changes),
        "share_closed": spread(shares),
        "advantaged_change": spread([0.0005, -0.0012]),
        "significant_closing": 3,
        "overshoot": 0,
        "confidence": 0.95,
    }


@pytest.mark.parametrize("width", [80, 120])
def test_the_across_seeds_table_never_cuts_a_number(width, capsys):
    """Wider than the terminal, it wraps between tokens and leaves columns out with a note,
    never ``+0.2...``."""
    from faapkit.cli.compare_output import print_seed_sets
    from faapkit.compare.columns import seed_cells

    sets = [_seed_set("runs/level-up-quick-start-seeds", list(range(20))), _seed_set("lu", [0, 1, 2])]
    console = Console(width=width, record=True, soft_wrap=True, force_terminal=False)
    print_seed_sets(sets, console, tsv_out=False)
    text = console.export_text()
    kept = ["change", "change_ci"] + (["share_closed", "AP_gap_baseline"] if width == 120 else [])
    numbers = [t for s in sets for k in kept for t in seed_cells(s)[k].split()]
    _assert_unfolded(text, [n for n in numbers if n != "-"], width)
    err = capsys.readouterr().err
    assert width == 120 or f"left out at {width} columns" in err  # what does not fit is named


def test_compare_in_a_pipe_is_tsv_one_line_per_row(tmp_path):
    root = research_root(tmp_path)
    code, out, _ = run_here("compare", str(root), "--json")
    found = json.loads(out)
    code, out, err = run_here("compare", str(root), env={"COLUMNS": "80"})  # stdout is not a terminal here
    assert code == 0, err
    lines = out.splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["dataset", "run", "version"] and "AP_change_ci95" in header  # named with its level
    assert len(lines) == 1 + len(found["rows"]) + len(found["log_only"])
    assert all(line.count("\t") == len(header) - 1 for line in lines)
    _assert_unfolded(out.replace("\t", " "), _numbers(found["rows"]), None)
    ci = header.index("AP_change_ci95")
    cells = [line.split("\t")[ci] for line in lines[1:]]
    assert any(re.fullmatch(r"\[[+-]\d\.\d{4},[+-]\d\.\d{4}\]", c) for c in cells)


def test_compare_on_a_terminal_is_a_table_that_fits(tmp_path):
    import pty

    root = research_root(tmp_path)
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "faapkit", "compare", str(root / "level-up-tiny")],
        stdout=child,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0
    os.close(main)
    text = ANSI.sub("", b"".join(chunks).decode()).replace("\r", "")
    assert "\t" not in text and "AP gap" in text and "[" in text
    _assert_unfolded(text, [], 80)


def test_plot_one_panel_per_dataset_and_split_and_refusals(tmp_path):
    from faapkit.compare.plot import plot_gaps

    root = research_root(tmp_path)
    code, out, _ = run_here("compare", str(root), "--json")
    rows = json.loads(out)["rows"]
    panels = plot_gaps(tmp_path / "direct.png", rows)
    datasets = {str(r.get("dataset")) for r in rows if r.get("AP_gap") is not None}
    assert len(datasets) > 1  # the research runs' dataset and the faapkit run's: never one panel
    mine = "synth-v1-seed0/coco"
    assert {f"{mine}, val split", f"{mine}, test split"} <= set(panels)
    assert "level-up-tiny" in panels[f"{mine}, val split"] and "level-up-tiny" in panels[f"{mine}, test split"]
    for title, labels in panels.items():  # a run of another dataset is never in this panel
        expected = {str(r["run"]) for r in rows if f"{r.get('dataset')}, {r.get('split')} split" == title}
        assert {label.removesuffix(" unperturbed").split(" eps ")[0] for label in labels} <= expected
        assert not any("#" in label for label in labels)
    assert any(label.endswith("unperturbed") for label in panels[f"{mine}, test split"])
    png = tmp_path / "gaps.png"
    code, _, err = run_here("compare", str(root), "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run_here("compare", str(root), "--plot", str(png))
    assert code == 1 and out == "" and err.strip() == f"error: --plot {png} exists; pass --force to replace it"
    no_mpl = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from faapkit.cli import main\n"
        f"main(['compare', {str(root)!r}, '--plot', {str(tmp_path / 'x.png')!r}])"
    )
    proc = subprocess.run([sys.executable, "-c", no_mpl], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: --plot needs matplotlib, which is not installed: pip install 'faapkit[plot]'"
    ]


def test_shell_completion_is_on_and_imports_no_torch():
    code = (
        "import os, sys\n"
        "os.environ.update(_FAAP_COMPLETE='complete_bash', COMP_WORDS='faap comp', COMP_CWORD='1')\n"
        "from faapkit.cli import main\n"
        "try:\n    main([])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["compare", "False"]
    code_, out, _ = run_here("--help", env={"COLUMNS": "120"})
    assert code_ == 0 and "--install-completion" in out


def test_train_prints_one_compact_line_per_epoch():
    row = {
        "epoch": 3,
        "epsilon": 0.09,
        "lr": 0.0001,
        "total": 1.982229,
        "loss_det": 1.5,
        "loss_contrastive": 0.25,
        "delta_linf": 0.073589,
        "skipped": 2,
        "images_per_s": 33.8,
        "val": {"gap_AP": 0.0722508},
    }
    line = epoch_line(row)
    assert line.startswith("epoch 3: total=1.982 loss_det=1.5 loss_contrastive=0.25")
    assert "eps=0.09" in line and "lr=0.0001" in line and "skipped=2" in line and line.endswith("val_AP_gap=+0.0723")
    console = Console(record=True, width=80, file=open(os.devnull, "w"))  # noqa: SIM115
    reporter = TrainReporter(enabled=False)
    reporter.progress = Progress(console=console, disable=True)  # its console is stderr in the CLI
    reporter.end_epoch(row)
    printed = console.export_text()
    assert not set(printed) & set("┏┃━│┡└"), "a table, not a line"
    assert max(len(x) for x in printed.splitlines()) <= 80
    assert printed.split() == line.split()  # wrapped between tokens only
