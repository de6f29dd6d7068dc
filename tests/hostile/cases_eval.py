"""Hostile cases of ``faap eval``: options, checkpoints, datasets, ``--rescore``, ``--codec``,
``--exported`` and seed sets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from tests.hostile.kit import (
    Case,
    Ctx,
    Refused,
    Works,
    cli,
    edit_json,
    flip_byte,
    image,
    invert_scores,
    ok,
    record_detections_sha,
    rehash,
    truncate,
)


def _eval(ctx: Ctx, *extra: object, run: Path | None = None) -> list[str]:
    target = run if run is not None else ctx.run()
    return cli("eval", target, "--bootstrap", "0", "--quiet", *extra)


def _new(ctx: Ctx, *extra: object) -> list[str]:
    """An evaluation that writes a new file (``--out`` in the case's output folder)."""
    return _eval(ctx, "--out", ctx.o / "m.json", *extra)


def _data_edit(change, *extra: object):
    def prepare(ctx: Ctx) -> list[str]:
        edit_json(ctx.ann("test"), change)
        return _new(ctx, "--data", ctx.data(), *extra)

    return prepare


def _nan_box(d: dict) -> None:
    d["annotations"][0]["bbox"] = [float("nan"), 1, 10, 10]


def _add_sliver(ctx: Ctx) -> list[str]:
    data = ctx.data()
    image(data / "images" / "test" / "sliver.png", (10000, 10))

    def add(d: dict) -> None:
        d["images"].append({**d["images"][0], "id": 777, "file_name": "sliver.png", "width": 10000, "height": 10})
        d["annotations"].append({**d["annotations"][0], "id": 7777, "image_id": 777, "bbox": [1, 1, 50, 5],
                                 "area": 250})

    edit_json(ctx.ann("test"), add)
    return _new(ctx, "--data", data)


def _truncated_jpeg(ctx: Ctx) -> list[str]:
    data = ctx.data()
    truncate(data / "images" / "test" / "test_00002.jpg", 0.6)
    return _new(ctx, "--data", data)


def _skipped_invalid(ctx: Ctx, out: str, err: str) -> None:
    metrics = json.loads((ctx.o / "m.json").read_text())
    assert metrics["dataset"].get("skipped_invalid"), metrics["dataset"]


def _dup_file(d: dict) -> None:
    d["images"].append({**d["images"][0], "id": 999})
    d["annotations"].append({**d["annotations"][0], "id": 9999, "image_id": 999})


def _no_best(ctx: Ctx) -> list[str]:
    run = ctx.run()
    (run / "checkpoints" / "best.pt").unlink()
    return _eval(ctx)


def _nothing_chosen(ctx: Ctx) -> list[str]:
    run = ctx.run()
    (run / "checkpoints" / "best.pt").unlink()
    edit_json(run / "selection.json", lambda s: s.update(checkpoint_sha256=None, epoch=None, outcome="none"))
    return _new(ctx)


def _epoch_file_of_other_epoch(ctx: Ctx) -> list[str]:
    ck = ctx.run() / "checkpoints"
    shutil.copy(ck / "epoch_0001.pt", ck / "epoch_0000.pt")
    return _new(ctx, "--epoch", "0")


def _checkpoint_file(ctx: Ctx, make) -> list[str]:
    path = ctx.o.parent / "thing.pt"
    make(path)
    return cli("eval", path, "--bootstrap", "0", "--quiet", "--out", ctx.o / "m.json")


def _generator_state_dict(path: Path) -> None:
    ckpt = torch.load(path.parent / "run" / "checkpoints" / "best.pt", weights_only=True, map_location="cpu")
    torch.save(ckpt["generator"], path)


def _unrelated_tensors(path: Path) -> None:
    torch.save({"a": torch.zeros(3), "b": torch.ones(2, 2)}, path)


def _rescore(ctx: Ctx, *extra: object, metrics: Path | None = None) -> list[str]:
    return cli("eval", "--rescore", metrics or ctx.metrics(), "--bootstrap", "10", "--seed", "7", "--quiet", *extra)


def _dets(ctx: Ctx) -> Path:
    return ctx.run() / "eval" / "test_gender_best.perturbed.dets.json.gz"


def _rescored_edit_rehashed(ctx: Ctx) -> list[str]:
    invert_scores(_dets(ctx))
    record_detections_sha(ctx.metrics())
    rehash(ctx.metrics())
    return _rescore(ctx)


def _rescore_changed_data(ctx: Ctx) -> list[str]:
    ok(*_rescore(ctx))
    edit_json(ctx.ann("test"), lambda d: d["annotations"][0].__setitem__("bbox", [2, 2, 30, 60]))
    return _rescore(ctx, "--data", ctx.data())


def _sidecar(ctx: Ctx, change) -> Path:
    f = ctx.exported("onnx")
    edit_json(Path(f"{f}.json"), change)
    return f


def _exported_eps_edited(ctx: Ctx) -> list[str]:
    f = _sidecar(ctx, lambda s: s.__setitem__("epsilon", s["epsilon"] * 2))
    return _new(ctx, "--exported", f)


def _exported_run_id(ctx: Ctx) -> list[str]:
    f = _sidecar(ctx, lambda s: s.__setitem__("run_id", "0" * 32))
    return _new(ctx, "--exported", f)


def _exported_no_sidecar(ctx: Ctx) -> list[str]:
    f = ctx.exported("onnx")
    Path(f"{f}.json").unlink()
    return _new(ctx, "--exported", f)


def _same_ap(ctx: Ctx, out: str, err: str) -> None:
    got = json.loads((ctx.o / "m.json").read_text())["metrics"]
    want = json.loads(ctx.metrics().read_text())["metrics"]
    a, b = json.dumps(got, sort_keys=True), json.dumps(want, sort_keys=True)
    assert _close(json.loads(a), json.loads(b)), "the exported file's AP differs from the run's"


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-4
    return a == b


def _codec_recorded(ctx: Ctx, out: str, err: str) -> None:
    got = json.loads((ctx.o / "m.json").read_text())
    assert "png" in json.dumps(got.get("eval", got.get("config", {}))), "codec not recorded"


def _labelled_not_chosen(ctx: Ctx, out: str, err: str) -> None:
    text = (ctx.o / "m.json").read_text()
    assert "asked for" in text or "selection.json chose" in text, "an asked-for epoch is not labelled"


def _rescored(ctx: Ctx, out: str, err: str) -> None:
    assert len(list((ctx.run() / "eval").glob("*rescore*.json"))) == 1, err


def _set_manifest_edited(ctx: Ctx) -> list[str]:
    edit_json(ctx.seedset() / "seeds.json", lambda m: m.setdefault("overrides", []).append("train.lr=0.5"))
    return cli("eval", ctx.seedset(), "--bootstrap", "0", "--quiet", "--force")


def _set_seed_config_edited(ctx: Ctx) -> list[str]:
    edit_json(ctx.seedset() / "seed-1" / "run.json", lambda m: m["config"]["train"].__setitem__("lr", 0.5))
    return cli("eval", ctx.seedset(), "--bootstrap", "0", "--quiet", "--force")


def _set_no_manifest(ctx: Ctx) -> list[str]:
    (ctx.seedset() / "seeds.json").unlink()
    return cli("eval", ctx.seedset(), "--bootstrap", "0", "--quiet", "--force")


def _set_seed_lost(ctx: Ctx) -> list[str]:
    shutil.rmtree(ctx.seedset() / "seed-1")
    return cli("eval", ctx.seedset(), "--bootstrap", "0", "--quiet", "--force")


def _interrupted_detections(ctx: Ctx) -> list[str]:
    """A metrics file whose detections were never finished (an interrupted write)."""
    truncate(_dets(ctx), 0.5)
    return _rescore(ctx)


def _other_detector(ctx: Ctx) -> list[str]:
    return _new(ctx, "--detector", "detr-synth-tiny")


CASES = [
    Case("eval-missing-run", lambda c: cli("eval", c.tmp / "gone"), Refused(r"gone")),
    Case("eval-empty-folder", lambda c: cli("eval", c.o), Refused(r"/o\b|run")),
    Case("eval-split-unknown", lambda c: _new(c, "--split", "nope"), Refused(r"nope")),
    Case("eval-split-by-unknown", lambda c: _new(c, "--split-by", "hair"), Refused(r"hair")),
    Case("eval-disadvantaged-unknown", lambda c: _new(c, "--disadvantaged", "robot"), Refused(r"robot")),
    Case("eval-groups-equal", lambda c: _new(c, "--disadvantaged", "male", "--advantaged", "male"),
         Refused(r"male")),
    Case("eval-bootstrap-negative", lambda c: _new(c, "--bootstrap", "-1"), Refused(r"bootstrap")),
    Case("eval-confidence-1.5", lambda c: _new(c, "--confidence", "1.5"), Refused(r"confidence")),
    Case("eval-iou-2", lambda c: _new(c, "--iou", "2"), Refused(r"iou")),
    Case("eval-epsilon-0", lambda c: _new(c, "--epsilon", "0"), Refused(r"epsilon")),
    Case("eval-epsilon-nan", lambda c: _new(c, "--epsilon", "nan"), Refused(r"epsilon")),
    Case("eval-batch-size-0", lambda c: _new(c, "--batch-size", "0"), Refused(r"batch")),
    Case("eval-workers-negative", lambda c: _new(c, "--workers", "-2"), Refused(r"workers")),
    Case("eval-device-bogus", lambda c: _new(c, "--device", "gpu9"), Refused(r"gpu9|device")),
    Case("eval-limit-images-0", lambda c: _new(c, "--limit-images", "0"), Refused(r"limit")),
    Case("eval-nproc-0", lambda c: _new(c, "--nproc", "0"), Refused(r"nproc")),
    Case("eval-on-invalid-bogus", lambda c: _new(c, "--on-invalid", "maybe"), Refused(r"on-invalid|maybe")),
    Case("eval-existing-without-force", lambda c: _eval(c), Refused(r"--force")),
    Case("eval-out-run-json", lambda c: _eval(c, "--out", c.run() / "run.json", "--force"), Refused(r"run\.json")),
    Case("eval-out-checkpoint", lambda c: _eval(c, "--out", c.run() / "checkpoints" / "last.pt", "--force"),
         Refused(r"last\.pt")),
    Case("eval-out-missing-parent", lambda c: _eval(c, "--out", c.o / "x" / "m.json"), Refused(r"x")),
    Case("eval-out-folder", lambda c: _eval(c, "--out", c.o), Refused(r"folder|directory|/o")),
    Case("eval-eval-folder-a-file", lambda c: (shutil.rmtree(c.run() / "eval"), (c.run() / "eval").write_text("x"),
         _eval(c, "--split", "val"))[2], Refused(r"eval")),
    Case("eval-best-changed", lambda c: (flip_byte(c.run() / "checkpoints" / "best.pt"), _new(c))[1],
         Refused(r"best\.pt.*--accept-changed-best|selection")),
    Case("eval-best-missing", _no_best, Refused(r"best\.pt.*--epoch|--epoch")),
    Case("eval-nothing-chosen", _nothing_chosen, Refused(r"--epoch")),
    Case("eval-selection-json-truncated", lambda c: (truncate(c.run() / "selection.json"), _new(c))[1],
         Refused(r"selection\.json")),
    Case("eval-epoch-absent", lambda c: _new(c, "--epoch", "9"), Refused(r"9")),
    Case("eval-epoch-negative", lambda c: _new(c, "--epoch", "-1"), Refused(r"epoch")),
    Case("eval-epoch-labelled-not-chosen", lambda c: _new(c, "--epoch", "0"), Works(_labelled_not_chosen)),
    Case("eval-epoch-file-of-other-epoch", _epoch_file_of_other_epoch, Refused(r"epoch_0000\.pt.*epoch 1|epoch 1"),
         tag="WEAK checkpoints: --epoch N evaluates a file of another epoch"),
    Case("eval-checkpoint-truncated", lambda c: _checkpoint_file(c, lambda p: p.write_bytes(
         (c.world["run"] / "checkpoints" / "last.pt").read_bytes()[:5000])), Refused(r"thing\.pt")),
    Case("eval-checkpoint-text", lambda c: _checkpoint_file(c, lambda p: p.write_text("hello")), Refused(r"thing\.pt")),
    Case("eval-checkpoint-generator-state-dict", lambda c: (c.run(), _checkpoint_file(c, _generator_state_dict))[1],
         Refused(r"thing\.pt does not hold perturbation-generator weights")),
    Case("eval-checkpoint-unrelated-tensors", lambda c: _checkpoint_file(c, _unrelated_tensors),
         Refused(r"thing\.pt does not hold perturbation-generator weights")),
    Case("eval-data-missing", lambda c: _new(c, "--data", c.tmp / "nodata"), Refused(r"nodata")),
    Case("eval-data-json-truncated", lambda c: (truncate(c.ann()), _new(c, "--data", c.data()))[1],
         Refused(r"instances_test\.json")),
    Case("eval-data-image-missing", lambda c: ((c.data() / "images" / "test" / "test_00001.jpg").unlink(),
         _new(c, "--data", c.data()))[1], Refused(r"test_00001\.jpg")),
    Case("eval-data-image-text", lambda c: ((c.data() / "images" / "test" / "test_00001.jpg").write_text("no"),
         _new(c, "--data", c.data()))[1], Refused(r"test_00001\.jpg")),
    Case("eval-data-nan-box", _data_edit(_nan_box), Refused(r"bbox|box")),
    Case("eval-data-nan-box-skipped", _data_edit(_nan_box, "--on-invalid", "skip"), Works(_skipped_invalid)),
    Case("eval-data-unknown-category", _data_edit(lambda d: d["annotations"][0].__setitem__("category_id", 42)),
         Refused(r"category")),
    Case("eval-data-string-area", _data_edit(lambda d: d["annotations"][0].__setitem__("area", "big")),
         Refused(r"area")),
    Case("eval-data-group-null", _data_edit(lambda d: d["images"][0]["attributes"].__setitem__("gender", None)),
         Refused(r"gender")),
    Case("eval-data-sliver-image", _add_sliver, Refused(r"sliver\.png"),
         tag="WEAK data: a 10000x10 image fails inside inference"),
    Case("eval-data-same-file-two-ids", _data_edit(_dup_file), Refused(r"test_00001\.jpg"),
         tag="WEAK data: the same file under two image ids accepted"),
    Case("eval-data-truncated-jpeg", _truncated_jpeg, Refused(r"test_00002\.jpg")),
    Case("eval-detector-unknown", lambda c: _new(c, "--detector", "nope"), Refused(r"nope")),
    Case("eval-detector-checkpoint-missing", lambda c: _new(c, "--detector-checkpoint", c.tmp / "d.pth"),
         Refused(r"d\.pth")),
    Case("eval-detector-checkpoint-junk", lambda c: ((c.tmp / "d.pth").write_text("x"),
         _new(c, "--detector-checkpoint", c.tmp / "d.pth"))[1], Refused(r"d\.pth")),
    Case("eval-detector-reading-generator-other-detector", _other_detector,
         Refused(r"detr-synth-tiny"), tag="WEAK eval: another detector for a detector-reading generator"),
    Case("eval-codec-jpeg-0", lambda c: _new(c, "--codec", "jpeg:0"), Refused(r"jpeg:0|quality")),
    Case("eval-codec-gif", lambda c: _new(c, "--codec", "gif:90"), Refused(r"gif")),
    Case("eval-codec-webp-no-quality", lambda c: _new(c, "--codec", "webp"), Refused(r"webp|quality")),
    Case("eval-codec-png", lambda c: _new(c, "--codec", "png"), Works(_codec_recorded)),
    Case("eval-exported-same-ap", lambda c: _new(c, "--exported", c.exported("onnx")), Works(_same_ap)),
    Case("eval-exported-torchscript-same-ap", lambda c: _new(c, "--exported", c.exported("ts")), Works(_same_ap)),
    Case("eval-exported-missing", lambda c: _new(c, "--exported", c.tmp / "x.onnx"), Refused(r"x\.onnx")),
    Case("eval-exported-no-sidecar", _exported_no_sidecar, Refused(r"p\.onnx\.json|sidecar")),
    Case("eval-exported-sidecar-run-id", _exported_run_id, Refused(r"run")),
    Case("eval-exported-sidecar-epsilon-edited", _exported_eps_edited, Refused(r"epsilon"),
         tag="deploy WEAK: an edited sidecar epsilon is trusted"),
    Case("eval-exported-and-epoch", lambda c: _new(c, "--exported", c.exported("onnx"), "--epoch", "0"),
         Refused(r"exported from a checkpoint|--epoch")),
    Case("eval-exported-and-rescore", lambda c: _rescore(c, "--exported", c.exported("onnx")),
         Refused(r"--rescore|--exported")),
    Case("eval-rescore-ok", lambda c: _rescore(c), Works(_rescored)),
    Case("eval-rescore-metrics-missing", lambda c: _rescore(c, metrics=c.tmp / "m.json"), Refused(r"m\.json")),
    Case("eval-rescore-metrics-truncated", lambda c: (truncate(c.metrics()), _rescore(c))[1],
         Refused(r"test_gender_best\.json")),
    Case("eval-rescore-detections-missing", lambda c: (_dets(c).unlink(), _rescore(c))[1],
         Refused(r"dets\.json\.gz")),
    Case("eval-rescore-detections-interrupted", _interrupted_detections, Refused(r"dets\.json\.gz")),
    Case("eval-rescore-detections-edited-rehashed", _rescored_edit_rehashed, Refused(r"dets|point estimate|differ"),
         tag="WEAK rescore: an edited, re-hashed detections file is rescored"),
    Case("eval-rescore-again-without-force", lambda c: (ok(*_rescore(c)), _rescore(c))[1], Refused(r"--force")),
    Case("eval-rescore-with-codec", lambda c: _rescore(c, "--codec", "png"), Refused(r"--codec|--rescore")),
    Case("eval-rescore-after-dataset-changed", _rescore_changed_data, Refused(r"fingerprint|dataset|data"),
         tag="WEAK rescore: a rescore into an existing output names the file, not the fingerprint"),
    Case("eval-seedset-manifest-edited", _set_manifest_edited, Refused(r"train\.lr|overrides"),
         tag="FAIL 1: a seed set of two configurations"),
    Case("eval-seedset-seed-config-edited", _set_seed_config_edited, Refused(r"train\.lr"),
         tag="FAIL 1: a seed set of two configurations"),
    Case("eval-seedset-no-manifest", _set_no_manifest, Refused(r"seeds\.json(?!.*train --out)"),
         tag="WEAK seeds: a set without its manifest advises faap train --out"),
    Case("eval-seedset-seed-lost", _set_seed_lost, Refused(r"seed 1|seed-1")),
    Case("eval-seedset-again-without-force", lambda c: cli("eval", c.seedset(), "--bootstrap", "10", "--quiet"),
         Refused(r"--force")),
    Case("eval-seedset-force", lambda c: cli("eval", c.seedset(), "--bootstrap", "0", "--quiet", "--force"), Works()),
]
