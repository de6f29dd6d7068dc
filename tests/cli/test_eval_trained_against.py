"""``faap eval RUN`` measures the run as it was trained: against the detector weights and on
the embedded benchmark it trained on, never silently on other ones."""

from __future__ import annotations

import shutil
from pathlib import Path

from faapkit.detr.build import packaged_path
from tests.conftest import faap_in_process, one_error, one_step_4th_run


def test_a_run_whose_detector_file_was_replaced_is_refused(tmp_path, capsys):
    """The run stores its detector checkpoint's path; replacing that file after training (another
    pretraining written over it) used to evaluate the run against the new weights, exit 0."""
    weights = tmp_path / "mine.pth"
    shutil.copyfile(packaged_path("faapkit:weights/detr-synth-tiny.pth"), weights)
    run = one_step_4th_run(tmp_path, f"detector.checkpoint='{weights}'", "detector.name=detr-synth-tiny")
    shutil.copyfile(packaged_path("faapkit:weights/detr-synth-tiny-v2.pth"), weights)
    code, _, err = faap_in_process(capsys, "eval", str(run), "--quiet")
    one_error(
        err, 1, code, "trained against detector 'detr-synth-tiny' with weights 06ccf0711cd7, not the 2b37758ae916"
    )
    assert "--detector-checkpoint" in err
    assert not (run / "eval").exists(), "nothing is written before the refusal"
    original = packaged_path("faapkit:weights/detr-synth-tiny.pth")
    code, _, err = faap_in_process(capsys, "eval", str(run), "--quiet", "--detector-checkpoint", str(original))
    assert code == 0, err
    (written,) = (run / "eval").glob("*.json")
    assert "detckpt-06ccf071" in written.name


def test_other_weights_named_explicitly_measure_a_transfer(tmp_path, capsys):
    run = one_step_4th_run(tmp_path)
    code, _, err = faap_in_process(capsys, "eval", str(run), "--quiet", "--detector", "detr-synth-tiny-v2")
    assert code == 0, err
    (written,) = (run / "eval").glob("*.json")
    assert "det-detr-synth-tiny-v2" in written.name


def test_a_run_on_an_embedded_benchmark_is_evaluated_on_that_benchmark(tmp_path, monkeypatch):
    """A run on the embedded benchmark records its cache folder (seed and bias); its evaluation
    uses that benchmark, not whatever the default is when it is evaluated."""
    import faapkit.data.synth as synth
    from faapkit.cli.evaluate import _run_data
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries

    asked: list[tuple] = []
    monkeypatch.setattr(synth, "embedded_dataset", lambda *a: asked.append(a) or tmp_path / "coco")
    _run_data({}, None, None, None, str(tmp_path / "cache" / "synth-v2-seed0" / "coco"))
    _run_data({}, None, None, None, str(tmp_path / "mine" / "coco"))  # not an embedded benchmark
    _run_data({}, None, None, None, None)  # no run: the default
    v2 = Registries.from_plugin_manager(make_plugin_manager()).detectors.get("detr-synth-tiny-v2")
    _run_data({}, None, None, None, None, (v2, None))  # no run, the v2 detector: its benchmark
    assert asked == [(0, "v2"), (0, "v3"), (0, "v3"), (0, "v2")]
    own = {"data": {"root": str(tmp_path / "x")}}
    _, root = _run_data(own, None, None, None, str(tmp_path / "synth-v2-seed0" / "coco"))
    assert root == tmp_path / "x" and len(asked) == 4, "a run's own data.root wins"


def test_a_relative_detector_checkpoint_is_recorded_absolute(tmp_path, monkeypatch):
    """The metrics JSON names the detector file wherever it is later read from."""
    from faapkit.cli.evaluate import _run_detector

    monkeypatch.chdir(tmp_path)
    assert _run_detector({}, None, Path("w.pth")) == ("detr-synth-tiny-v3", tmp_path / "w.pth")
    stored = {"detector": {"name": "detr-synth-tiny-v2", "checkpoint": "/runs/d.pth"}}
    assert _run_detector(stored, None, None) == ("detr-synth-tiny-v2", Path("/runs/d.pth"))
