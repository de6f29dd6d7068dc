"""The MLflow and W&B loggers log a short real run, read back from MLflow's local file store
(``MlflowClient``) and W&B's offline run file: the resolved config, the train and val scalars at
their steps (the same numbers as ``RUN/metrics.csv``), an evaluation and a figure; a resumed run
logs to the same tracker run, each step once. Nothing leaves the machine: MLflow writes under
``tmp_path`` and W&B runs offline there."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from faapkit.config import resolve_config
from faapkit.errors import ConfigError
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trackers import TRACKERS_FILE, flatten, headline, log_evaluation, read_trackers
from faapkit.train.trainer import Trainer

REG = Registries.from_plugin_manager(make_plugin_manager())
# 2 epochs of 3 steps, a train row every 2 steps (steps 2, 4, 6), validation after each epoch
RUN = [
    "train.batch_size=4",
    "data.limit_images=24",
    "train.epochs=2",
    "train.steps_per_epoch=3",
    "train.log_every=2",
    "train.val_every=1",
    "train.val_limit_images=8",
    "generator.channels=8",
]
# the run's last epoch, named: a two-step run may narrow no val gap and so choose no best.pt
LAST_EPOCH_EVAL = ["--epoch", "1", "--limit-images", "8", "--bootstrap", "0"]
EVAL_JSON = Path(__file__).parents[1] / "fixtures/native_runs/level-up-tiny/eval/test_gender_best_first16.json"


@pytest.fixture(scope="module")
def local_trackers(tmp_path_factory):
    """Both trackers kept on this machine: MLflow's file store and W&B offline, under tmp."""
    root = tmp_path_factory.mktemp("trackers")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", (root / "mlruns").as_uri())
        mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for it to keep the file store
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        mp.setenv("WANDB_DISABLE_GIT", "true")
        mp.delenv("WANDB_API_KEY", raising=False)
        mp.delenv("WANDB_DIR", raising=False)
        yield root


def _installed() -> list[str]:
    """The trackers whose package is here (each test skips without its own)."""
    import importlib.util

    return [name for name in ("mlflow", "wandb") if importlib.util.find_spec(name) is not None]


def _train(run: Path, *extra: str, resume: bool = False) -> Trainer:
    overrides = [*RUN, f"train.loggers={['csv', *_installed()]!r}", *extra]
    trainer = Trainer(resolve_config(REG, version="level-up", overrides=overrides), REG, run, resume=resume)
    trainer.setup()
    trainer.fit()
    return trainer


def _csv(run: Path) -> dict[str, list[tuple[int, float]]]:
    """``<split>/<name>`` -> [(step, value)] of ``RUN/metrics.csv``."""
    out: dict[str, list[tuple[int, float]]] = {}
    with (run / "metrics.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(f"{row['split']}/{row['name']}", []).append((int(row["step"]), float(row["value"])))
    return out


# ------------------------------------------------------------------------------------ MLflow
def _client(run: Path) -> tuple[Any, str]:
    from mlflow.tracking import MlflowClient

    entry = read_trackers(run)["mlflow"]
    return MlflowClient(tracking_uri=entry["tracking_uri"]), entry["run_id"]


def _mlflow_history(run: Path) -> dict[str, list[tuple[int, float]]]:
    """The training's metrics (``eval/`` ones left out): ``key`` -> [(step, value)]."""
    client, run_id = _client(run)
    keys = [k for k in client.get_run(run_id).data.metrics if not k.startswith("eval/")]
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in keys}


@pytest.fixture(scope="module")
def straight(local_trackers, tmp_path_factory, synth_root) -> Path:
    """A short run logged to both trackers at once."""
    if not _installed():
        pytest.skip("neither mlflow nor wandb is installed")
    run = tmp_path_factory.mktemp("tracked") / "straight"
    _train(run)
    return run


@pytest.fixture(scope="module")
def mlflow_run(straight) -> Path:
    pytest.importorskip("mlflow")
    return straight


@pytest.fixture(scope="module")
def wandb_run(straight) -> Path:
    pytest.importorskip("wandb")
    return straight


def test_mlflow_holds_the_config_and_every_scalar_of_the_csv(mlflow_run):
    client, run_id = _client(mlflow_run)
    tracked = client.get_run(run_id)
    assert tracked.info.status == "FINISHED" and tracked.info.run_name == "straight"
    manifest = json.loads((mlflow_run / "run.json").read_text())
    params = tracked.data.params
    assert params["train.epochs"] == "2" and params["version"] == "level-up"
    assert params == {k: v[:500] for k, v in flatten(manifest["config"]).items()}
    assert tracked.data.tags["faap.run_id"] == manifest["run_id"]
    config = json.loads(
        Path(client.download_artifacts(run_id, "faapkit/config.json", str(mlflow_run.parent))).read_text()
    )
    assert config == manifest["config"]  # the exact resolved config, not the cut params
    history = _mlflow_history(mlflow_run)
    assert history == _csv(mlflow_run)  # same keys, steps and float64 values
    assert [step for step, _ in history["train/loss_det"]] == [2, 4, 6]
    assert [step for step, _ in history["val/AP/female"]] == [3, 6]


