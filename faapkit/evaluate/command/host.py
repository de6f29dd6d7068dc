"""What ``faap eval``'s command layer needs from its caller and cannot import itself.

``faapkit.evaluate`` sits below ``faapkit.train`` (a run's experiment trackers) and
``faapkit.cli`` (the console, the loaded plugins, torchrun relaunch), so the command hands it a
:class:`Host` that provides them. :class:`Notes` is the part that only says things; a
:class:`Silent` one keeps a check quiet that is repeated later (a seed set's preflight).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from faapkit.evaluate.requests import Progress

if TYPE_CHECKING:
    from faapkit.plugins.registry import Registries


class Notes(Protocol):
    """Lines for the user (on stderr): notes and warnings."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...


class Host(Notes, Protocol):
    """Notes, plus the services of the layers above ``faapkit.evaluate``."""

    def registries(self) -> Registries:
        """The registered detectors and generators (the plugins are loaded when first asked)."""
        ...

    def progress(self, enabled: bool) -> AbstractContextManager[Progress]:
        """A live display of the phases, shown while the context is open (nothing if not ``enabled``)."""
        ...

    def launch(self, nproc: int) -> None:
        """Run this same command in ``nproc`` processes under torchrun and wait for them."""
        ...

    def evaluation_written(self, run_dir: Path, path: Path) -> None:
        """The metrics of an evaluation of ``run_dir`` are written to ``path``: hand them on (to
        the run's experiment trackers; a tracker's failure is a warning, the file stays)."""
        ...


class Silent:
    """:class:`Notes` that say nothing."""

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass
