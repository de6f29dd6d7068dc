"""The typed on-disk records: each round-trips what faapkit writes byte for byte, each validator
refuses a wrong tag, a missing key and a wrong type in one line naming the file and the key, and
what 0.1.0 wrote (the committed run folder) still loads."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest

from faapkit.artifacts.records import (
    CHECKPOINT_FORMAT,
    MetricsFileError,
    RecordError,
    checkpoint_payload,
    is_metrics_file,
    metrics_file,
    read_metrics_file,
    read_run_manifest,
    run_manifest,
    write_metrics_file,
    write_run_manifest,
)
from faapkit.errors import CheckpointError
from tests.conftest import fixture_path

RUN = ("native_runs", "level-up-tiny")
EVALS = ["test_gender_best_first16.json", "val_gender_best_first16.json"]


def _payload() -> dict[str, Any]:
    """A checkpoint payload as the trainer builds it (its key order, OrderedDict state dicts)."""
    import torch

    weights = OrderedDict([("down1.net.0.weight", torch.ones(2, 3)), ("bias", torch.zeros(2))])
    return {
        "format": CHECKPOINT_FORMAT,
        "version": "4th",
        "epoch": 1,
        "epoch_complete": False,
        "position": 3,
        "global_step": 7,
        "epsilon": 0.1,
        "generator_spec": {"name": "unet", "base_channels": 16},
        "base_channels": 16,
        "generator": weights,
        "head": {},
        "optimizer": {"state": {0: {"step": torch.tensor(7.0)}}, "param_groups": [{"lr": 0.01, "params": [0]}]},
        "strategy": {},
        "rng": {"python": (3, (1, 2), None), "torch": torch.zeros(4, dtype=torch.uint8)},
        "meters": {"total": [1.0, 2]},
        "skips": {"too few": 1},
        "nonfinite": 0,
        "log_window": {},
        "detector": {"name": "detr-synth-tiny", "sha256": "ab" * 32},
        "dataset_fingerprint": "d3897646730a85cd",
        "run_id": "91d7f0e87787495f",
    }


def test_a_0_1_0_run_manifest_loads_and_is_written_back_byte_for_byte(tmp_path):
    source = fixture_path(*RUN, "run.json")
    manifest = read_run_manifest(source)
    assert manifest.version == "level-up" and manifest.dataset.fingerprint == "d3897646730a85cd"
    write_run_manifest(tmp_path / "run.json", manifest)
    assert (tmp_path / "run.json").read_bytes() == source.read_bytes()
    write_run_manifest(tmp_path / "again.json", json.loads(source.read_text()))  # a dict, validated
    assert (tmp_path / "again.json").read_bytes() == source.read_bytes()


@pytest.mark.parametrize("name", EVALS)
def test_a_0_1_0_metrics_file_loads_and_is_written_back_byte_for_byte(tmp_path, name):
    source = fixture_path(*RUN, "eval", name)
    metrics = read_metrics_file(source)
    assert set(metrics.metrics) == {"baseline", "perturbed"} and metrics.epoch == 1
    write_metrics_file(tmp_path / name, metrics)
    assert (tmp_path / name).read_bytes() == source.read_bytes()


def test_extra_keys_and_numbers_keep_their_place_and_type(tmp_path):
    doc = {"schema": "faapkit.metrics/1", "later": 1, "metrics": {"baseline": {}}, "epsilon": 1, "x": float("nan")}
    write_metrics_file(tmp_path / "m.json", doc)
    assert (tmp_path / "m.json").read_text() == json.dumps(doc, indent=2) + "\n"  # 1 stays 1, NaN stays NaN


def test_the_checkpoint_payload_saves_the_same_bytes_as_the_dict(tmp_path):
    import torch

    from faapkit.artifacts.checkpoint import read_training_checkpoint, save_training_checkpoint
    from faapkit.io import save_checkpoint

    payload = _payload()
    record = checkpoint_payload(payload, tmp_path / "x.pt")
    assert record.saved()["generator"] is payload["generator"]  # state dicts are neither copied nor converted
    assert list(record.saved()) == list(payload)
    for extra in ({}, {"selection": {"epoch": 1, "val": {"AP": {"male": 0.5}}}}):
        plain = save_checkpoint(tmp_path / "plain.pt", {**payload, **extra})
        typed = save_training_checkpoint(tmp_path / "typed.pt", {**payload, **extra})
        assert typed == plain and (tmp_path / "typed.pt").read_bytes() == (tmp_path / "plain.pt").read_bytes()
    read = read_training_checkpoint(tmp_path / "typed.pt")
    assert read.global_step == 7 and read.selection == {"epoch": 1, "val": {"AP": {"male": 0.5}}}
    assert torch.equal(read.generator["bias"], torch.zeros(2))


def _run_json() -> dict[str, Any]:
    return json.loads(fixture_path(*RUN, "run.json").read_text())


def _metrics() -> dict[str, Any]:
    return json.loads(fixture_path(*RUN, "eval", EVALS[0]).read_text())


def _drop(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    inner = doc
    for key in keys[:-1]:
        inner = inner[key]
    del inner[keys[-1]]
    return doc


def _put(doc: dict[str, Any], value: Any, *keys: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    inner = doc
    for key in keys[:-1]:
        inner = inner[key]
    inner[keys[-1]] = value
    return doc


REFUSED = {
    "run.json: another tag": (
        run_manifest, _run_json, lambda d: _put(d, "faapkit.run/0", "format"), RecordError,
        'format "faapkit.run/0", not faapkit.run/1',
    ),
    "run.json: no tag": (
        run_manifest, _run_json, lambda d: _drop(d, "format"), RecordError, "not a faapkit run manifest (format null",
    ),
    "run.json: a missing key": (run_manifest, _run_json, lambda d: _drop(d, "dataset", "fingerprint"), RecordError,
                                "no 'dataset.fingerprint'"),
    "run.json: a wrong type": (run_manifest, _run_json, lambda d: _put(d, "2", "seed"), RecordError,
                               "its 'seed' is \"2\": input should be a valid integer"),
    "run.json: an unknown key": (run_manifest, _run_json, lambda d: _put(d, 1, "extra"), RecordError,
                                 "'extra' is not a key of this format"),
    "checkpoint: another tag": (
        checkpoint_payload, _payload, lambda d: _put(d, None, "format"), CheckpointError,
        "not a faapkit training checkpoint (format null, not faapkit.checkpoint/1)",
    ),
    "checkpoint: a missing key": (checkpoint_payload, _payload, lambda d: _drop(d, "run_id"), CheckpointError,
                                  "no 'run_id'"),
    "checkpoint: a wrong type": (checkpoint_payload, _payload, lambda d: _put(d, [1], "generator"), CheckpointError,
                                 "its 'generator' is [1]: input should be a mapping"),
    "metrics: another tag": (
        metrics_file, _metrics, lambda d: _put(d, "faapkit.metrics/2", "schema"), MetricsFileError,
        'not a faap eval metrics file (schema "faapkit.metrics/2", not faapkit.metrics/1)',
    ),
    "metrics: a missing key": (metrics_file, _metrics, lambda d: _drop(d, "metrics"), MetricsFileError,
                               "no 'metrics'"),
    "metrics: a wrong type": (metrics_file, _metrics, lambda d: _put(d, "1", "epoch"), MetricsFileError,
                              "its 'epoch' is \"1\": input should be a valid integer"),
    "metrics: a nested wrong type": (metrics_file, _metrics, lambda d: _put(d, 16.0, "groups", "male", "images"),
                                     MetricsFileError, "its 'groups.male.images' is 16.0"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_each_validator_refuses_in_one_line_naming_file_and_key(case):
    validate, good, change, error, says = REFUSED[case]
    path = Path("/runs/r/the.file")
    with pytest.raises(error) as refused:
        validate(change(good()), path)
    line = refused.value.one_line()
    assert line == str(refused.value) and "\n" not in line
    assert line.startswith(f"{path}: ") and says in line, line


def test_a_file_that_is_not_json_is_refused_by_name(tmp_path):
    (tmp_path / "run.json").write_bytes(b"\xff")
    with pytest.raises(RecordError, match=rf"{tmp_path / 'run.json'}: not JSON"):
        read_run_manifest(tmp_path / "run.json")


def test_a_metrics_file_with_a_malformed_field_is_still_a_metrics_file(tmp_path):
    """``--force`` may replace it (faap eval wrote it); another tag or no metrics is no metrics file."""
    for name, doc, expected in (
        ("bad_epoch.json", _put(_metrics(), "one", "epoch"), True),
        ("prefix.json", _put(_metrics(), "faapkit.metrics/0", "schema"), False),
        ("no_groups.json", _put(_metrics(), [], "metrics", "baseline"), False),
    ):
        (tmp_path / name).write_text(json.dumps(doc))
        assert is_metrics_file(tmp_path / name) is expected, name


def test_the_records_module_imports_no_torch():
    code = "import sys, faapkit.artifacts.records, faapkit.artifacts.rundir; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
