"""The hostile pass: every command, deploy included, given damaged inputs, conflicting options,
other runs' files and interrupted writes; each case must be refused in one line that names what is
at fault (changing nothing) or done correctly. The case list is in docs/reliability.md ("Hostile
pass"); rerun with ``python -m pytest tests/hostile -m hostile -p no:cacheprovider``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.hostile import cases_deploy, cases_eval, cases_new, cases_read, cases_train
from tests.hostile.kit import Case, Ctx, verdict

pytestmark = [pytest.mark.slow, pytest.mark.hostile]

CASES: list[Case] = [
    *cases_train.CASES,
    *cases_eval.CASES,
    *cases_read.CASES,
    *cases_deploy.CASES,
    *cases_new.CASES,
]


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile(case: Case, hostile_world, tmp_path) -> None:
    verdict(case, Ctx(hostile_world, tmp_path))


@pytest.mark.parametrize("command", ["eval", "train"])
def test_ctrl_c_says_so_and_exits_130(command: str, hostile_world, tmp_path) -> None:
    """SIGINT a second into the work: exit 130, one ``error:`` line, no traceback."""
    from tests.hostile.conftest import tiny_sets

    if command == "eval":
        args = ["eval", str(hostile_world["run"]), "--bootstrap", "20000", "--out", str(tmp_path / "m.json")]
    else:
        args = ["train", "--version", "4th", "--out", str(tmp_path / "r"), *tiny_sets(hostile_world["data"])]
        args += ["--set", "train.steps_per_epoch=400"]
    proc = subprocess.Popen([sys.executable, "-m", "faapkit", *args], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    time.sleep(8)  # past the imports, well inside the work on an idle or a loaded machine
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert proc.returncode == 130 and len(errors) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "m.json").exists()
