"""Hostile cases of the deploy commands: ``faap export``, ``faap apply`` and the Python API
(``faapkit.load_perturbation``, ``faapkit.load_fair_detector``)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.hostile.kit import Case, Ctx, Raises, Refused, Works, cli, edit_json, flip_byte, image, ok, truncate


def _export(ctx: Ctx, *extra: object, run: Path | None = None) -> list[str]:
    return cli("export", run if run is not None else ctx.run(), *extra)


def _exported(name: str):
    def check(ctx: Ctx, out: str, err: str) -> None:
        f = ctx.o / name
        assert f.stat().st_size > 1000 and json.loads(Path(f"{f}.json").read_text())["run_id"], err

    return check


def _no_best_selection_none(ctx: Ctx) -> Path:
    run = ctx.run()
    (run / "checkpoints" / "best.pt").unlink()
    edit_json(run / "selection.json", lambda s: s.update(checkpoint_sha256=None, epoch=None, outcome="none"))
    return run


def _apply(ctx: Ctx, *extra: object, src: Path | None = None, run: Path | None = None) -> list[str]:
    return cli("apply", run if run is not None else ctx.run(), src if src is not None else ctx.src(), "--out",
               ctx.o / "dst", "--no-progress", *extra)


def _applied(n: int):
    def check(ctx: Ctx, out: str, err: str) -> None:
        dst = ctx.o / "dst"
        manifest = json.loads((dst / "faap-apply.json").read_text())
        assert len(manifest["files"]) == n and len(list(dst.rglob("*.png"))) == n, err

    return check


def _tiff(ctx: Ctx) -> list[str]:
    src = ctx.src(1)
    pages = [Image.new("RGB", (160, 120), (30 * i, 90, 120)) for i in range(3)]
    pages[0].save(src / "stack.tif", save_all=True, append_images=pages[1:])
    return _apply(ctx, src=src)


def _force_other_format(ctx: Ctx) -> list[str]:
    ok(*_apply(ctx))
    return _apply(ctx, "--format", "jpeg", "--quality", "90", "--force")


def _only_jpegs(ctx: Ctx, out: str, err: str) -> None:
    dst = ctx.o / "dst"
    stale = [p.name for p in dst.rglob("*.png")]
    assert list(dst.rglob("*.jpg")) and not stale, f"--force with another format left {stale} beside the new files"


def _source_removed(ctx: Ctx) -> list[str]:
    src = ctx.src(3)
    ok(*_apply(ctx, src=src))
    (src / "img2.png").unlink()
    return _apply(ctx, src=src)


def _removed_gone(ctx: Ctx, out: str, err: str) -> None:
    files = json.loads((ctx.o / "dst" / "faap-apply.json").read_text())["files"]
    assert "img2.png" not in json.dumps(files) or "img2" in err, "a removed source is still in the manifest, unsaid"


def _resume_one(ctx: Ctx) -> list[str]:
    ok(*_apply(ctx))
    (ctx.o / "dst" / "img1.png").unlink()
    return _apply(ctx)


def _rewrote_one(ctx: Ctx, out: str, err: str) -> None:
    assert "wrote 1" in err and (ctx.o / "dst" / "img1.png").is_file(), err


def _coco(ctx: Ctx, *extra: object) -> list[str]:
    return _apply(ctx, "--split", "test", *extra, src=ctx.world["data"])


def _coco_written(ctx: Ctx, out: str, err: str) -> None:
    files = [p for p in (ctx.o / "dst").rglob("*") if p.suffix == ".png"]
    assert len(files) == 6 and list((ctx.o / "dst").rglob("instances_test.json")), err


def _truncated_src(ctx: Ctx, *extra: object) -> list[str]:
    src = ctx.src(2)
    truncate(src / "img1.png", 0.4)
    return _apply(ctx, *extra, src=src)


def _skipped_listed(ctx: Ctx, out: str, err: str) -> None:
    manifest = json.loads((ctx.o / "dst" / "faap-apply.json").read_text())
    assert any("img1.png" in c for c in manifest["corrupt"]) and list(manifest["files"]) == ["img0.png"], manifest


def _other_run_into_dst(ctx: Ctx) -> list[str]:
    ok(*_apply(ctx))
    return _apply(ctx, run=ctx.seedset() / "seed-0", src=ctx.src())


def _foreign_dst(ctx: Ctx) -> list[str]:
    (ctx.o / "dst").mkdir()
    (ctx.o / "dst" / "mine.txt").write_text("keep")
    return _apply(ctx)


def _warned_jpeg(ctx: Ctx, out: str, err: str) -> None:
    assert "warning" in err.lower() and len(list((ctx.o / "dst").glob("*.jpg"))) == 2, err


def _clash(ctx: Ctx) -> list[str]:
    src = ctx.src(1)
    image(src / "a.jpg")
    image(src / "a.png")
    return _apply(ctx, src=src)


def _api_perturbs(ctx: Ctx):
    import torch

    import faapkit

    def call() -> None:
        perturb = faapkit.load_perturbation(ctx.run())
        x = torch.rand(2, 3, 128, 170)
        with torch.no_grad():
            y = perturb(x)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
        assert 0 < float((y - x).abs().max()) <= 0.2

    return call


def _api(loader: str, target):
    import faapkit

    return lambda ctx: (lambda: getattr(faapkit, loader)(target(ctx)))


def _api_bad_tensor(make):
    def prepare(ctx: Ctx):
        import faapkit

        perturb = faapkit.load_perturbation(ctx.run())
        return lambda: perturb(make())

    return prepare


def _fair_detects(ctx: Ctx):
    import torch

    import faapkit

    def call() -> None:
        fair = faapkit.load_fair_detector(ctx.run())
        img = Image.open(next((ctx.world["data"] / "images" / "test").glob("*.jpg"))).convert("RGB")
        x = torch.from_numpy(__import__("numpy").asarray(img).copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            got = fair(x)
        text = repr(got)
        assert "box" in text.lower() or isinstance(got, (list, tuple, dict)), text[:200]

    return call


def _best_flipped(ctx: Ctx) -> Path:
    flip_byte(ctx.run() / "checkpoints" / "best.pt")
    return ctx.run()


def _text_checkpoint(ctx: Ctx) -> Path:
    (ctx.o / "t.pt").write_text("x")
    return ctx.o / "t.pt"


def _u8():
    import torch

    return (torch.rand(1, 3, 64, 80) * 255).to(torch.uint8)


def _chw():
    import torch

    return torch.rand(3, 64, 80)


def _nan_image():
    import torch

    x = torch.rand(1, 3, 64, 80)
    x[0, 0, 0, 0] = float("nan")
    return x


CASES = [
    Case("export-torchscript-ok", lambda c: _export(c, "--format", "torchscript", "--out", c.o / "p.ts"),
         Works(_exported("p.ts"))),
    Case("export-onnx-ok", lambda c: _export(c, "--format", "onnx", "--out", c.o / "p.onnx"),
         Works(_exported("p.onnx"))),
    Case("export-with-detector-torchscript", lambda c: _export(c, "--format", "torchscript", "--with-detector",
         "--out", c.o / "f.ts"), Works(_exported("f.ts"))),
    Case("export-format-bogus", lambda c: _export(c, "--format", "tflite", "--out", c.o / "p.x"), Refused(r"tflite")),
    Case("export-existing-without-force", lambda c: ((c.o / "p.ts").write_bytes(b"mine"), _export(
         c, "--format", "torchscript", "--out", c.o / "p.ts"))[1], Refused(r"--force")),
    Case("export-out-folder", lambda c: _export(c, "--format", "torchscript", "--out", c.o), Refused(r"/o\b|folder")),
    Case("export-out-missing-parent", lambda c: _export(c, "--format", "torchscript", "--out", c.o / "x" / "p.ts"),
         Refused(r"x")),
    Case("export-out-run-json", lambda c: _export(c, "--format", "torchscript", "--out", c.run() / "run.json",
         "--force"), Refused(r"run\.json")),
    Case("export-suffix-mismatch", lambda c: _export(c, "--format", "onnx", "--out", c.o / "p.ts"),
         Refused(r"\.ts|suffix|\.onnx")),
    Case("export-black-box-detector-reader", lambda c: _export(c, "--format", "torchscript", "--black-box", "--out",
         c.o / "p.ts"), Refused(r"--with-detector")),
    Case("export-epoch-absent", lambda c: _export(c, "--format", "torchscript", "--epoch", "7", "--out",
         c.o / "p.ts"), Refused(r"7")),
    Case("export-not-a-run", lambda c: cli("export", c.o, "--format", "torchscript"), Refused(r"/o\b|run")),
    Case("export-missing-run", lambda c: cli("export", c.tmp / "gone", "--format", "torchscript"), Refused(r"gone")),
    Case("export-seedset", lambda c: cli("export", c.seedset(), "--format", "torchscript", "--out", c.o / "p.ts"),
         Refused(r"seed")),
    Case("export-best-changed", lambda c: _export(c, "--format", "torchscript", "--out", c.o / "p.ts",
         run=_best_flipped(c)), Refused(r"--epoch N")),
    Case("export-nothing-chosen", lambda c: _export(c, "--format", "torchscript", "--out", c.o / "p.ts",
         run=_no_best_selection_none(c)), Refused(r"--epoch")),
    Case("export-junk-checkpoint", lambda c: ((c.o / "j.pt").write_text("x"), cli(
         "export", c.o / "j.pt", "--format", "torchscript", "--out", c.o / "p.ts"))[1], Refused(r"j\.pt")),
    Case("apply-folder-ok", lambda c: _apply(c), Works(_applied(2))),
    Case("apply-coco-split-ok", lambda c: _coco(c), Works(_coco_written)),
    Case("apply-coco-split-unknown", lambda c: _apply(c, "--split", "nope", src=c.world["data"]), Refused(r"nope")),
    Case("apply-split-on-plain-folder", lambda c: _apply(c, "--split", "test"), Refused(r"--split|annotations")),
    Case("apply-dst-equals-src", lambda c: cli("apply", c.run(), c.src(), "--out", c.src()), Refused(r"SRC|src")),
    Case("apply-dst-inside-src", lambda c: cli("apply", c.run(), c.src(), "--out", c.src() / "d"),
         Refused(r"inside SRC|SRC")),
    Case("apply-src-missing", lambda c: _apply(c, src=c.tmp / "nosrc"), Refused(r"nosrc")),
    Case("apply-src-empty", lambda c: ((c.tmp / "empty").mkdir(), _apply(c, src=c.tmp / "empty"))[1],
         Refused(r"empty|no image")),
    Case("apply-dst-holds-other-files", _foreign_dst, Refused(r"--force")),
    Case("apply-format-bogus", lambda c: _apply(c, "--format", "gif"), Refused(r"gif")),
    Case("apply-quality-with-png", lambda c: _apply(c, "--quality", "90"), Refused(r"--quality")),
    Case("apply-quality-0", lambda c: _apply(c, "--format", "jpeg", "--quality", "0"), Refused(r"--quality|quality")),
    Case("apply-on-corrupt-bogus", lambda c: _apply(c, "--on-corrupt", "ignore"), Refused(r"ignore|on-corrupt")),
    Case("apply-truncated-image", lambda c: _truncated_src(c), Refused(r"img1\.png")),
    Case("apply-truncated-image-skipped", lambda c: _truncated_src(c, "--on-corrupt", "skip"), Works(_skipped_listed)),
    Case("apply-names-clash", _clash, Refused(r"a\.jpg and a\.png|a\.png and a\.jpg")),
    Case("apply-seedset", lambda c: _apply(c, run=c.seedset()), Refused(r"seed")),
    Case("apply-another-run-into-dst", _other_run_into_dst, Refused(r"--force|another")),
    Case("apply-resume-one-lost-output", _resume_one, Works(_rewrote_one)),
    Case("apply-jpeg-warns", lambda c: _apply(c, "--format", "jpeg", "--quality", "95"), Works(_warned_jpeg)),
    Case("apply-best-changed", lambda c: _apply(c, run=_best_flipped(c)), Refused(r"--epoch N")),
    Case("apply-multipage-tiff", _tiff, Refused(r"stack\.tif"), tag="deploy WEAK: a multi-page TIFF read as page 1"),
    Case("apply-force-other-format", _force_other_format, Works(_only_jpegs),
         tag="deploy WEAK: --force with another format leaves the old files"),
    Case("apply-source-removed", _source_removed, Works(_removed_gone),
         tag="deploy WEAK: a removed source stays in the manifest"),
    Case("api-load-perturbation-ok", _api_perturbs, Works()),
    Case("api-load-fair-detector-ok", _fair_detects, Works()),
    Case("api-load-missing", _api("load_perturbation", lambda c: c.tmp / "gone"), Raises(r"gone")),
    Case("api-load-not-a-run", _api("load_perturbation", lambda c: c.o), Raises(r"/o\b|run")),
    Case("api-load-seedset", _api("load_perturbation", lambda c: c.seedset()), Raises(r"seed")),
    Case("api-load-best-changed", _api("load_perturbation", _best_flipped), Raises(r"best\.pt")),
    Case("api-load-nothing-chosen", _api("load_perturbation", _no_best_selection_none), Raises(r"--epoch|epoch")),
    Case("api-load-fair-detector-seedset", _api("load_fair_detector", lambda c: c.seedset()), Raises(r"seed")),
    Case("api-load-text-checkpoint", _api("load_perturbation", _text_checkpoint),
         Raises(r"t\.pt")),
    Case("api-perturb-uint8", _api_bad_tensor(_u8), Raises(r"float|255")),
    Case("api-perturb-chw", _api_bad_tensor(_chw), Raises(r"\(N, 3, H, W\)")),
    Case("api-perturb-nan", _api_bad_tensor(_nan_image), Raises(r"NaN|nan|finite")),
]