@pytest.fixture(scope="module")
def evaluated(straight, tmp_path_factory) -> Path:
    """``straight`` with an evaluation (a real ``faap eval`` metrics file) and a figure logged to
    its trackers."""
    from PIL import Image

    metrics = straight / "eval" / EVAL_JSON.name
    metrics.parent.mkdir(exist_ok=True)
    metrics.write_bytes(EVAL_JSON.read_bytes())
    figure = tmp_path_factory.mktemp("figures") / "perturbation.png"
    Image.new("RGB", (4, 4)).save(figure)
    assert log_evaluation(straight, metrics, figures=[figure]) == _installed()
    return straight


def test_mlflow_takes_an_evaluation_and_a_figure(mlflow_run, evaluated):
    client, run_id = _client(mlflow_run)
    assert {a.path for a in client.list_artifacts(run_id, "eval")} == {f"eval/{EVAL_JSON.name}"}
    assert {a.path for a in client.list_artifacts(run_id, "figures")} == {"figures/perturbation.png"}
    result = json.loads(EVAL_JSON.read_text())
    prefix = f"eval/{EVAL_JSON.stem}"
    numbers = headline(result, prefix)
    history = {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in numbers}
    assert history[f"{prefix}/AP/perturbed/female"] == [(4, result["metrics"]["perturbed"]["female"]["AP"])]
    assert history[f"{prefix}/gap_AP/change"] == [(4, result["gaps"]["AP"]["change"])]
    assert history[f"{prefix}/share_closed_AP"] == [(4, numbers[f"{prefix}/share_closed_AP"])]


@pytest.mark.parametrize("killed", [False, True], ids=["stopped-at-checkpoint", "killed-past-checkpoint"])
def test_resume_logs_each_step_once(straight, tmp_path, killed):
    """MLflow: the same run, or (points past the checkpoint) a new one holding the history up to
    it; W&B: the same run id, the resumed process logging from past the checkpoint on."""
    run = tmp_path / "resumed"
    _train(run, "train.max_steps=3")
    if "mlflow" in _installed():
        client, first = _client(run)
        if killed:  # what a process killed after its checkpoint at 3 leaves in the tracker
            client.log_metric(first, "train/loss_det", 999.0, step=4)
    _train(run, resume=True)
    if "mlflow" in _installed():
        client, second = _client(run)
        assert _mlflow_history(run) == _mlflow_history(straight)  # no duplicate, nothing of the killed process
        assert (second != first) == killed and client.get_run(second).info.status == "FINISHED"
        if killed:
            assert client.get_run(second).data.tags["faap.resumed_from"] == first
            assert client.get_run(first).data.tags["faap.superseded_by"] == second
    if "wandb" in _installed():
        parts = [_wandb_run(p) for p in _offline_runs(run)]
        assert [p["id"] for p in parts] == [read_trackers(run)["wandb"]["id"]] * 2
        assert min(step for points in parts[1]["history"].values() for step, _ in points) > 3
        merged: dict[str, list[tuple[int, float]]] = {}
        for part in parts:
            for key, points in part["history"].items():
                merged.setdefault(key, []).extend(points)
        assert merged == _wandb_run(_offline_runs(straight)[0])["history"]


def test_a_missing_mlflow_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # import now raises ImportError
    cfg = resolve_config(REG, version="level-up", overrides=[*RUN, "train.loggers=['mlflow']"])
    with pytest.raises(ConfigError, match=r"mlflow package is not installed \(pip install 'faapkit\[mlflow\]'"):
        Trainer(cfg, REG, tmp_path / "run").setup()
    assert not (tmp_path / "run").exists()


def test_an_mlflow_file_store_without_its_switch_is_refused_in_one_full_line(tmp_path, monkeypatch):
    """MLflow 3 opens a file store only with MLFLOW_ALLOW_FILE_STORE=true: refused before the run
    folder exists, in a line that names the switch and the store's source (not cut mid-sentence)."""
    pytest.importorskip("mlflow")
    pytest.importorskip("mlflow.environment_variables").MLFLOW_ALLOW_FILE_STORE  # noqa: B018
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    cfg = resolve_config(REG, version="level-up", overrides=[*RUN, "train.loggers=['mlflow']"])
    with pytest.raises(ConfigError) as refused:
        Trainer(cfg, REG, tmp_path / "run").setup()
    line = str(refused.value)
    assert "\n" not in line and f"'{store}' (from MLFLOW_TRACKING_URI)" in line
    assert "MLFLOW_ALLOW_FILE_STORE=true" in line and line.endswith("sqlite:///mlflow.db")
    assert not (tmp_path / "run").exists() and not (tmp_path / "mlruns").exists()


