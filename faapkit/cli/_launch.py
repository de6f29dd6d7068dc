"""``--nproc N``: re-run the current command under torchrun with N processes (DDP).

torchrun runs in this process, so a failed rank ends the command the way a single process would:
one ``error:`` line and its exit status, not torchrun's traceback and failure report. Rank 0
keeps the terminal (progress, errors); the other ranks' stderr goes to log files. Every rank also
leaves its error line in the launch folder, so when rank 0 was only stopped because another rank
failed, that rank's line is printed instead."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

from faapkit.cli._console import err_console, info
from faapkit.errors import FaapError

LAUNCH_DIR_ENV = "FAAP_LAUNCH_DIR"


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


def launch_torchrun(nproc: int) -> None:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)  # its reports repeat the ranks' errors
    argv = without_nproc(sys.argv[1:])
    # share the cores instead of torchrun's default of one thread per process (and its warning)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or nproc) // nproc)))
    info(f"launching {nproc} processes: torchrun --standalone -m faapkit " + " ".join(argv))
    with tempfile.TemporaryDirectory(prefix="faap-torchrun-") as tmp:
        os.environ[LAUNCH_DIR_ENV] = tmp  # where each rank leaves its error line (faapkit.cli.main)
        redirects = ",".join(f"{r}:2" for r in range(1, nproc))
        options = [f"--nproc_per_node={nproc}", "--standalone", "--redirects", redirects, "--log-dir", tmp]
        try:
            run(parse_args([*options, "-m", "faapkit", *argv]))
        except ChildFailedError as exc:
            errors = _rank_errors(Path(tmp))
            if 0 in errors:  # rank 0 printed its own error
                raise SystemExit(errors[0][0]) from None
            # else the rank that failed by itself (exit status > 0), not one stopped by a signal
            failed = sorted((f.timestamp, r) for r, f in exc.failures.items() if f.exitcode > 0)
            rank = failed[0][1] if failed else exc.get_first_failure()[0]
            code, line = errors.get(rank, (exc.failures[rank].exitcode, ""))
            err_console.print(
                line or f"error: process {rank} failed with status {code}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            raise SystemExit(code if code > 0 else 1) from None
        except Exception as exc:  # rendezvous or spawn problems
            raise FaapError(f"torchrun could not start {nproc} processes: {exc}") from None
        finally:
            os.environ.pop(LAUNCH_DIR_ENV, None)


def _rank_errors(folder: Path) -> dict[int, tuple[int, str]]:
    """``{rank: (exit status, error line)}`` left by ``faapkit.cli.main`` in each failed rank."""
    errors: dict[int, tuple[int, str]] = {}
    for path in folder.glob("error-rank*.txt"):
        code, _, line = path.read_text().strip().partition(" ")
        errors[int(path.stem.removeprefix("error-rank"))] = (int(code), line)
    return errors
