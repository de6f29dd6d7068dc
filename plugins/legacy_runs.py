"""Reader for the research scripts' (eeshape/faap_gan) run folders and metric files."""

from pathlib import Path

from faapkit.plugin_api import RunRecord, hookimpl


@hookimpl(trylast=True)
def faap_read_run(path: Path) -> list[RunRecord] | None:
    from faapkit.legacy import read_legacy

    return read_legacy(path)
