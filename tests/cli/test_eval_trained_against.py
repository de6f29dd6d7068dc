"""``faap eval RUN`` measures the run as it was trained: against the detector weights and on
the embedded benchmark it trained on, never silently on other ones."""

from __future__ import annotations

import shutil

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
