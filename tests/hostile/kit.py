"""The hostile pass's machinery: a case is an id, a step that damages a copy of the session's
run, seed set, dataset or export and returns the command (or a Python call), and the answer a
careful tool gives. ``Refused``: a non-zero exit, one ``error:`` line matching a pattern, no
traceback, and nothing written or changed in any folder the case copied. ``Works``: exit 0 and a
check of what came out. ``Raises``: the Python API raises a ``ValueError``/``FaapError``/``OSError``
whose message matches."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import run_here

Check = Callable[["Ctx", str, str], None]


@dataclass(frozen=True)
class Refused:
    says: str
    code: int | None = None


@dataclass(frozen=True)
class Works:
    check: Check | None = None


@dataclass(frozen=True)
class Raises:
    says: str


@dataclass(frozen=True)
class Case:
    id: str
    prepare: Callable[[Ctx], Any]
    expect: Refused | Works | Raises
    tag: str = ""  # the issue item a case reproduces (WEAK/FAIL open when the pass was written)


@dataclass
class Ctx:
    """One case's folder: copies of the session's things, made on demand and guarded."""

    world: dict[str, Path]
    tmp: Path
    guarded: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.o = self.tmp / "o"
        self.o.mkdir()
        self.guarded.append(self.o)

    def _copy(self, key: str, name: str) -> Path:
        dst = self.tmp / name
        if not dst.exists():
            shutil.copytree(self.world[key], dst, symlinks=True)
            self.guarded.append(dst)
        return dst

    def run(self, name: str = "run") -> Path:
        return self._copy("run", name)

    def seedset(self) -> Path:
        return self._copy("set", "set")

    def data(self) -> Path:
        return self._copy("data", "data")

    def exported(self, fmt: str = "onnx") -> Path:
        folder = self._copy("exports", "exports")
        return folder / ("p.onnx" if fmt == "onnx" else "p.ts")

    def src(self, n: int = 2, size: tuple[int, int] = (160, 120)) -> Path:
        folder = self.tmp / "src"
        for i in range(n):
            image(folder / f"img{i}.png", size, shade=40 * i)
        if folder not in self.guarded:
            self.guarded.append(folder)
        return folder

    def ann(self, split: str = "test") -> Path:
        return self.data() / "annotations" / f"instances_{split}.json"

    def metrics(self, run: Path | None = None) -> Path:
        return (run or self.run()) / "eval" / "test_gender_best.json"

    def seed_metrics(self, seed: int) -> Path:
        return self.seedset() / f"seed-{seed}" / "eval" / "test_gender_epoch_0000.json"

    def snapshot(self) -> dict[str, str]:
        out = {}
        for root in self.guarded:
            for p in sorted(root.rglob("*")):
                if p.is_file() and not p.name.endswith(".lock"):
                    out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        return out


def image(path: Path, size: tuple[int, int] = (160, 120), shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90 + shade % 100, 120, 150)).save(path)
    return path


def edit_json(path: Path, change: Callable[[Any], Any]) -> Path:
    """Apply ``change`` to the JSON in ``path`` (in place, or its return value replaces it)."""
    data = json.loads(path.read_text())
    new = change(data)
    path.write_text(json.dumps(data if new is None else new))
    return path


def rehash(metrics_path: Path) -> None:
    """Record the numbers' sha256 again, as someone editing a result by hand would."""
    from faapkit.artifacts.integrity import numbers_sha256

    edit_json(metrics_path, lambda m: m.__setitem__("numbers_sha256", numbers_sha256(m)))


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def flip_byte(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    return path


def cli(*args: Any) -> list[str]:
    return [str(a) for a in args]


def ok(*args: Any) -> str:
    """Run a preparing command that must succeed; its stderr."""
    code, _, err = run_here(*cli(*args))
    assert code == 0, f"preparing step failed: {args}: {err}"
    return err


def edit_scores(dets: Path, change: Callable[[float], float]) -> None:
    """Replace every saved detection score by ``change(score)`` (the file stays a valid detections file)."""
    doc = json.loads(gzip.decompress(dets.read_bytes()))
    for d in doc["detections"]:
        d["score"] = change(d["score"])
    dets.write_bytes(gzip.compress(json.dumps(doc).encode()))


def scale_scores(dets: Path, factor: float) -> None:
    """Multiply every saved detection score: the ranking, and so the AP, stays."""
    edit_scores(dets, lambda score: score * factor)


def invert_scores(dets: Path) -> None:
    """Rank every saved detection the other way round (``1 - score``): a valid detections file whose
    AP is not the recorded one."""
    edit_scores(dets, lambda score: 1.0 - score)


def record_detections_sha(metrics_path: Path) -> None:
    """Re-record each detections file's sha256 in its metrics file (an edit covering its tracks)."""

    def fix(m: dict) -> None:
        for ref in m.get("detections", {}).values():
            ref["sha256"] = hashlib.sha256((metrics_path.parent / ref["file"]).read_bytes()).hexdigest()

    edit_json(metrics_path, fix)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def verdict(case: Case, ctx: Ctx) -> None:
    """Prepare, run, and assert the case's expectation."""
    import pytest

    action = case.prepare(ctx)
    before = ctx.snapshot()
    if callable(action):
        _python_call(case, action)
        return
    code, out, err = run_here(*action)
    assert "Traceback" not in err and "(unexpected)" not in err, err
    if isinstance(case.expect, Refused):
        errors = error_lines(err)
        assert code != 0, f"exit 0 where a refusal was expected:\n{err}"
        if case.expect.code is not None:
            assert code == case.expect.code, err
        assert len(errors) == 1, f"{len(errors)} error lines:\n{err}"
        assert re.search(case.expect.says, errors[0]), f"{errors[0]!r} does not match {case.expect.says!r}"
        after = ctx.snapshot()
        changed = sorted(set(before.items()) ^ set(after.items()))
        assert not changed, f"a refusal changed or wrote files: {sorted({p for p, _ in changed})}"
    elif isinstance(case.expect, Works):
        assert code == 0, err
        if case.expect.check is not None:
            case.expect.check(ctx, out, err)
    else:
        pytest.fail("a CLI case cannot expect Raises")


def _python_call(case: Case, action: Callable[[], Any]) -> None:
    from faapkit.errors import FaapError

    if isinstance(case.expect, Raises):
        try:
            action()
        except (ValueError, FaapError, OSError) as exc:
            assert re.search(case.expect.says, str(exc)), f"{exc!r} does not match {case.expect.says!r}"
            return
        raise AssertionError("no error raised")
    action()
