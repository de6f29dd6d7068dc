"""What ``faap eval``'s feature code needs from its caller and cannot import itself.

``faapkit.evaluate`` sits below ``faapkit.train`` (seed sets), ``faapkit.compare`` (what a
metrics file is) and ``faapkit.cli`` (the console, the loaded plugins, torchrun relaunch), so the command hands it a
:class:`Host` that provides them. :class:`Notes` is the part that only says things; a
:class:`Silent` one keeps a check quiet that is repeated later (a seed set's preflight).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from faapkit.plugins.registry import Registries

# ``progress(phase, done, total)``: ``phase`` is "inference" (images) or "bootstrap" (resamples)
Progress = Callable[[str, int, int], None]


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

    def not_metrics(self, path: Path) -> str | None:
        """Why an existing ``path`` may not be replaced by metrics (``None``: it is a metrics file)."""
        ...

    def evaluation_written(self, run_dir: Path, path: Path) -> None:
        """The metrics of an evaluation of ``run_dir`` are written to ``path``: hand them on (to
        the run's experiment trackers; a tracker's failure is a warning, the file stays)."""
        ...

    def is_seed_set(self, path: Path) -> bool:
        """Whether ``path`` is a seed set's parent folder (``faap train --seeds``)."""
        ...

    def seed_states(self, path: Path) -> list[tuple[int, Path, str]]:
        """``(seed, run folder, state)`` of every seed of the set in ``path``, in the recorded order
        (state ``"done"`` when the seed's run trained to the end)."""
        ...


class Silent:
    """:class:`Notes` that say nothing."""

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass
