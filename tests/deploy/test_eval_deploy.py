"""faap eval --codec (the images pass through an image codec before the detector) and faap eval
--exported (the exported file scored in place of the checkpoint's generator)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from faapkit.data.codecs import Codec, parse_codec, round_trip, through_codec
from faapkit.errors import ConfigError
from tests.conftest import compare_json, one_error, run_here
from tests.deploy.conftest import eval_json


def test_codec_names_are_parsed_and_bad_ones_refused():
    assert parse_codec("png") == Codec("png") and str(parse_codec("JPEG:95")) == "jpeg:95"
    assert parse_codec("webp:80") == Codec("webp", 80)
    for bad in ("gif", "jpeg", "jpeg:0", "jpeg:101", "png:9", "webp:x"):
        with pytest.raises(ConfigError):
            parse_codec(bad)


def test_png_keeps_8_bit_images_and_jpeg_changes_them():
    from faapkit.data.transforms import normalize

    pixels = torch.randint(0, 256, (2, 3, 20, 28), dtype=torch.uint8)
    images = normalize(pixels.float() / 255)
    assert torch.allclose(through_codec(images, Codec("png")), images, atol=1e-6)
    lossy = through_codec(images, Codec("jpeg", 75))
    assert lossy.shape == images.shape and float((lossy - images).abs().max()) > 0.1
    image = Image.fromarray(pixels[0].permute(1, 2, 0).numpy())
    assert round_trip(image, Codec("png")).tobytes() == image.tobytes()


def test_eval_codec_is_recorded_paired_and_shown_by_compare(deploy_run, run_metrics, tmp_path):
    out = tmp_path / "jpeg.json"
    result = eval_json(str(deploy_run), "--codec", "jpeg:95", "--bootstrap", "50", "--out", str(out))
    assert result["eval"]["codec"] == "jpeg:95" and run_metrics["eval"]["codec"] is None
    assert result["metrics"]["baseline"] != run_metrics["metrics"]["baseline"]  # the baseline went through it too
    assert "share_closed" in result["gaps"]["AP"] and result["bootstrap"]["method"].startswith("paired")
    assert "share_closed" in result["bootstrap"]["gaps"]["AP"]  # its CI (None where 6 images leave it undefined)
    rows, _ = compare_json(str(out))
    assert {r.get("codec") for r in rows["rows"] if r.get("setting") == "perturbed"} == {"jpeg:95"}
    code, _, err = run_here("eval", str(deploy_run), "--codec", "jpeg:200", "--out", str(tmp_path / "x.json"))
    one_error(err, 2, code, "--codec 'jpeg:200'")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_eval_exported_gives_the_runs_ap(deploy_run, exports, run_metrics, tmp_path, fmt):
    result = eval_json("--exported", str(exports[fmt]), "--out", str(tmp_path / "exported.json"))
    assert result["exported"]["format"] == fmt and result["run_id"] == run_metrics["run_id"]
    for setting in ("baseline", "perturbed"):
        for group, metrics in run_metrics["metrics"][setting].items():
            assert abs(result["metrics"][setting][group]["AP"] - metrics["AP"]) <= 1e-4
    rows, _ = compare_json(str(tmp_path / "exported.json"))
    assert {r.get("exported") for r in rows["rows"] if r.get("setting") == "perturbed"} == {fmt}


def test_eval_exported_refuses_a_file_of_another_checkpoint(deploy_run, exports, tmp_path):
    epoch = str(deploy_run / "checkpoints" / "last.pt")
    code, _, err = run_here("eval", epoch, "--exported", str(exports["onnx"]), "--out", str(tmp_path / "m.json"))
    one_error(err, 1, code, "was exported from a checkpoint with sha256")


def test_eval_exported_refuses_a_size_the_file_does_not_accept(deploy_run, exports, tmp_path):
    import json
    import shutil

    from faapkit.artifacts.exported import check_accepted, sealed, sidecar_path

    fixed = tmp_path / "fixed.onnx"  # a file whose sidecar accepts one size only (sealed as faap export would)
    shutil.copy(exports["onnx"], fixed)
    sidecar = json.loads(sidecar_path(exports["onnx"]).read_text())
    narrowed = sealed({**sidecar, "accepted_sizes": [[128, 170]], "run": str(deploy_run)})
    sidecar_path(fixed).write_text(json.dumps(narrowed))
    code, _, err = run_here("eval", str(deploy_run), "--exported", str(fixed), "--out", str(tmp_path / "m.json"))
    one_error(err, 1, code, "does not accept")
    assert not (tmp_path / "m.json").exists()
    with pytest.raises(Exception, match="batches of 1"):
        check_accepted({**sidecar, "batch": 1}, 8, 128, 170, fixed)
