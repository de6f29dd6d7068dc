"""``--nproc N``: re-run the current command under ``torchrun`` with N processes (DDP)."""

from __future__ import annotations

import subprocess
import sys

from faapkit.cli._console import info
from faapkit.errors import FaapError


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
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--standalone",
        "-m",
        "faapkit",
        *without_nproc(sys.argv[1:]),
    ]
    info("launching: " + " ".join(cmd[2:]))
    rc = subprocess.call(cmd)
    if rc != 0:
        raise FaapError(f"torchrun exited with status {rc}")
