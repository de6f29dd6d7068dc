"""Bring your own detector (docs/detectors.md): the worked example ``examples/faap-tiny-fcos-plugin``,
a small FCOS with its own loss and no DETR part, found as an installed distribution through its
``faap`` entry point, trained a few level-up steps against its own loss and scored by ``faap eval``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import installed_plugin, run_here

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "faap-tiny-fcos-plugin"


def installed(site: Path) -> dict[str, str]:
    """Environment of a ``faap`` run that finds the example as the installed distribution
    ``faap-tiny-fcos-plugin`` (its pyproject's entry point, ``tiny_fcos``)."""
    return installed_plugin(site, "faap-tiny-fcos-plugin", "tiny_fcos = faap_tiny_fcos", EXAMPLE)


def seeded_weights(path: Path) -> Path:
    """The example detector's seeded random weights, saved as a bare state dict."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        from faap_tiny_fcos_model import tiny_fcos_parts

        torch.manual_seed(0)
        torch.save(tiny_fcos_parts().model.state_dict(), path)
    finally:
        sys.path.remove(str(EXAMPLE))
        sys.modules.pop("faap_tiny_fcos_model", None)
    return path


def test_the_installed_example_registers_its_detector(tmp_path):
    code, out, err = run_here("inspect", "plugins", "--json", env=installed(tmp_path / "site"))
    assert code == 0, err
    row = {r["name"]: r for r in json.loads(out)["components"]}["tiny-fcos"]
    assert (row["kind"], row["plugin"], row["distribution"]) == ("detector", "tiny_fcos", "faap-tiny-fcos-plugin")


@pytest.mark.slow
def test_the_example_detector_trains_against_its_own_loss_and_is_scored(tmp_path, synth_root):
    env = installed(tmp_path / "site")
    weights = seeded_weights(tmp_path / "tiny-fcos.pth")
    run = tmp_path / "run"
    settings = ["detector.name=tiny-fcos", f"detector.checkpoint={weights}", "generator.name=detector-aware"]
    settings += ["generator.channels=8", "train.batch_size=2", "train.epochs=1", "train.steps_per_epoch=2"]
    settings += ["train.val_every=0", "data.limit_images=8"]
    sets = [a for s in settings for a in ("--set", s)]
    code, _, err = run_here("train", "--version", "level-up", "--out", str(run), "--quiet", *sets, env=env)
    assert code == 0, err
    (row,) = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert row["steps"] == 2 and math.isfinite(row["loss_det_dis"]) and row["loss_det_dis"] > 0
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["detector"]["checkpoint"] == str(weights) and manifest["detector"]["sha256"]

    code, out, err = run_here("eval", str(run), "--limit-images", "16", "--bootstrap", "0", "--json", env=env)
    assert code == 0, err
    result = json.loads(out)
    assert result["eval"]["detections_per_image"] == 16
    for group in ("female", "male"):
        assert 0.0 <= result["metrics"]["perturbed"][group]["AP"] <= 1.0