# ------------------------------------------------------------------------------------- W&B
def _wandb_records(path: Path) -> list[Any]:
    """The records of a W&B run file: a 7-byte header (``:W&B``, magic 0xBEE1, version), then
    LevelDB-log blocks of 32 KiB holding 7-byte-headed chunks (full, first, middle, last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    ident, magic, _ = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1
    pos, chunk, records = 7, b"", []
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (kind == 0 and length == 0):  # the rest of a block is padding
            pos += left
            continue
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # full or last
            record = pb.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


def _key(item: Any) -> str:
    """An item's key: ``key``, or its ``nested_key`` parts (how W&B sends a key again)."""
    return item.key or "/".join(item.nested_key)


def _wandb_run(path: Path) -> dict[str, Any]:
    """One offline run file: its id, config, history ``{key: [(step, value)]}`` and summary."""
    out: dict[str, Any] = {"config": {}, "history": {}, "summary": {}}
    for record in _wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["id"], out["name"] = record.run.run_id, record.run.display_name
            out["config"].update({_key(i): json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "history":
            items = {_key(i): json.loads(i.value_json) for i in record.history.item}
            for key, value in items.items():
                if not key.startswith("_"):
                    out["history"].setdefault(key, []).append((record.history.step.num, value))
        elif kind == "summary":
            out["summary"].update(
                {_key(i): json.loads(i.value_json) for i in record.summary.update if not _key(i).startswith("_")}
            )
    return out


def _offline_runs(run: Path) -> list[Path]:
    """The run's offline run files in the order they were written (one per process)."""
    return sorted((run / "wandb").glob("offline-run-*/run-*.wandb"), key=lambda p: p.parent.name)


def test_wandb_offline_holds_the_config_and_every_scalar_of_the_csv(wandb_run):
    path = _offline_runs(wandb_run)[0]  # the training; an evaluation adds its own
    logged = _wandb_run(path)
    manifest = json.loads((wandb_run / "run.json").read_text())
    assert logged["id"] == read_trackers(wandb_run)["wandb"]["id"] and logged["name"] == "straight"
    assert read_trackers(wandb_run)["wandb"]["mode"] is None  # WANDB_MODE=offline decided
    config = {k: v for k, v in logged["config"].items() if k != "_wandb"}
    assert config["faap"]["run_id"] == manifest["run_id"]
    assert {k: v for k, v in config.items() if k != "faap"} == manifest["config"]
    assert logged["history"] == _csv(wandb_run)
    assert [step for step, _ in logged["history"]["val/AP/female"]] == [3, 6]


def test_wandb_offline_takes_an_evaluation_and_a_figure(wandb_run, evaluated):
    latest = _offline_runs(wandb_run)[-1]
    logged = _wandb_run(latest)
    assert logged["id"] == read_trackers(wandb_run)["wandb"]["id"]  # the training's run, resumed
    prefix = f"eval/{EVAL_JSON.stem}"
    result = json.loads(EVAL_JSON.read_text())
    assert logged["summary"][f"{prefix}/gap_AP/change"] == result["gaps"]["AP"]["change"]
    assert logged["summary"] == pytest.approx(headline(result, prefix))
    files = latest.parent / "files"
    assert json.loads((files / "eval" / EVAL_JSON.name).read_text()) == result
    assert (files / "perturbation.png").is_file()


@pytest.mark.parametrize("where", ["option", "env"])
def test_wandb_online_without_a_key_is_refused_before_the_run_folder(tmp_path, monkeypatch, where):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # no wandb login entry either
    monkeypatch.setenv("HOME", str(tmp_path))
    extra = ["train.logger_options.wandb.mode='online'"] if where == "option" else []
    monkeypatch.setenv("WANDB_MODE", "offline" if where == "option" else "online")
    cfg = resolve_config(REG, version="level-up", overrides=[*RUN, "train.loggers=['wandb']", *extra])
    with pytest.raises(ConfigError) as refused:
        Trainer(cfg, REG, tmp_path / "run").setup()
    line = str(refused.value)
    source = "train.logger_options.wandb.mode" if where == "option" else "WANDB_MODE"
    assert line.startswith(f"W&B online mode ({source}=online) needs an API key")
    assert "WANDB_API_KEY" in line and "wandb login" in line and "WANDB_MODE=offline" in line
    assert not (tmp_path / "run").exists()


def test_trackers_file_is_written_atomically_and_read_back(tmp_path):
    assert read_trackers(tmp_path) == {}
    (tmp_path / TRACKERS_FILE).write_text("[]")
    from faapkit.errors import FaapError

    with pytest.raises(FaapError, match="not a trackers file"):
        read_trackers(tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.logger_options.wandb.mode='cloud'", "train.logger_options.wandb.mode"),
        ("train.logger_options.mlflow.experiment=''", "train.logger_options.mlflow.experiment"),
        ("train.logger_options.mlflow.tracking_url='file:/x'", "train.logger_options.mlflow.tracking_url"),
    ],
)
def test_tracker_options_are_validated(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(REG, version="level-up", overrides=["train.loggers=['mlflow', 'wandb']", override])


def test_faap_eval_of_a_tracked_run_logs_its_metrics_file(mlflow_run, evaluated):
    """``faap eval RUN`` hands the metrics file it wrote to the run's trackers (after the
    hand-logged evaluation above, so that test sees only its own file)."""
    from tests.conftest import run_here

    env = {"MLFLOW_ALLOW_FILE_STORE": "true", "WANDB_MODE": "offline"}
    code, _, err = run_here("eval", str(mlflow_run), *LAST_EPOCH_EVAL, env=env)
    assert code == 0, err
    written = mlflow_run / "eval" / "test_gender_epoch_0001_first8.json"
    assert written.is_file()
    client, run_id = _client(mlflow_run)
    assert f"eval/{written.name}" in {a.path for a in client.list_artifacts(run_id, "eval")}
    prefix = f"eval/{written.stem}"
    result = json.loads(written.read_text())
    history = client.get_metric_history(run_id, f"{prefix}/AP/perturbed/female")
    assert [m.value for m in history] == [result["metrics"]["perturbed"]["female"]["AP"]]


def test_faap_report_of_a_tracked_run_logs_its_figures_and_the_cis(straight, evaluated):
    """``faap report RUN`` adds its figures and the shown evaluation's numbers with their CI
    bounds to the run's MLflow and W&B runs."""
    from tests.conftest import run_here

    env = {"MLFLOW_ALLOW_FILE_STORE": "true", "WANDB_MODE": "offline"}
    written = straight.parent / "cis.json"
    code, _, err = run_here("eval", str(straight), "--epoch", "1", "--limit-images", "8", "--bootstrap", "10",
                            "--out", str(written), env=env)  # fmt: skip
    assert code == 0, err
    result = json.loads(written.read_text())
    code, _, err = run_here("report", str(straight), "--no-panel", "--result", str(written), env=env)
    assert code == 0, err
    assert "figures and numbers logged to" in err
    prefix = f"eval/{written.stem}"
    ci = result["bootstrap"]["gaps"]["AP"]["perturbed"]
    if "mlflow" in _installed():
        client, run_id = _client(straight)
        figures = {a.path for a in client.list_artifacts(run_id, "figures")}
        assert {"figures/forest.png", "figures/curves.png", "figures/forest.pdf"} <= figures
        history = client.get_metric_history(run_id, f"{prefix}/gap_AP/perturbed_ci_lo")
        assert [m.value for m in history] == [ci[0]]
        female = result["bootstrap"]["groups"]["perturbed"]["female"]["AP"]
        assert [m.value for m in client.get_metric_history(run_id, f"{prefix}/AP/perturbed/female_ci_hi")] == [
            female[1]
        ]
    if "wandb" in _installed():
        latest = _offline_runs(straight)[-1]
        logged = _wandb_run(latest)
        assert logged["summary"][f"{prefix}/gap_AP/perturbed_ci_hi"] == ci[1]
        assert (latest.parent / "files" / "forest.png").is_file()


def test_a_broken_trackers_file_is_a_warning_after_the_metrics_are_written(tmp_path, capsys):
    from faapkit.cli._context import AppState
    from faapkit.cli.evaluate import CliHost

    (tmp_path / TRACKERS_FILE).write_text("{not json")
    metrics = tmp_path / EVAL_JSON.name
    metrics.write_bytes(EVAL_JSON.read_bytes())
    CliHost(AppState()).evaluation_written(tmp_path, metrics)
    err = capsys.readouterr().err
    assert "evaluation written, not logged to the run's tracker" in err and TRACKERS_FILE in err


def test_a_local_store_that_cannot_be_made_is_refused_when_the_logger_is_built(tmp_path):
    """Refused before the run folder exists (the logger is built at setup), naming the setting."""
    pytest.importorskip("mlflow")
    from faapkit.train.trackers import MLflowLogger

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"tracking_uri=.*cannot hold an MLflow store: .*afile is not a folder"):
        MLflowLogger(tmp_path / "run", tracking_uri=f"file:{blocker}/store")
