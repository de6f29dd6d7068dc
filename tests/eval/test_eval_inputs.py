"""What ``faap eval`` reads from the run it evaluates (:mod:`faapkit.evaluate.command.settings`): the
benchmark it trained on and its detector weights, named so the metrics mean the same anywhere."""

from __future__ import annotations

from pathlib import Path


def test_a_run_on_an_embedded_benchmark_is_evaluated_on_that_benchmark(tmp_path, monkeypatch):
    """A run on the embedded benchmark records its cache folder (seed and bias); its evaluation
    uses that benchmark, not whatever the default is when it is evaluated."""
    import faapkit.data.synth as synth
    from faapkit.evaluate.command.settings import run_data
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries

    asked: list[tuple] = []
    monkeypatch.setattr(synth, "embedded_dataset", lambda *a: asked.append(a) or tmp_path / "coco")
    run_data({}, None, None, None, str(tmp_path / "cache" / "synth-v2-seed0" / "coco"))
    run_data({}, None, None, None, str(tmp_path / "mine" / "coco"))  # not an embedded benchmark
    run_data({}, None, None, None, None)  # no run: the default
    v2 = Registries.from_plugin_manager(make_plugin_manager()).detectors.get("detr-synth-tiny-v2")
    run_data({}, None, None, None, None, (v2, None))  # no run, the v2 detector: its benchmark
    assert asked == [(0, "v2"), (0, "v4"), (0, "v4"), (0, "v2")]
    own = {"data": {"root": str(tmp_path / "x")}}
    _, root = run_data(own, None, None, None, str(tmp_path / "synth-v2-seed0" / "coco"))
    assert root == tmp_path / "x" and len(asked) == 4, "a run's own data.root wins"
    chosen = {"data": {"benchmark": "v3"}}
    run_data(chosen, None, None, None, None, (v2, None))  # the run's data.benchmark, not its detector's
    run_data(chosen, None, None, None, str(tmp_path / "cache" / "synth-v2-seed0" / "coco"))  # what it recorded
    assert asked[4:] == [(0, "v3"), (0, "v2")]


def test_a_relative_detector_checkpoint_is_recorded_absolute(tmp_path, monkeypatch):
    """The metrics JSON names the detector file wherever it is later read from."""
    from faapkit.evaluate.command.settings import run_detector

    monkeypatch.chdir(tmp_path)
    assert run_detector({}, None, Path("w.pth")) == ("detr-synth-tiny-v3", tmp_path / "w.pth")
    stored = {"detector": {"name": "detr-synth-tiny-v2", "checkpoint": "/runs/d.pth"}}
    assert run_detector(stored, None, None) == ("detr-synth-tiny-v2", Path("/runs/d.pth"))


def test_on_corrupt_skip_leaves_an_undecodable_image_out_and_counts_it(tmp_path):
    """``faap eval --on-corrupt skip`` scores the images that decode and records how many did not;
    without it the image is named and nothing is written."""
    import json

    from faapkit.data.synth import SynthSpec, write_synthetic
    from tests.conftest import one_error, run_here

    root = write_synthetic(tmp_path / "s", SynthSpec(seed=5, splits=(("test", 3, 3),))) / "coco"
    broken = sorted((root / "images" / "test").iterdir())[1]
    broken.write_bytes(b"not an image")  # a file PIL cannot even identify
    args = ("eval", "--data", str(root), "--split", "test", "--bootstrap", "0", "--no-cache")
    code, _, err = run_here(*args, "--out", str(tmp_path / "fail.json"))
    one_error(err, 1, code, broken.name)
    assert not (tmp_path / "fail.json").exists()
    code, _, err = run_here(*args, "--on-corrupt", "skip", "--out", str(tmp_path / "m.json"))
    assert code == 0, err
    dataset = json.loads((tmp_path / "m.json").read_text())["dataset"]
    assert (dataset["on_corrupt"], dataset["skipped_corrupt"], dataset["images"]) == ("skip", 1, 5)
    code, _, err = run_here(*args, "--on-corrupt", "ignore")
    one_error(err, 2, code, "--on-corrupt must be fail or skip")


def test_eval_refuses_an_image_the_detectors_resize_shrinks_to_nothing(tmp_path, capsys):
    """10000x10 px: before, inference failed with 'height and width must be > 0 (unexpected)'."""
    import json
    import shutil

    from PIL import Image

    from faapkit.data.synth import SynthSpec, write_synthetic
    from tests.conftest import faap_in_process, one_error

    data = write_synthetic(tmp_path / "s", SynthSpec(seed=4, splits=(("test", 3, 3),))) / "coco"
    ann = data / "annotations" / "instances_test.json"
    coco = json.loads(ann.read_text())
    img = coco["images"][0]
    Image.new("RGB", (10000, 10)).save(data / "images" / "test" / img["file_name"], format="JPEG")
    img["width"], img["height"] = 10000, 10
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != img["id"]]
    ann.write_text(json.dumps(coco))
    args = ["eval", "--data", str(data), "--device", "cpu", "--bootstrap", "0", "--quiet"]
    code, _, err = faap_in_process(capsys, *args, "--out", str(tmp_path / "m.json"))
    one_error(err, 1, code, f"image {img['id']!r} '{img['file_name']}': 10000x10 px at min_size")
    assert "resized side would be under 1 px" in err and not (tmp_path / "m.json").exists()
    shutil.rmtree(tmp_path / "s")
