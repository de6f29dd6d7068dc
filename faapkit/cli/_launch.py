"""``--nproc N``: re-run the current command under torchrun with N processes (DDP), through
``faapkit.distributed.launch``. A failed rank ends the command the way a single process would: one
``error:`` line and its exit status, not torchrun's traceback and failure report."""

from __future__ import annotations

import sys

from faapkit.cli._console import err_console, info


def launch_torchrun(nproc: int) -> None:
    from faapkit.distributed.launch import RankFailed, run_ranks

    try:
        run_ranks(nproc, sys.argv[1:], info)
    except RankFailed as exc:
        if exc.line is not None:  # else rank 0 printed its own
            err_console.print(exc.line, markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(exc.code) from None
