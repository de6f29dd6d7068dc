"""Reader for the research scripts' (eeshape/faap_gan) run folders and metric files."""

from pathlib import Path
from typing import Any

from faapkit.plugin_api import hookimpl


@hookimpl(trylast=True)
def faap_read_run(path: Path) -> list[dict[str, Any]] | None:
    from faapkit.legacy import read_legacy

    return read_legacy(path)
