"""faap export: TorchScript and ONNX files equal to the eager module at two sizes (torch.jit.load,
onnxruntime), the sidecar, and every refusal in one line."""

from __future__ import annotations

import json

import pytest
import torch

import faapkit
from faapkit.artifacts.exported import load_runner, read_sidecar
from faapkit.deploy.export import example_images
from faapkit.errors import FaapError
from tests.conftest import one_error, run_here

SUFFIX = {"torchscript": ".ts", "onnx": ".onnx"}


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_the_eager_perturbation_at_two_sizes(deploy_run, exports, fmt):
    out = exports[fmt]
    sidecar = read_sidecar(out)
    eager = faapkit.load_perturbation(deploy_run)
    assert sidecar["format"] == fmt and sidecar["interface"] == "perturbation"
    assert sidecar["accepted_sizes"] == "any" and sidecar["carries_detector"] is True
    assert sidecar["run_id"] == json.loads((deploy_run / "run.json").read_text())["run_id"]
    assert sidecar["checkpoint_sha256"] == eager.info.checkpoint_sha256
    assert sidecar["detector"]["sha256"] == eager.info.detector["sha256"] and sidecar["epsilon"] == eager.info.epsilon
    assert sidecar["faapkit"] == faapkit.__version__ and sidecar["parity"]["max_abs"] <= 1e-4
    run = load_runner(out, fmt)
    for h, w in [(128, 170), (170, 128), (131, 150)]:  # the eval sizes, and one the file was not traced at
        images = example_images(h, w, n=2, seed=7)
        got, want = run(images), eager(images)
        assert got.shape == want.shape and float((got - want).abs().max()) <= 1e-4


@pytest.mark.parametrize("fmt", ["onnx"])
def test_export_with_detector_gives_the_fair_detectors_detections(deploy_run, tmp_path, fmt):
    out = tmp_path / f"f{SUFFIX[fmt]}"
    code, _, err = run_here("export", str(deploy_run), "--format", fmt, "--with-detector", "--out", str(out))
    assert code == 0, err
    assert read_sidecar(out)["interface"] == "fair-detector" and read_sidecar(out)["batch"] == 1
    eager = faapkit.load_fair_detector(deploy_run)
    run = load_runner(out, fmt)
    for h, w in [(128, 170), (170, 128)]:
        images = example_images(h, w, n=1, seed=3)
        (boxes, scores, labels), (b, s, lab) = eager(images), run(images)
        assert float((boxes - b).abs().max()) / max(h, w) <= 1e-4 and float((scores - s).abs().max()) <= 1e-4
        assert torch.equal(labels, lab.to(labels.dtype))


def test_refusals_are_one_line_and_write_nothing(deploy_run, tmp_path, monkeypatch):
    out = tmp_path / "p.ts"
    code, _, err = run_here("export", str(deploy_run), "--format", "tflite", "--out", str(out))
    one_error(err, 2, code, "--format 'tflite' is not one of torchscript, onnx")
    code, _, err = run_here("export", str(deploy_run), "--format", "torchscript", "--out", str(tmp_path / "p.onnx"))
    one_error(err, 2, code, "must end in one of .ts")
    code, _, err = run_here("export", str(deploy_run), "--format", "torchscript", "--black-box", "--out", str(out))
    one_error(err, 1, code, "--with-detector")
    assert "pixel-only" in err and not out.exists()
    out.write_text("mine")
    code, _, err = run_here("export", str(deploy_run), "--format", "torchscript", "--out", str(out))
    one_error(err, 1, code, "exists; pass --force")
    assert out.read_text() == "mine"
    monkeypatch.setattr("faapkit.deploy.export.missing_onnx_packages", lambda: ["onnxscript"])
    code, _, err = run_here("export", str(deploy_run), "--format", "onnx", "--out", str(tmp_path / "p.onnx"))
    one_error(err, 1, code, "pip install 'faapkit[export]'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.ts"]  # no temporary left behind


def test_a_run_that_chose_no_checkpoint_is_refused_naming_epoch(deploy_run, tmp_path):
    import shutil

    unchosen = tmp_path / "run"
    shutil.copytree(deploy_run, unchosen)
    (unchosen / "checkpoints" / "best.pt").unlink()
    (unchosen / "selection.json").unlink()
    code, _, err = run_here("export", str(unchosen), "--format", "torchscript")
    one_error(err, 1, code, "--epoch")
    assert not (unchosen / "export").exists()


def _copy_with_sidecar(file, folder, change):
    """``file`` and its sidecar copied into ``folder``, the sidecar passed through ``change``."""
    import shutil

    copy = folder / file.name
    shutil.copy(file, copy)
    sidecar = json.loads(file.with_name(file.name + ".json").read_text())
    change(sidecar)
    copy.with_name(copy.name + ".json").write_text(json.dumps(sidecar))
    return copy


EDITS = {
    "epsilon": lambda s: s.__setitem__("epsilon", s["epsilon"] * 2),
    "run_id": lambda s: s.__setitem__("run_id", "0" * 32),
    "sidecar_sha256": lambda s: s.__setitem__("accepted_sizes", [[128, 170]]),
}


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("key", list(EDITS))
def test_an_edited_sidecar_is_refused_naming_the_key(deploy_run, exports, tmp_path, fmt, key):
    file = _copy_with_sidecar(exports[fmt], tmp_path, EDITS[key])
    code, _, err = run_here("eval", str(deploy_run), "--exported", str(file), "--out", str(tmp_path / "m.json"))
    one_error(err, 1, code, key)
    assert f"{file.name}.json" in err and not (tmp_path / "m.json").exists()
    with pytest.raises(FaapError, match=key):
        faapkit.load_perturbation(file)


def test_a_resealed_sidecar_still_names_the_epsilon_the_file_was_exported_with(exports, tmp_path):
    from faapkit.artifacts.exported import sealed

    def double(sidecar):
        sidecar["epsilon"] *= 2
        sidecar.update(sealed(sidecar))

    file = _copy_with_sidecar(exports["onnx"], tmp_path, double)
    with pytest.raises(FaapError, match="epsilon is .* exported with"):
        read_sidecar(file)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_load_perturbation_runs_an_exported_file(deploy_run, exports, fmt):
    images = example_images(128, 170, n=1, seed=3)
    exported, eager = faapkit.load_perturbation(exports[fmt]), faapkit.load_perturbation(deploy_run)
    assert float((exported(images) - eager(images)).abs().max()) <= 1e-4
    with pytest.raises(FaapError, match="load_perturbation"):
        faapkit.load_fair_detector(exports[fmt])
