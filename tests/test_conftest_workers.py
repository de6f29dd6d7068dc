"""How many xdist workers the README's test command starts, and how many torch threads each runs
(tests/conftest.py): workers x threads stays within the cores."""

from __future__ import annotations

import pytest

from tests import conftest

GB = 2**30


# cores, memory in GB, workers (0: serial, in the pytest process itself)
WORKER_CASES = [(1, 64, 0), (2, 24, 2), (16, 64, 8), (16, 8, 2), (4, 3, 0)]


@pytest.mark.parametrize(("cores", "memory_gb", "workers"), WORKER_CASES)
def test_auto_workers_follow_the_cores_within_the_cap_and_the_memory(monkeypatch, cores, memory_gb, workers):
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    monkeypatch.setattr(conftest, "usable_cores", lambda: cores)
    monkeypatch.setattr(conftest, "machine_memory", lambda: memory_gb * GB)
    assert conftest.pytest_xdist_auto_num_workers(None) == workers  # type: ignore[arg-type]


def test_xdist_s_own_variable_still_decides(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "3")
    assert conftest.pytest_xdist_auto_num_workers(None) is None  # type: ignore[arg-type]


# cores, xdist workers (None: no xdist), OMP_NUM_THREADS given from outside, torch threads
THREAD_CASES = [
    (2, "2", None, 1),  # the CI machine: two workers of one thread
    (2, None, None, 2),  # -n 0
    (16, "8", None, 2),  # at most two threads, however many cores are left over
    (2, "3", None, 1),  # more workers than cores asked for: one thread each, never none
    (16, "4", "1", 1),  # an OMP_NUM_THREADS from outside caps the share
    (2, None, "8", 2),  # but never raises it
    (2, None, "junk", 2),
]


@pytest.mark.parametrize(("cores", "workers", "given", "threads"), THREAD_CASES)
def test_torch_threads_share_the_cores_among_the_workers(monkeypatch, cores, workers, given, threads):
    monkeypatch.setattr(conftest, "usable_cores", lambda: cores)
    for name, value in (("PYTEST_XDIST_WORKER_COUNT", workers), ("OMP_NUM_THREADS", given)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert conftest.torch_threads() == threads
