"""Hostile cases of ``faap train`` (fresh runs, ``--resume``, ``--seeds``) and its datasets."""

from __future__ import annotations

import shutil

from tests.hostile.conftest import tiny_sets
from tests.hostile.kit import Case, Ctx, Refused, Works, cli, edit_json, flip_byte, truncate


def _train(ctx: Ctx, *extra: str, data=None, out=None) -> list[str]:
    root = data if data is not None else ctx.world["data"]
    out = out if out is not None else ctx.o / "new"
    return cli("train", "--version", "4th", "--out", out, "--quiet", *tiny_sets(root), *extra)


def _bad_data(change):
    """A fresh train on a copy of the data whose train annotations ``change`` edits."""

    def prepare(ctx: Ctx) -> list[str]:
        edit_json(ctx.ann("train"), change)
        return _train(ctx, data=ctx.data())

    return prepare


def _first_image(key: str, value):
    return lambda d: d["images"][0].__setitem__(key, value)


def _first_box(value):
    return lambda d: d["annotations"][0].__setitem__("bbox", value)


def _dup_file(d: dict) -> None:
    twin = {**d["images"][0], "id": 999}
    d["images"].append(twin)
    d["annotations"].append({**d["annotations"][0], "id": 9999, "image_id": 999})


def _no_gender(d: dict) -> None:
    d["images"][0]["attributes"].pop("gender")


def _resume_changed(ctx: Ctx, *extra: str) -> list[str]:
    return cli("train", "--resume", ctx.run(), "--quiet", *extra)


def _killed_before_checkpoint(ctx: Ctx) -> list[str]:
    run = ctx.run()
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").mkdir()
    for name in ("selection.json", "metrics.csv", "train_log.jsonl"):
        (run / name).unlink(missing_ok=True)
    shutil.rmtree(run / "eval")
    return cli("train", "--resume", run, "--quiet", "--max-steps", "1")


def _old_epoch_truncated(ctx: Ctx) -> list[str]:
    run = ctx.run()
    truncate(run / "checkpoints" / "epoch_0000.pt")
    return cli("train", "--resume", run, "--quiet")


def _set_manifest_edited(ctx: Ctx) -> list[str]:
    """The set's manifest says another learning rate, a seed is lost: resume must not retrain it
    under the edited settings beside the other seed."""
    s = ctx.seedset()
    edit_json(s / "seeds.json", lambda m: m.setdefault("overrides", []).append("train.lr=0.5"))
    shutil.rmtree(s / "seed-1")
    return cli("train", "--resume", s, "--quiet")


def _seed_folder_of_other_seed(ctx: Ctx) -> list[str]:
    s = ctx.seedset()
    shutil.rmtree(s / "seed-1")
    shutil.copytree(s / "seed-0", s / "seed-1")
    return cli("train", "--resume", s, "--quiet")


def _truncated_jpeg_skipped(ctx: Ctx) -> list[str]:
    data = ctx.data()
    truncate(data / "images" / "train" / "train_00002.jpg", 0.6)
    return _train(ctx, "--set", "data.on_corrupt=skip", data=data)


def _yaml_on(ctx: Ctx) -> list[str]:
    f = ctx.o.parent / "c.yaml"
    f.write_text("version: 4th\ndata:\n  advantaged: on\n")
    return cli("train", "--config", f, "--out", ctx.o / "new")


def _resume_auto_foreign(ctx: Ctx) -> list[str]:
    folder = ctx.tmp / "foreign"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    ctx.guarded.append(folder)
    return _train(ctx, "--resume", "auto", out=folder)


def _changed_dataset_resume(ctx: Ctx) -> list[str]:
    run = ctx.run()
    data = ctx.data()
    flip_byte(data / "images" / "train" / "train_00001.jpg")
    return cli("train", "--resume", run, "--quiet", "--epochs", "3", "--set", f"data.root='{data}'")


def _out_existing_run(ctx: Ctx) -> list[str]:
    return _train(ctx, out=ctx.run())


def _out_is_file(ctx: Ctx) -> list[str]:
    (ctx.o / "new").write_text("x")
    return _train(ctx)


def _run_id_edited(ctx: Ctx) -> list[str]:
    edit_json(ctx.run() / "run.json", lambda m: m.__setitem__("run_id", "0" * 32))
    return cli("train", "--resume", ctx.run(), "--quiet")


def _done_set_rerun(ctx: Ctx) -> list[str]:
    return cli("train", "--version", "4th", "--seeds", "0-1", "--out", ctx.seedset(), "--quiet",
               *tiny_sets(ctx.world["data"]))


def _made_new(ctx: Ctx, out: str, err: str) -> None:
    assert (ctx.o / "new" / "run.json").is_file(), err


def _resumed(ctx: Ctx, out: str, err: str) -> None:
    assert (ctx.run() / "checkpoints" / "last.pt").is_file(), err


