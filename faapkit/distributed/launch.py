"""``--nproc N``: the ranks of a command (``faap train``, ``faap eval``) launched by torchrun,
run in this process, and how a failed rank's error comes back.

Every rank leaves its error line in the launch folder (:func:`leave_rank_error`), so when rank 0
was only stopped because another rank failed, that rank's line is the one reported. Rank 0 keeps
the terminal; the other ranks' stderr goes to log files in the launch folder. torch is imported
only when ranks are launched (``faap --help`` imports this module)."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from faapkit.errors import FaapError

LAUNCH_DIR_ENV = "FAAP_LAUNCH_DIR"


class RankFailed(Exception):
    """A rank failed: the exit status the command ends with, and the error line to print (None
    when rank 0 printed its own)."""

    def __init__(self, code: int, line: str | None) -> None:
        super().__init__(line or f"exit status {code}")
        self.code = code
        self.line = line


def cores_per_process(processes: int) -> int:
    """This machine's cores shared among ``processes`` processes (at least one each): the torch
    threads each of them starts with, where one thread per core in every process would oversubscribe."""
    return max(1, (os.cpu_count() or 1) // max(1, processes))


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` minus ``--nproc N`` / ``--nproc=N`` (the children must not launch again)."""
    cleaned: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            cleaned.append(a)
    return cleaned


def run_ranks(nproc: int, argv: list[str], log: Callable[[str], None]) -> None:
    """Run ``faapkit`` with ``argv`` (less ``--nproc``) as ``nproc`` torchrun ranks; a failed rank
    raises :class:`RankFailed`, a launch that cannot start a :class:`FaapError`."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)  # its reports repeat the ranks' errors
    argv = without_nproc(argv)
    # share the cores instead of torchrun's default of one thread per process (and its warning)
    os.environ.setdefault("OMP_NUM_THREADS", str(cores_per_process(nproc)))
    log(f"launching {nproc} processes: torchrun --standalone -m faapkit " + " ".join(argv))
    with tempfile.TemporaryDirectory(prefix="faap-torchrun-") as tmp:
        os.environ[LAUNCH_DIR_ENV] = tmp  # where each rank leaves its error line
        redirects = ",".join(f"{r}:2" for r in range(1, nproc))
        options = [f"--nproc_per_node={nproc}", "--standalone", "--redirects", redirects, "--log-dir", tmp]
        try:
            run(parse_args([*options, "-m", "faapkit", *argv]))
        except ChildFailedError as exc:
            raise _failure(exc, rank_errors(Path(tmp))) from None
        except Exception as exc:  # rendezvous or spawn problems
            raise FaapError(f"torchrun could not start {nproc} processes: {exc}") from None
        finally:
            os.environ.pop(LAUNCH_DIR_ENV, None)


def _failure(exc: object, errors: dict[int, tuple[int, str]]) -> RankFailed:
    """Which rank's error ends the command: rank 0's own (already printed), else the rank that
    failed by itself (exit status > 0), not one stopped by a signal."""
    if 0 in errors:
        return RankFailed(errors[0][0], None)
    failures = exc.failures  # type: ignore[attr-defined]
    failed = sorted((f.timestamp, r) for r, f in failures.items() if f.exitcode > 0)
    rank = failed[0][1] if failed else exc.get_first_failure()[0]  # type: ignore[attr-defined]
    code, line = errors.get(rank, (failures[rank].exitcode, ""))
    return RankFailed(code if code > 0 else 1, line or f"error: process {rank} failed with status {code}")


def rank_errors(folder: Path) -> dict[int, tuple[int, str]]:
    """``{rank: (exit status, error line)}`` left by :func:`leave_rank_error` in each failed rank."""
    errors: dict[int, tuple[int, str]] = {}
    for path in folder.glob("error-rank*.txt"):
        code, _, line = path.read_text().strip().partition(" ")
        errors[int(path.stem.removeprefix("error-rank"))] = (int(code), line)
    return errors


def leave_rank_error(line: str, exit_code: int) -> None:
    """Under ``--nproc``, leave this rank's error line and exit status where the launcher looks."""
    launch_dir = os.environ.get(LAUNCH_DIR_ENV)
    if launch_dir:
        with contextlib.suppress(OSError):
            (Path(launch_dir) / f"error-rank{os.environ.get('RANK', '0')}.txt").write_text(f"{exit_code} {line}\n")
