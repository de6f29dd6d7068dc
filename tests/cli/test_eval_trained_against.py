"""``faap eval RUN`` measures the run as it was trained: against the detector weights and on
the embedded benchmark it trained on, never silently on the ones faapkit ships today."""

from __future__ import annotations

from pathlib import Path

import torch

from faapkit.cli.eval_guards import FORMER_TINY_SHA256
from faapkit.detr.build import packaged_path
from tests.conftest import faap_in_process, one_error, one_step_4th_run


def _claim_trained_against(run: Path, sha256: str) -> Path:
    """Rewrite the run's checkpoint as if it had been trained against weights ``sha256``."""
    (ckpt,) = sorted((run / "checkpoints").glob("*.pt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    state["detector"] = {**state["detector"], "sha256": sha256}
    torch.save(state, ckpt)
    return ckpt


def test_a_run_trained_against_the_former_detector_is_refused_then_evaluated_with_it(tmp_path, capsys):
    """The tiny detector shipped until 2026-12-01 was replaced; evaluating a run trained against
    it with the new weights used to file the transfer as the run's own numbers (exit 0)."""
    run = one_step_4th_run(tmp_path)
    ckpt = _claim_trained_against(run, FORMER_TINY_SHA256)
    code, _, err = faap_in_process(capsys, "eval", str(run), "--quiet")
    one_error(err, 1, code, "trained against detector 'detr-synth-tiny' with weights 06ccf0711cd7")
    assert "detr-synth-tiny-v1.pth" in err and str(ckpt) in err
    assert not (run / "eval").exists(), "nothing is written before the refusal"
    former = packaged_path("faapkit:weights/detr-synth-tiny-v1.pth")
    code, _, err = faap_in_process(capsys, "eval", str(run), "--quiet", "--detector-checkpoint", str(former))
    assert code == 0, err
    (written,) = (run / "eval").glob("*.json")
    assert "detckpt-06ccf071" in written.name


def test_other_weights_named_explicitly_measure_a_transfer(tmp_path, capsys):
    run = one_step_4th_run(tmp_path)
    _claim_trained_against(run, "ab" * 32)
    code, _, err = faap_in_process(capsys, "eval", str(run), "--quiet")
    one_error(err, 1, code, "with weights abababababab")
    assert "detr-synth-tiny-v1" not in err
    shipped = packaged_path("faapkit:weights/detr-synth-tiny.pth")
    code, _, err = faap_in_process(capsys, "eval", str(run), "--quiet", "--detector-checkpoint", str(shipped))
    assert code == 0, err


def test_a_run_on_an_embedded_benchmark_is_evaluated_on_that_benchmark(tmp_path, monkeypatch):
    """A run trained on the v1 embedded benchmark (the default until 2026-12-01) records its cache
    folder; its evaluation regenerates and uses that benchmark, not today's v2 default."""
    import faapkit.data.synth as synth
    from faapkit.cli.evaluate import _run_data

    asked: list[tuple] = []
    monkeypatch.setattr(synth, "embedded_dataset", lambda *a: asked.append(a) or tmp_path / "coco")
    _run_data({}, None, None, None, str(tmp_path / "cache" / "synth-v1-seed0" / "coco"))
    _run_data({}, None, None, None, str(tmp_path / "mine" / "coco"))  # not an embedded benchmark
    _run_data({}, None, None, None, None)  # no run: today's default
    assert asked == [(0, "v1"), (), ()]
    own = {"data": {"root": str(tmp_path / "x")}}
    _, root = _run_data(own, None, None, None, str(tmp_path / "synth-v1-seed0" / "coco"))
    assert root == tmp_path / "x" and len(asked) == 3, "a run's own data.root wins"
