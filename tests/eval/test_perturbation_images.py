"""Which images ``faap inspect perturbation`` draws without ``--data``: those of the embedded
benchmark the checkpoint's run recorded, as ``faap eval`` measures it, else its detector's."""

from __future__ import annotations

import json
from pathlib import Path

import faapkit.data.synth as synth
from faapkit.evaluate.perturbation import images_root, trained_detector
from faapkit.io import save_checkpoint
from tests.conftest import a_run_manifest


def _checkpoint(folder: Path) -> Path:
    """A checkpoint file whose record names the default detector (all ``images_root`` reads)."""
    folder.mkdir(parents=True)
    save_checkpoint(folder / "epoch_0000.pt", {"detector": {"name": "detr-synth-tiny-v3"}})
    return folder / "epoch_0000.pt"


def test_a_runs_checkpoint_draws_from_the_benchmark_its_run_recorded(monkeypatch, registries, tmp_path):
    """A v3 run's checkpoint drew from the default v4 benchmark: its train split was images the
    run never trained on."""
    calls: list[tuple[int, str]] = []
    monkeypatch.setattr(synth, "embedded_dataset", lambda seed, bias: calls.append((seed, bias)) or Path(bias))
    run = tmp_path / "run"
    ckpt = _checkpoint(run / "checkpoints")
    v3 = synth.default_cache_dir() / synth.embedded_folder(0, "v3") / "coco"
    (run / "run.json").write_text(json.dumps(a_run_manifest(dataset={"root": str(v3)})))
    assert images_root(ckpt, trained_detector(ckpt, registries), None) == Path("v3")
    loose = _checkpoint(tmp_path / "loose")
    assert images_root(loose, trained_detector(loose, registries), None) == Path("v4")  # no run: the detector's
    assert calls == [(0, "v3"), (0, "v4")]
