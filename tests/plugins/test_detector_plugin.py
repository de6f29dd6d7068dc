"""A third-party detector, found through the real entry-point mechanism, trains and evaluates:
every detector is built by its registered ``DetectorSpec.factory``."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import installed_plugin, run_here

EXTERNAL = Path(__file__).resolve().parent / "external"


def plugin_env(site: Path) -> dict[str, str]:
    """Environment of a ``faap`` process that discovers ``tests/plugins/external`` as an installed
    distribution ``faap-first-queries`` (entry point ``firstq``)."""
    return installed_plugin(site, "faap-first-queries", "firstq = faap_first_queries", EXTERNAL)


def wrapped_checkpoint(out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped tiny DETR's weights under the wrapper's keys (``detr.*``)."""
    import torch

    from faapkit.detr.build import load_state_strict, packaged_path, read_state_dict

    monkeypatch.syspath_prepend(str(EXTERNAL))
    from faap_first_queries import TINY_ARCH
    from faap_first_queries_model import first_queries

    parts = first_queries(keep=8, **TINY_ARCH)
    load_state_strict(parts.model.detr, read_state_dict(packaged_path("faapkit:weights/detr-synth-tiny.pth")), what="x")
    torch.save({"model": parts.model.state_dict()}, out)
    return out


@pytest.mark.slow
def test_plugin_detector_trains_and_evaluates(tmp_path, synth_root, monkeypatch):
    env = plugin_env(tmp_path / "site")
    code, out, err = run_here("inspect", "plugins", "--json", env=env)
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["components"]}
    row = rows["detr-first8"]
    assert (row["kind"], row["plugin"], row["distribution"]) == ("detector", "firstq", "faap-first-queries")
    assert rows["level-up-first8"]["aliases"] == ["f8"]

    ckpt = wrapped_checkpoint(tmp_path / "first8.pth", monkeypatch)
    run = tmp_path / "run"
    # the version (by its alias) names the plugin's detector; the run records the canonical name
    args = ["train", "--version", "f8", "--out", str(run), "--max-steps", "2", "--quiet"]
    code, _, err = run_here(*args, "--set", f"detector.checkpoint={ckpt}", env=env)
    assert code == 0, err
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["version"] == "level-up-first8" and manifest["config"]["detector"]["name"] == "detr-first8"
    code, out, err = run_here("eval", str(run), "--limit-images", "40", "--bootstrap", "0", "--json", env=env)
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["eval"]["detections_per_image"] == 8
    # the wrapper's 8 queries, not the wrapped DETR's 16, reached the saved detections
    dets_file = next((run / "eval").glob("*.perturbed.dets.json.gz"))
    dets = json.loads(gzip.decompress(dets_file.read_bytes()))["detections"]
    assert set(Counter(d["image_id"] for d in dets).values()) == {8}
    assert 0.0 <= metrics["metrics"]["perturbed"]["male"]["AP"] <= 1.0
    # without the plugin the run's detector is unknown: one error line, no traceback
    code, _, err = run_here("eval", str(run), "--limit-images", "40", "--bootstrap", "0", "--force")
    assert code == 2 and "unknown detector 'detr-first8'" in err and "Traceback" not in err


def test_version_help_and_inspect_show_a_plugin_s_aliases(tmp_path):
    env = plugin_env(tmp_path / "site") | {"COLUMNS": "250"}
    code, out, err = run_here("train", "--help", env=env)
    assert code == 0, err
    assert "level-up-first8 (alias f8)" in out
    code, out, err = run_here("inspect", "plugins", env=env)
    assert code == 0, err
    assert "level-up-first8 (alias f8)" in out
