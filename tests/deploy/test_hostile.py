"""What a demanding user throws at the deploy commands (docs/reliability.md, "Deploy commands:
hostile pass"): clashing output names, outputs escaping DST or landing in SRC, broken COCO
files, images the size policy cannot resize, odd codec spellings, exports that do not load, and
tensors the Python API must refuse rather than perturb into garbage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import one_error, run_here


def _image(path: Path, size: tuple[int, int] = (160, 120)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 150)).save(path)


def test_two_sources_written_under_one_name_are_refused_before_work(deploy_run, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _image(src / "a" / "clash.jpg")
    _image(src / "a" / "clash.png")
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--no-progress")
    one_error(err, 1, code, "a/clash.jpg and a/clash.png")
    assert not dst.exists()


def test_an_output_inside_src_is_refused_even_with_force(deploy_run, tmp_path):
    """DST an ancestor of SRC: SRC's subfolder named like SRC would be written over SRC's files."""
    src = tmp_path / "src"
    _image(src / "a.png")
    _image(src / "src" / "a.png", (100, 90))
    before = (src / "a.png").read_bytes()
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(tmp_path), "--force", "--no-progress")
    one_error(err, 1, code, "inside SRC")
    assert (src / "a.png").read_bytes() == before


def test_a_coco_file_name_escaping_dst_is_refused(deploy_run, deploy_data, tmp_path):
    root = tmp_path / "coco"
    shutil.copytree(deploy_data, root)
    victim = tmp_path / "victim" / "v.png"
    _image(victim)
    ann = root / "annotations" / "instances_test.json"
    coco = json.loads(ann.read_text())
    coco["images"][0]["file_name"] = "../../../victim/v.png"
    ann.write_text(json.dumps(coco))
    dst = tmp_path / "dst" / "x"
    code, _, err = run_here("apply", str(deploy_run), str(root), "--split", "test", "--out", str(dst), "--no-progress")
    one_error(err, 1, code, "outside --out")
    assert not (tmp_path / "dst" / "victim").exists()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{", "not valid JSON"),
        ('{"annotations": []}', "no 'images' list"),
        ('{"images": [{"id": 1}]}', "no 'file_name'"),
    ],
)
def test_a_broken_coco_file_is_named_in_one_line(deploy_run, deploy_data, tmp_path, text, says):
    root = tmp_path / "coco"
    shutil.copytree(deploy_data, root)
    (root / "annotations" / "instances_test.json").write_text(text)
    code, _, err = run_here("apply", str(deploy_run), str(root), "--split", "test", "--out", str(tmp_path / "d"))
    one_error(err, 1, code, says)
    assert "instances_test.json" in err and not (tmp_path / "d").exists()


def test_an_image_the_size_policy_cannot_resize_is_named_and_skippable(deploy_run, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _image(src / "ok.png")
    _image(src / "sliver.png", (10000, 10))  # 128 x 213 policy: 0 pixels high
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--no-progress")
    one_error(err, 1, code, "sliver.png")
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--on-corrupt", "skip")
    assert code == 0, err
    manifest = json.loads((dst / "faap-apply.json").read_text())
    assert list(manifest["files"]) == ["ok.png"] and manifest["corrupt"] == [str(src / "sliver.png")]


def test_a_rerun_says_what_it_wrote_and_what_it_skipped(deploy_run, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _image(src / "a.png")
    _image(src / "b.png")
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--no-progress")
    assert code == 0 and "wrote 2 images" in err, err
    (dst / "b.png").unlink()
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--no-progress")
    assert code == 0 and "wrote 1 images" in err and "1 already written" in err, err


def test_an_unreadable_manifest_is_called_that(deploy_run, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _image(src / "a.png")
    dst.mkdir()
    (dst / "faap-apply.json").write_text("{")
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--no-progress")
    one_error(err, 1, code, "is not readable JSON")


@pytest.mark.parametrize("codec", ["jpeg:\u00b2", "jpeg:\u0669\u0665"])
def test_a_quality_in_non_ascii_digits_is_refused(deploy_run, codec):
    code, _, err = run_here("eval", str(deploy_run), "--codec", codec, "--bootstrap", "0")
    one_error(err, 2, code, "needs a quality 1..100")


def test_one_codec_spelled_two_ways_is_one_evaluation(deploy_run, tmp_path):
    code, out, err = run_here("eval", str(deploy_run), "--codec", "JPEG:095", "--bootstrap", "0", "--no-cache")
    assert code == 0, err
    written = [p.name for p in (deploy_run / "eval").glob("*codec*.json")]
    assert any("codec-jpeg95" in name for name in written), written
    code, _, err = run_here("eval", str(deploy_run), "--codec", "jpeg:95", "--bootstrap", "0", "--no-cache")
    one_error(err, 1, code, "--force")


def test_an_export_that_does_not_load_as_its_sidecar_says_is_named(exports, tmp_path):
    file = tmp_path / "p.onnx"
    shutil.copy(exports["onnx"], file)
    sidecar = json.loads(Path(f"{exports['onnx']}.json").read_text())
    (tmp_path / "p.onnx.json").write_text(json.dumps({**sidecar, "format": "torchscript"}))
    code, _, err = run_here("eval", "--exported", str(file), "--bootstrap", "0", "--no-cache")
    one_error(err, 1, code, f"cannot load {file} as torchscript")


def test_exported_naming_a_folder_says_so(deploy_run, tmp_path):
    code, _, err = run_here("eval", str(deploy_run), "--exported", str(tmp_path), "--bootstrap", "0")
    one_error(err, 1, code, "is not a file")


def test_the_perturbation_refuses_tensors_it_would_turn_into_garbage(deploy_run):
    import torch

    import faapkit

    perturb = faapkit.load_perturbation(deploy_run)
    x = torch.rand(1, 3, 64, 80)
    for bad, says in (
        ((x * 255).to(torch.uint8), "float"),
        (x[0], "(N, 3, H, W)"),
        (torch.rand(1, 4, 64, 80), "(N, 3, H, W)"),
    ):
        with pytest.raises(ValueError, match=r"\(N, 3, H, W\)|float") as info:
            perturb(bad)
        assert says in str(info.value)
    for value in (float("nan"), float("inf")):
        bad = x.clone()
        bad[0, 1, 3, 4] = value
        with pytest.raises(ValueError, match="1 NaN or infinite value"):
            perturb(bad)
    with torch.no_grad():
        assert torch.equal(perturb(x.double()), perturb(x).double())


def test_a_replaced_best_pt_is_refused_naming_an_option_the_deploy_commands_take(deploy_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(deploy_run, run, ignore=shutil.ignore_patterns("eval", "export"))
    best = run / "checkpoints" / "best.pt"
    data = bytearray(best.read_bytes())
    data[-100] ^= 1
    best.write_bytes(bytes(data))
    _image(tmp_path / "src" / "a.png")
    apply = ("apply", str(run), str(tmp_path / "src"), "--out", str(tmp_path / "dst"))
    for args in (("export", str(run), "--format", "torchscript"), apply):
        code, _, err = run_here(*args)
        one_error(err, 1, code, "name another checkpoint with --epoch N")
        assert "--accept-changed-best" not in err


def test_an_export_clears_the_temporary_file_a_killed_export_left(deploy_run, tmp_path):
    out = tmp_path / "p [1].ts"
    stale = tmp_path / ".p [1].ts.k1ll3d.tmp.ts"
    stale.write_bytes(b"half an export")
    (tmp_path / "keep.ts").write_bytes(b"not ours")
    code, _, err = run_here("export", str(deploy_run), "--format", "torchscript", "--out", str(out))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ts", "p [1].ts", "p [1].ts.json"]


def _apply(run: Path, src: Path, dst: Path, *extra: str) -> tuple[int, str, str]:
    return run_here("apply", str(run), str(src), "--out", str(dst), "--no-progress", *extra)


def test_an_unreadable_image_is_refused_before_anything_is_written(deploy_run, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _image(src / "a.png")
    _image(src / "b.png")
    (src / "b.png").write_bytes((src / "b.png").read_bytes()[:60])
    code, _, err = _apply(deploy_run, src, dst)
    one_error(err, 1, code, "b.png")
    assert not dst.exists() or not any(dst.iterdir())


def test_a_multi_page_tiff_is_refused_naming_it(deploy_run, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    pages = [Image.new("RGB", (160, 120), (30 * i, 90, 120)) for i in range(3)]
    src.mkdir()
    pages[0].save(src / "stack.tif", save_all=True, append_images=pages[1:])
    code, _, err = _apply(deploy_run, src, dst)
    one_error(err, 1, code, "stack.tif")
    assert "3 pages" in err and (not dst.exists() or not any(dst.iterdir()))


def test_force_with_another_format_removes_the_files_it_replaces(deploy_run, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _image(src / "a.png")
    _image(src / "sub" / "b.png")
    assert _apply(deploy_run, src, dst)[0] == 0
    (dst / "mine.txt").write_text("not the apply's")
    code, _, err = _apply(deploy_run, src, dst, "--format", "jpeg", "--quality", "90", "--force")
    assert code == 0, err
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.*")) == [
        "a.jpg", "faap-apply.json", "mine.txt", "sub/b.jpg"
    ]  # fmt: skip


def test_a_removed_source_leaves_the_manifest_and_its_output(deploy_run, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for name in ("a.png", "b.png"):
        _image(src / name)
    assert _apply(deploy_run, src, dst)[0] == 0
    (src / "b.png").unlink()
    code, _, err = _apply(deploy_run, src, dst)
    assert code == 0 and "removed 1" in err and "b.png" in err, err
    assert list(json.loads((dst / "faap-apply.json").read_text())["files"]) == ["a.png"]
    assert not (dst / "b.png").exists() and (dst / "a.png").is_file()