CASES = [
    Case("train-set-nan", lambda c: _train(c, "--set", "train.lr=nan"), Refused(r"train\.lr")),
    Case("train-set-unknown-key", lambda c: _train(c, "--set", "train.lrr=0.1"), Refused(r"train\.lrr")),
    Case("train-set-no-equals", lambda c: _train(c, "--set", "train.lr"), Refused(r"train\.lr")),
    Case("train-unknown-version", lambda c: cli("train", "--version", "5th", "--out", c.o / "n"), Refused(r"5th")),
    Case("train-epochs-0", lambda c: _train(c, "--epochs", "0"), Refused(r"epochs")),
    Case("train-max-steps-negative", lambda c: _train(c, "--max-steps", "-1"), Refused(r"max-steps|max_steps")),
    Case("train-limit-images-0", lambda c: _train(c, "--limit-images", "0"), Refused(r"limit-images|limit_images")),
    Case("train-device-tpu", lambda c: _train(c, "--device", "tpu"), Refused(r"tpu")),
    Case("train-jobs-0", lambda c: _train(c, "--seeds", "0-1", "--jobs", "0"), Refused(r"--jobs")),
    Case("train-jobs-without-seeds", lambda c: _train(c, "--jobs", "2"), Refused(r"--jobs")),
    Case("train-seeds-backwards", lambda c: _train(c, "--seeds", "3-1"), Refused(r"3-1|seeds")),
    Case("train-seeds-and-train-seed", lambda c: _train(c, "--seeds", "0-1", "--set", "train.seed=3"),
         Refused(r"train\.seed")),
    Case("train-launcher-bogus", lambda c: _train(c, "--launcher", "pbs"), Refused(r"pbs|launcher")),
    Case("train-slurm-no-timeout", lambda c: _train(c, "--launcher", "slurm"), Refused(r"timeout|slurm")),
    Case("train-batch-size-1-4th", lambda c: _train(c, "--set", "train.batch_size=1"), Refused(r"batch_size")),
    Case("train-advantaged-equals-disadvantaged", lambda c: _train(c, "--set", "data.advantaged=female"),
         Refused(r"advantaged")),
    Case("train-eval-backend-unknown", lambda c: _train(c, "--set", "eval.coco_backend=nope"),
         Refused(r"coco_backend|nope"), tag="WEAK eval: absent eval backend refused only at eval"),
    Case("train-config-missing", lambda c: cli("train", "--config", c.tmp / "no.toml"), Refused(r"no\.toml")),
    Case("train-config-yaml-on", _yaml_on, Refused(r"advantaged.*line|line.*advantaged")),
    Case("train-version-conflict", lambda c: _train(c, "--set", "version=1st"), Refused(r"1st.*4th|4th.*1st")),
    Case("train-out-existing-run", _out_existing_run, Refused(r"run|--resume")),
    Case("train-out-is-file", _out_is_file, Refused(r"new")),
    Case("train-data-root-missing", lambda c: _train(c, data=c.tmp / "nodata"), Refused(r"nodata")),
    Case("train-data-json-truncated", lambda c: (truncate(c.ann("train")), _train(c, data=c.data()))[1],
         Refused(r"instances_train\.json")),
    Case("train-data-duplicate-id", _bad_data(lambda d: d["images"][1].__setitem__("id", d["images"][0]["id"])),
         Refused(r"\bid\b")),
    Case("train-data-nan-box", _bad_data(_first_box([float("nan"), 1, 10, 10])), Refused(r"bbox|box")),
    Case("train-data-negative-box", _bad_data(_first_box([1, 1, -5, 10])), Refused(r"bbox|box")),
    Case("train-data-no-group", _bad_data(_no_gender), Refused(r"gender")),
    Case("train-data-empty-categories", _bad_data(lambda d: d.__setitem__("categories", [])), Refused(r"categor")),
    Case("train-data-width-wrong", _bad_data(_first_image("width", 999)), Refused(r"width|size")),
    Case("train-data-image-missing", _bad_data(_first_image("file_name", "gone.jpg")), Refused(r"gone\.jpg")),
    Case("train-data-same-file-two-ids", _bad_data(_dup_file), Refused(r"train_00001\.jpg"),
         tag="WEAK data: the same file under two image ids accepted"),
    Case("train-data-truncated-jpeg-skip", _truncated_jpeg_skipped, Works(_made_new),
         tag="WEAK data: on_corrupt=skip does not skip a truncated JPEG"),
    Case("train-resume-missing", lambda c: cli("train", "--resume", c.tmp / "gone"), Refused(r"gone")),
    Case("train-resume-not-a-run", lambda c: cli("train", "--resume", c.o), Refused(r"run\.json|not a run|run")),
    Case("train-resume-other-version", lambda c: _resume_changed(c, "--version", "4th"),
         Refused(r"level-up.*4th|version")),
    Case("train-resume-changed-config", lambda c: _resume_changed(c, "--set", "generator.channels=16"),
         Refused(r"generator\.channels")),
    Case("train-resume-run-id-edited", _run_id_edited, Refused(r"run id|run_id")),
    Case("train-resume-other-dataset", _changed_dataset_resume, Refused(r"data")),
    Case("train-resume-old-epoch-truncated", _old_epoch_truncated, Works(_resumed),
         tag="WEAK checkpoints: resume refused for a truncated old per-epoch checkpoint"),
    Case("train-resume-killed-before-checkpoint", _killed_before_checkpoint, Works(_resumed),
         tag="WEAK checkpoints: run.json beside an empty checkpoints/"),
    Case("train-resume-auto-foreign-folder", _resume_auto_foreign, Refused(r"foreign")),
    Case("train-resume-and-seeds", lambda c: _resume_changed(c, "--seeds", "0-1"), Refused(r"--seeds|seed")),
    Case("train-seeds-other-set", lambda c: _train(c, "--seeds", "0-2", out=c.seedset()),
         Refused(r"holds the seed set")),
    Case("train-seeds-rerun-done-set", _done_set_rerun, Works()),
    Case("train-seed-folder-of-another-seed", _seed_folder_of_other_seed, Refused(r"seed")),
    Case("train-set-manifest-edited-seed-lost", _set_manifest_edited, Refused(r"train\.lr|overrides"),
         tag="FAIL 1: a seed set of two configurations"),
    Case("train-ok-one-step", lambda c: _train(c), Works(_made_new)),
]
