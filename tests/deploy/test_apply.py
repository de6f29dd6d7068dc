"""faap apply: perturbed images written losslessly at the detector's input scale, scored by faap
eval --data as the run's perturbed setting; resumable; never into SRC; every refusal in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import one_error, run_here
from tests.deploy.conftest import eval_json

# 8-bit rounding moves each pixel by at most half a grey level; on these 6 test images it moved
# each group's AP by 0.0004 (the round-trip test prints it); this bound leaves room for other torch builds
ROUNDING_AP = 0.005


@pytest.fixture(scope="module")
def applied(deploy_run, deploy_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("applied") / "dst"
    code, _, err = run_here("apply", str(deploy_run), str(deploy_data), "--split", "test", "--out", str(out))
    assert code == 0, err
    return out


def test_applied_split_scores_as_the_runs_perturbed_setting(deploy_run, applied, run_metrics):
    run = run_metrics
    detector = run["detector"]["name"]
    scored = eval_json("--data", str(applied), "--detector", detector, "--out", str(applied.parent / "dst-eval.json"))
    assert scored["dataset"]["images"] == run["dataset"]["images"] == 6
    assert run["metrics"]["perturbed"] != run["metrics"]["baseline"]  # the perturbation moves the numbers
    for group, metrics in run["metrics"]["perturbed"].items():
        ap, got = metrics["AP"], scored["metrics"]["baseline"][group]["AP"]
        print(f"AP {group}: run perturbed {ap:.4f}, applied PNGs {got:.4f}, diff {abs(got - ap):.4f}")
        assert abs(got - ap) <= ROUNDING_AP
    manifest = json.loads((applied / "faap-apply.json").read_text())
    selection = json.loads((deploy_run / "selection.json").read_text())
    assert manifest["complete"] and manifest["checkpoint_sha256"] == selection["checkpoint_sha256"]
    assert manifest["run_id"] == run["run_id"] and len(manifest["files"]) == 6
    assert all(name.endswith(".png") and (applied / name).is_file() for name in manifest["files"])


def test_a_folder_is_applied_recursively_resumably_and_exif_upright(deploy_run, tmp_path):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    image = Image.new("RGB", (160, 120), (90, 120, 150))
    image.save(src / "one.jpg")
    image.save(src / "a" / "two.png")
    image.save(src / "a" / "b" / "three.webp")
    image.save(src / "a" / "b" / "four.tiff")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees: portrait upright
    image.save(src / "a" / "rotated.jpg", exif=exif)
    (src / "notes.txt").write_text("not an image")
    dst = tmp_path / "dst"
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--no-progress")
    assert code == 0, err
    manifest = json.loads((dst / "faap-apply.json").read_text())
    names = {"one.png", "a/two.png", "a/b/three.png", "a/b/four.png", "a/rotated.png"}
    assert set(manifest["files"]) == names and manifest["size_policy"]["min_size"] == 128
    assert Image.open(dst / "one.png").size == (170, 128)  # short side to the detector's 128
    assert Image.open(dst / "a" / "rotated.png").size == (128, 170)  # upright: EXIF applied
    assert all(len(entry["source_sha256"]) == 64 for entry in manifest["files"].values())
    times = {n: (dst / n).stat().st_mtime_ns for n in names}
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--no-progress")
    assert code == 0, err
    assert {n: (dst / n).stat().st_mtime_ns for n in names} == times  # resumed: nothing rewritten
    (dst / "one.png").write_bytes(b"half")  # a damaged output is written again
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--no-progress")
    assert code == 0 and Image.open(dst / "one.png").size == (170, 128), err


def test_refusals(deploy_run, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (128, 128)).save(src / "ok.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    for dst, says in ((src, "is SRC"), (src / "out", "inside SRC")):
        code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst))
        one_error(err, 1, code, says)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(other))
    one_error(err, 1, code, "holds other files; name an empty folder or pass --force")
    dst = tmp_path / "dst"
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--no-progress")
    one_error(err, 1, code, "broken.jpg")
    assert "--on-corrupt skip" in err
    code, _, err = run_here("apply", str(deploy_run), str(src), "--out", str(dst), "--on-corrupt", "skip")
    assert code == 0, err
    manifest = json.loads((dst / "faap-apply.json").read_text())
    assert list(manifest["files"]) == ["ok.png"] and manifest["corrupt"] == [str(src / "broken.jpg")]
    code, _, err = run_here(
        "apply",
        str(deploy_run),
        str(src),
        "--out",
        str(tmp_path / "j"),
        "--format",
        "jpeg",
        "--quality",
        "95",
        "--on-corrupt",
        "skip",
        "--no-progress",
    )
    assert code == 0 and "reversed" in err and (tmp_path / "j" / "ok.jpg").is_file(), err
    assert sorted(p.name for p in src.iterdir()) == ["broken.jpg", "ok.png"]  # SRC untouched
