"""Shared fixtures: a session cache for the embedded benchmark, fresh plugin managers, paths;
how many pytest-xdist workers share the cores and how many torch threads each of them runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

# Test data committed with the tests (tests/fixtures/*/README.md say where each came from).
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Each worker holds torch, the tiny DETR and its tests' models, and the DDP tests start two more
# processes from one: past this many workers start-up costs more than the cores give.
MAX_WORKERS = 8
# Memory one worker may need at its peak (about 2.4 GB measured, the DDP tests' ranks aside).
WORKER_MEMORY = 3 * 2**30
# Torch threads of one test process: the tiny models gain little from more (and the suite was
# written for two).
MAX_THREADS = 2


def usable_cores() -> int:
    """The cores this process may run on (its affinity, which a container or ``taskset`` narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_memory() -> int:
    """This machine's memory in bytes (as if unlimited where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return MAX_WORKERS * WORKER_MEMORY


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (pyproject's addopts): one worker per core, at most :data:`MAX_WORKERS` and as
    many as the memory holds; none where that comes to one, which would only add its start to a
    serial run. xdist's own ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when it is set
    (``None`` defers to xdist)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    workers = min(usable_cores(), MAX_WORKERS, max(1, machine_memory() // WORKER_MEMORY))
    return 0 if workers < 2 else workers


def torch_threads() -> int:
    """Torch threads of this test process: the cores shared among the xdist workers (so that
    workers x threads stays within them), at most :data:`MAX_THREADS`, at most an
    ``OMP_NUM_THREADS`` given from outside."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    threads = min(MAX_THREADS, max(1, usable_cores() // workers))
    given = os.environ.get("OMP_NUM_THREADS", "")
    return min(threads, int(given)) if given.isdigit() and int(given) > 0 else threads


def pytest_configure(config: pytest.Config) -> None:
    # before any test module imports torch, which sizes its thread pool from this once; the
    # subprocesses the tests start (faap, torchrun) inherit it
    os.environ["OMP_NUM_THREADS"] = str(torch_threads())
    # before the test modules build their registries at import: a faap plugin installed beside
    # faapkit must not add versions to what the tests enumerate
    os.environ["FAAP_DISABLE_PLUGIN_AUTOLOAD"] = "1"


def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's ``FAAP_CACHE_DIR``: ``FAAP_TEST_CACHE_DIR`` when given, else a new folder that
    the xdist workers of one run share (beside their own temp folders), so the embedded benchmark
    is rendered once per run as in a serial one. Benchmarks and cached baselines are written
    atomically, so workers writing the same one at once leave one whole copy."""
    if os.environ.get("FAAP_TEST_CACHE_DIR"):
        cache = Path(os.environ["FAAP_TEST_CACHE_DIR"])
    elif os.environ.get("PYTEST_XDIST_WORKER"):
        cache = tmp_path_factory.getbasetemp().parent / "faap-cache"
    else:
        return tmp_path_factory.mktemp("faap-cache")
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["FAAP_CACHE_DIR"] = str(session_cache(tmp_path_factory))
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture
def pm():
    from faapkit.plugins import make_plugin_manager

    return make_plugin_manager()


@pytest.fixture
def registries(pm):
    from faapkit.plugins.registry import Registries

    return Registries.from_plugin_manager(pm)


@pytest.fixture(scope="session")
def synth_root() -> Path:
    """The embedded benchmark (generated once per session into the test cache)."""
    import fcntl

    from faapkit.data.synth import default_cache_dir, embedded_dataset

    # one xdist worker renders it while the others wait for it (rendering takes seconds)
    with (default_cache_dir() / ".synth-root.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return embedded_dataset(0)


@pytest.fixture(scope="session")
def tiny_detector():
    from faapkit.detr.frozen import load_detector
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries

    reg = Registries.from_plugin_manager(make_plugin_manager())
    return load_detector(reg.detectors.get("detr-synth-tiny"))


def installed_plugin(site: Path, dist: str, entry_point: str, source: Path) -> dict[str, str]:
    """Environment of a ``faap`` run that finds ``source``'s modules as the installed distribution
    ``dist`` (a ``.dist-info`` in ``site``) with the ``faap`` entry point ``entry_point``
    (``"name = module"``), discovered as ``pip install`` would leave it."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[faap]\n{entry_point}\n")
    path = os.pathsep.join([str(site), str(source), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path, "FAAP_DISABLE_PLUGIN_AUTOLOAD": "0"}


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run ``python -m faapkit ARGS`` in a subprocess: exit code, stdout, stderr."""
    import subprocess
    import sys

    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "faapkit", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=600
    )
    return proc.returncode, proc.stdout, proc.stderr


def run_here(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    """``faap ARGS`` in this process, as :func:`run_cli` sees it without its ~4 s interpreter and
    torch start: exit code, stdout, stderr. ``env`` is set for the call only; a ``PYTHONPATH`` in it
    goes on ``sys.path`` for the call and the modules imported from there are dropped after, so a
    fake distribution there is discovered as a fresh process would. Warnings the CLI raises land in
    stderr as Python's default filters would print them, so a stray one still breaks a one-line check.
    Keep :func:`run_cli` where the process itself is under test (imports, signals, launchers)."""
    import contextlib
    import importlib
    import io
    import sys
    import warnings

    from faapkit.cli import main
    from faapkit.cli._console import err_console, out_console

    consoles = (err_console, out_console)
    widths = [c._width for c in consoles]  # a Console reads COLUMNS once, when it is made
    if "COLUMNS" in (env or {}):
        for console in consoles:
            console.width = int((env or {})["COLUMNS"])
    # only folders new to sys.path: the modules dropped after the call are those imported from them
    known = {os.path.abspath(p) for p in sys.path}
    extra = [os.path.abspath(p) for p in (env or {}).get("PYTHONPATH", "").split(os.pathsep) if p]
    extra = [p for p in dict.fromkeys(extra) if p not in known]
    saved_env, saved_cwd, saved_path = dict(os.environ), os.getcwd(), list(sys.path)
    before = set(sys.modules)
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(env or {})
    sys.path[:0] = extra
    importlib.invalidate_caches()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()
            warnings.simplefilter("default")
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main(list(args))
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        hidden = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)  # by default
        for w in caught:
            if not issubclass(w.category, hidden):
                err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line))
    finally:
        for console, width in zip(consoles, widths, strict=True):
            console._width = width
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if any(file.startswith(p + os.sep) for p in extra):
                del sys.modules[name]
    return code, out.getvalue(), err.getvalue()


def compare_json(*args: str) -> tuple[dict, str]:
    """``faap compare ARGS --json`` that must succeed: its parsed JSON and its stderr."""
    import json

    code, out, err = run_here("compare", *args, "--json")
    assert code == 0, err
    return json.loads(out), err


def a_run_manifest(**changes: Any) -> dict[str, Any]:
    """A complete ``run.json`` (the committed 0.1.0 run's) with ``changes``; a ``dataset`` change
    updates that section's keys, every other one replaces the key."""
    manifest: dict[str, Any] = json.loads(fixture_path("native_runs", "level-up-tiny", "run.json").read_text())
    for key, value in changes.items():
        manifest[key] = {**manifest[key], **value} if key == "dataset" else value
    return manifest


def fixture_path(*parts: str) -> Path:
    """A file or folder under ``tests/fixtures``. The fixtures are part of the repository, so a
    missing one is an error of the checkout: the test fails, it is never skipped."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"test fixture missing: {path} (tests/fixtures is committed with the tests)", pytrace=False)
    return path


def faap_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """``faap ARGS`` in this process (no torch import per call): (exit code, stdout, stderr)."""
    from faapkit.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    got = capsys.readouterr()
    return code, got.out, got.err


def one_step_4th_run(base: Path, *extra: str) -> Path:
    """``base/run``: one step of the 4th on a seed-2 benchmark of 4 + 4 train and 3 + 3 test
    images (8-channel U-Net, no validation), with ``extra`` overrides."""
    from faapkit.config import resolve_config
    from faapkit.data.synth import SynthSpec, write_synthetic
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries
    from faapkit.train.trainer import Trainer

    registries = Registries.from_plugin_manager(make_plugin_manager())
    # v3's seed-2 train images: its one step draws both groups (v4's seed-3 train split does not)
    spec = SynthSpec(seed=2, splits=(("train", 4, 4), ("test", 3, 3)), bias="v3")
    root = write_synthetic(base / "s", spec) / "coco"
    overrides = [f"data.root='{root}'", "train.batch_size=4", "train.epochs=1", "train.steps_per_epoch=1"]
    overrides += ["train.val_every=0", "generator.base_channels=8", *extra]
    trainer = Trainer(resolve_config(registries, version="4th", overrides=overrides), registries, base / "run")
    trainer.setup()
    trainer.fit()
    return base / "run"


def copy_as_seed(run: Path, dest: Path, seed: int) -> None:
    """``run`` copied to ``dest`` as the run of ``seed``: its ``run.json`` records the seed and a
    run id of its own, and so does every checkpoint (a seed set counts distinct runs only)."""
    import json
    import shutil

    import torch

    shutil.copytree(run, dest)
    manifest = json.loads((dest / "run.json").read_text())
    manifest["config"]["train"]["seed"] = seed
    manifest["run_id"] = f"{manifest['run_id'][:12]}s{seed:03d}"
    (dest / "run.json").write_text(json.dumps(manifest))
    for ckpt in (dest / "checkpoints").glob("*.pt"):
        payload = torch.load(ckpt, map_location="cpu", weights_only=True)
        torch.save({**payload, "run_id": manifest["run_id"]}, ckpt)


def one_error(err: str, code: int, got: int, says: str) -> None:
    """Exit ``code`` with one ``error: ...`` line on stderr that says ``says``."""
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], err
