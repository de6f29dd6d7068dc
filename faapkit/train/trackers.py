"""Experiment trackers: MLflow and Weights & Biases loggers, and what ``faap eval`` adds to them.

Both are ``MetricsLogger``s (``train.loggers = ["mlflow"]`` / ``["wandb"]``, options in
``train.logger_options.<name>``) and log, into one tracker run per faapkit run:

- the resolved config (``RUN/run.json``'s ``config``): MLflow params with dotted keys (values cut
  at 500 characters) plus the exact ``faapkit/config.json`` artifact; the W&B run config;
- the ``train`` and ``val`` scalars as ``<split>/<name>`` at faapkit's global step;
- through :func:`log_evaluation`, an evaluation's metrics JSON (artifact / run file), its headline
  numbers (per-group AP, the AP gap, the share of it closed) and any figures.

Where the tracker run is goes into ``RUN/trackers.json`` (``{"mlflow": {...}, "wandb": {...}}``),
so a resumed run and a later evaluation reach the same tracker run.

Resuming from a checkpoint at step ``S``: an MLflow run that holds nothing past ``S`` is continued;
one that does (the rows a killed process wrote past its last checkpoint: MLflow cannot delete
points) is replaced by a new tracker run holding its params and its history up to ``S``, tagged
``faap.resumed_from`` (the old one is tagged ``faap.superseded_by`` and ends ``KILLED``), so every
step is logged once in the run ``trackers.json`` names. W&B resumes the same run id; W&B keeps a
run's steps increasing, so it drops rows at steps it already holds.

mlflow and wandb are imported when a logger is built (before training starts), never at import.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from faapkit.artifacts.rundir import RunDir
from faapkit.errors import ConfigError, FaapError
from faapkit.fairness import share_closed
from faapkit.io import atomic_write_text

TRACKERS_FILE = "trackers.json"
PARAM_CHARS = 500  # MLflow before 2.x's later releases refused longer values; the artifact is exact
_MLFLOW_KEY = re.compile(r"[^\w\-. /]")


def _require(module: str, why: str = "") -> Any:
    """``module`` imported, or one ``ConfigError`` line naming the extra that installs it (the
    extra is named like the package and the logger: ``mlflow``, ``wandb``)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        why = why or f"train.loggers includes '{module}' but"
        raise ConfigError(
            f"{why} the {module} package is not installed (pip install 'faapkit[{module}]'"
            + (", or remove it from train.loggers)" if why.startswith("train.loggers") else ")")
        ) from None


def read_trackers(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``RUN/trackers.json``: the tracker runs this faapkit run logs to (empty when none)."""
    path = Path(run_dir) / TRACKERS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FaapError(f"{path} is corrupt: {exc}") from None
    if not isinstance(data, dict):
        raise FaapError(f"{path} is not a trackers file (not a JSON object)")
    return data


def _record(run_dir: Path, name: str, entry: Mapping[str, Any]) -> None:
    trackers = read_trackers(run_dir)
    trackers[name] = dict(entry)
    atomic_write_text(Path(run_dir) / TRACKERS_FILE, json.dumps(trackers, indent=2, sort_keys=True) + "\n")


def _manifest(run_dir: Path) -> dict[str, Any]:
    return RunDir(Path(run_dir)).read_manifest()


def _identity(manifest: Mapping[str, Any]) -> dict[str, str]:
    """What identifies the faapkit run in a tracker: tags / W&B config keys."""
    return {
        "faap.run_id": str(manifest.get("run_id", "")),
        "faap.version": str(manifest.get("version", "")),
        "faap.seed": str(manifest.get("seed", "")),
        "faap.detector_sha256": str(manifest.get("detector", {}).get("sha256", "")),
        "faap.dataset_fingerprint": str(manifest.get("dataset", {}).get("fingerprint", "")),
    }


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys to text values (lists and empty sections as JSON): ``{"train.lr": "0.0001"}``."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value)
    return out


def _exit_status() -> str | None:
    """How the training ends, seen from ``close`` (called from the trainer's ``finally``): the
    exception propagating through it, if any."""
    kind = sys.exc_info()[0]
    if kind is None:
        return None
    return "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED"


# ---------------------------------------------------------------------------------------- MLflow
def _mlflow_key(name: str) -> str:
    """MLflow keys allow letters, digits, ``_-. /``; anything else (a group named ``a+b``) is ``_``."""
    return _MLFLOW_KEY.sub("_", name)


def _effective_uri(tracking_uri: str | None) -> tuple[str | None, str]:
    """The tracking URI MLflow will use and where it comes from (the option, the environment
    variable, or MLflow's default, ``None`` when that cannot be asked without the package)."""
    if tracking_uri is not None:
        return tracking_uri, "train.logger_options.mlflow.tracking_uri"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI"
    try:
        import mlflow

        return str(mlflow.get_tracking_uri()), "MLflow's default tracking URI"
    except Exception:  # an MLflow that cannot say: the store is then checked when opened
        return None, "MLflow's default tracking URI"


def _is_file_store(uri: str) -> bool:
    return uri.startswith("file:") or ("://" not in uri and not uri.startswith(("databricks", "sqlite:", "uc:")))


def _check_file_store_allowed(uri: str, source: str) -> None:
    """MLflow 3 keeps a file store only when ``MLFLOW_ALLOW_FILE_STORE`` is true (else it refuses
    the store when the run is opened, after faapkit made the run folder): refused here, before."""
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:  # an MLflow without the switch takes file stores as they are
        return
    if not MLFLOW_ALLOW_FILE_STORE.get():
        raise ConfigError(
            f"MLflow keeps the local file store {uri!r} (from {source}) only with MLFLOW_ALLOW_FILE_STORE=true: "
            "set it, or point train.logger_options.mlflow.tracking_uri (or MLFLOW_TRACKING_URI) at a database "
            "such as sqlite:///mlflow.db"
        )


def _check_file_store(tracking_uri: str | None) -> None:
    """A local store (``file:`` URI or a plain path) must be, or be creatable in, a writable
    folder: refused by name before the run folder is made, not after."""
    if tracking_uri is None or ("://" in tracking_uri and not tracking_uri.startswith("file:")):
        return
    from urllib.parse import unquote, urlparse

    path = Path(unquote(urlparse(tracking_uri).path)) if tracking_uri.startswith("file:") else Path(tracking_uri)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    why = None
    if existing is None or not existing.is_dir():
        why = f"{existing} is not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        why = f"{existing} is not writable"
    if why:
        raise ConfigError(
            f"train.logger_options.mlflow.tracking_uri={tracking_uri!r} cannot hold an MLflow store: {why}"
        )


class MLflowLogger:
    """One MLflow run per faapkit run, in ``experiment`` at ``tracking_uri`` (else
    ``MLFLOW_TRACKING_URI``, else MLflow's default)."""

    def __init__(
        self,
        run_dir: Path,
        tracking_uri: str | None = None,
        experiment: str = "faapkit",
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        _require("mlflow")  # checked when the trainer is set up
        _check_file_store(tracking_uri)
        uri, source = _effective_uri(tracking_uri)
        if uri is not None and _is_file_store(uri):
            _check_file_store_allowed(uri, source)
        self.run_dir = Path(run_dir)
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name or self.run_dir.name
        self.tags = dict(tags or {})
        self.run_id: str | None = None
        self._client: Any = None

    def open(self, start_step: int) -> None:
        try:
            self._open(start_step)
        except FaapError:
            raise
        except Exception as exc:  # any store failure: one line naming the setting, not a traceback
            uri, source = _effective_uri(self.tracking_uri)
            raise FaapError(
                f"MLflow at {uri!r} (from {source}) cannot take this run: "
                f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            ) from None

    def _open(self, start_step: int) -> None:
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient(tracking_uri=self.tracking_uri)
        manifest = _manifest(self.run_dir)
        previous = read_trackers(self.run_dir).get("mlflow") if start_step > 0 else None
        if previous and previous.get("tracking_uri") == self._client.tracking_uri:
            self.run_id = _mlflow_continue(self._client, previous["run_id"], start_step)
        if self.run_id is None:
            self.run_id = self._client.create_run(self._experiment_id(), run_name=self.run_name).info.run_id
        _mlflow_describe(self._client, self.run_id, manifest, self.tags)
        _record(
            self.run_dir,
            "mlflow",
            {"tracking_uri": self._client.tracking_uri, "run_id": self.run_id, "experiment": self.experiment},
        )

    def _experiment_id(self) -> str:
        found = self._client.get_experiment_by_name(self.experiment)
        return found.experiment_id if found is not None else self._client.create_experiment(self.experiment)

    def log(self, split: str, step: int, epoch: int, scalars: Mapping[str, float]) -> None:
        _mlflow_metrics(self._client, self.run_id, {f"{split}/{k}": v for k, v in scalars.items()}, step)

    def close(self) -> None:
        if self._client is not None and self.run_id is not None:
            self._client.set_terminated(self.run_id, status=_exit_status() or "FINISHED")
        self._client = None


def _mlflow_metrics(client: Any, run_id: str | None, scalars: Mapping[str, float], step: int) -> None:
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    metrics = [Metric(_mlflow_key(k), float(v), stamp, step) for k, v in scalars.items() if math.isfinite(v)]
    for start in range(0, len(metrics), 1000):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


def _mlflow_describe(client: Any, run_id: str, manifest: Mapping[str, Any], tags: Mapping[str, str]) -> None:
    """The resolved config as params (those the run does not hold yet: a resumed run may change
    the resumable keys, and MLflow refuses to change a param) and as the exact artifact."""
    from mlflow.entities import Param, RunTag

    config = manifest.get("config", {})
    held = client.get_run(run_id).data.params
    params = [Param(_mlflow_key(k), v[:PARAM_CHARS]) for k, v in flatten(config).items() if _mlflow_key(k) not in held]
    for start in range(0, len(params), 100):  # log_batch takes at most 100 params
        client.log_batch(run_id, params=params[start : start + 100])
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in {**_identity(manifest), **tags}.items()])
    client.log_dict(run_id, config, "faapkit/config.json")


def _mlflow_continue(client: Any, run_id: str, start_step: int) -> str | None:
    """The tracker run a resume at ``start_step`` logs to: ``run_id`` if it holds nothing past
    it, else a copy of its params, tags and history up to it (``None``: it is gone)."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        return None  # deleted in the tracker: start a new one
    if run.info.lifecycle_stage != "active":
        return None
    history = {key: client.get_metric_history(run_id, key) for key in run.data.metrics}
    if all(point.step <= start_step for points in history.values() for point in points):
        return run_id
    new = client.create_run(run.info.experiment_id, run_name=run.info.run_name).info.run_id
    kept = [Metric(p.key, p.value, p.timestamp, p.step) for ps in history.values() for p in ps if p.step <= start_step]
    for start in range(0, len(kept), 1000):
        client.log_batch(new, metrics=kept[start : start + 1000])
    params = [Param(k, v) for k, v in run.data.params.items()]
    for start in range(0, len(params), 100):
        client.log_batch(new, params=params[start : start + 100])
    user_tags = [RunTag(k, v) for k, v in run.data.tags.items() if not k.startswith("mlflow.")]
    client.log_batch(new, tags=[*user_tags, RunTag("faap.resumed_from", run_id)])
    client.set_tag(run_id, "faap.superseded_by", new)
    client.set_terminated(run_id, status="KILLED")
    return new


# ------------------------------------------------------------------------------ Weights & Biases
def _wandb_logged_in() -> bool:
    """An API key in ``WANDB_API_KEY`` or a ``wandb login`` netrc entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _check_online(mode: str | None) -> None:
    """W&B online without an API key fails inside ``wandb.init`` (after the run folder is made):
    refused here, naming the switches."""
    asked = mode if mode is not None else os.environ.get("WANDB_MODE")
    if asked == "online" and not _wandb_logged_in():
        source = "train.logger_options.wandb.mode" if mode is not None else "WANDB_MODE"
        raise ConfigError(
            f"W&B online mode ({source}=online) needs an API key and none is configured: set WANDB_API_KEY or "
            "run `wandb login`, or log offline (mode=offline / WANDB_MODE=offline) and upload with `wandb sync`"
        )


def _wandb_mode(mode: str | None) -> str | None:
    """``mode``, else ``WANDB_MODE`` (``None``: wandb reads it), else online only with an API key
    (``WANDB_API_KEY`` or a ``wandb login`` netrc entry): nothing is sent unless asked for."""
    if mode is not None or os.environ.get("WANDB_MODE"):
        return mode
    return "online" if _wandb_logged_in() else "offline"


class WandbLogger:
    """One W&B run per faapkit run in ``project`` (offline without an API key: ``wandb sync``
    uploads it later). Its files go to ``dir`` (else ``WANDB_DIR``, else the run folder:
    ``RUN/wandb/``)."""

    def __init__(
        self,
        run_dir: Path,
        project: str = "faapkit",
        entity: str | None = None,
        mode: str | None = None,
        dir: str | None = None,
        run_name: str | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        self._wandb = _require("wandb")  # checked when the trainer is set up
        self.run_dir = Path(run_dir)
        self.project, self.entity, self.run_name, self.tags = project, entity, run_name, list(tags)
        _check_online(mode)
        self.mode = _wandb_mode(mode)
        self.dir = dir if dir is not None or os.environ.get("WANDB_DIR") else str(self.run_dir)
        self._run: Any = None

    def open(self, start_step: int) -> None:
        manifest = _manifest(self.run_dir)
        previous = read_trackers(self.run_dir).get("wandb") if start_step > 0 else None
        resumed = previous is not None and previous.get("project") == self.project
        self._run = _wandb_init(
            self._wandb,
            {"project": self.project, "entity": self.entity, "mode": self.mode, "dir": self.dir},
            run_id=previous["id"] if resumed and previous else None,
            name=self.run_name or self.run_dir.name,
            tags=self.tags,
            config={
                **manifest.get("config", {}),
                "faap": {k.removeprefix("faap."): v for k, v in _identity(manifest).items()},
            },
        )
        _record(
            self.run_dir,
            "wandb",
            {"project": self.project, "entity": self.entity, "mode": self.mode, "dir": self.dir, "id": self._run.id},
        )

    def log(self, split: str, step: int, epoch: int, scalars: Mapping[str, float]) -> None:
        self._run.log({f"{split}/{k}": v for k, v in scalars.items()}, step=step)

    def close(self) -> None:
        if self._run is not None:
            self._run.finish(exit_code=1 if _exit_status() else 0)
            self._run = None


def _wandb_init(wandb: Any, where: Mapping[str, Any], *, run_id: str | None, **fields: Any) -> Any:
    """``wandb.init`` for a new run (``run_id`` ``None``) or the run ``run_id`` resumed; faapkit's
    terminal output is left alone (``console="off"``)."""
    return wandb.init(
        **where,
        id=run_id,
        resume="allow" if run_id else None,
        settings=wandb.Settings(console="off"),
        **fields,
    )


# ------------------------------------------------------------------------------- evaluations
def headline(metrics: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """An evaluation's numbers a tracker shows: per-group AP of each setting
    (``<prefix>/AP/<setting>/<group>``), the AP gap of each setting, its change and the share of
    it closed (``<prefix>/gap_AP/...``, ``<prefix>/share_closed_AP``), each with the bounds of its
    paired bootstrap CI where the evaluation drew one (``<name>_ci_lo`` / ``<name>_ci_hi``)."""
    out: dict[str, Any] = {}
    boot = metrics.get("bootstrap") or {}
    for setting, groups in metrics.get("metrics", {}).items():
        out.update({f"{prefix}/AP/{setting}/{g}": row.get("AP") for g, row in groups.items()})
        cis = (boot.get("groups") or {}).get(setting) or {}
        out.update(_bounds({f"{prefix}/AP/{setting}/{g}": (cis.get(g) or {}).get("AP") for g in groups}))
    gaps = metrics.get("gaps", {}).get("AP", {})
    out.update({f"{prefix}/gap_AP/{k}": v for k, v in gaps.items()})
    gap_cis = (boot.get("gaps") or {}).get("AP") or {}
    out.update(_bounds({f"{prefix}/gap_AP/{k}": gap_cis.get(k) for k in ("baseline", "perturbed", "change")}))
    out[f"{prefix}/share_closed_AP"] = share_closed(gaps.get("baseline"), gaps.get("perturbed"))
    out.update(_bounds({f"{prefix}/share_closed_AP": gap_cis.get("share_closed")}))
    return {
        k: float(v)
        for k, v in out.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def _bounds(cis: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: [lo, hi]}`` -> ``{name_ci_lo: lo, name_ci_hi: hi}`` for the names that have a CI."""
    out: dict[str, Any] = {}
    for name, ci in cis.items():
        if isinstance(ci, list | tuple) and len(ci) == 2:
            out[f"{name}_ci_lo"], out[f"{name}_ci_hi"] = ci
    return out


def log_evaluation(run_dir: Path, metrics_path: Path, figures: Iterable[Path] = ()) -> list[str]:
    """Add an evaluation of ``run_dir`` (its ``faap eval`` metrics JSON) and ``figures`` to every
    tracker run ``RUN/trackers.json`` names; returns their names (none when the run used no tracker).
    A tracker's failure is one ``FaapError`` (the metrics file is already written: a caller warns).

    MLflow: artifacts ``eval/<file>`` and ``figures/<file>``, the :func:`headline` numbers as
    metrics at the evaluated checkpoint's step. W&B: the files as run files, the numbers in the
    run summary (W&B keeps history steps increasing; an evaluation comes after training)."""
    metrics_path = Path(metrics_path)
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FaapError(f"cannot read {metrics_path}: {exc}") from None
    numbers = headline(metrics, f"eval/{metrics_path.stem}")
    step = int(metrics.get("global_step") or 0)
    files = [Path(f) for f in figures]
    done = []
    for name, entry in read_trackers(run_dir).items():
        try:
            if name == "mlflow":
                _mlflow_evaluation(entry, metrics_path, files, numbers, step)
            elif name == "wandb":
                _wandb_evaluation(entry, metrics_path, files, numbers)
            else:
                continue
        except FaapError:
            raise
        except Exception as exc:  # the tracker's own error (unreachable server, deleted run): one line
            raise FaapError(f"cannot log {metrics_path} to the run's {name} run: {exc}") from None
        done.append(name)
    return done


def _mlflow_evaluation(
    entry: Mapping[str, Any], metrics_path: Path, figures: list[Path], numbers: Mapping[str, float], step: int
) -> None:
    _require("mlflow", f"the run is tracked in MLflow (run {entry.get('run_id')}) but")
    from mlflow.tracking import MlflowClient

    # the metrics file is written already: a server that does not answer costs seconds, not
    # MLflow's default minutes of retries (the user's own settings win)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    client = MlflowClient(tracking_uri=entry["tracking_uri"])
    client.log_artifact(entry["run_id"], str(metrics_path), "eval")
    for figure in figures:
        client.log_artifact(entry["run_id"], str(figure), "figures")
    # the same evaluation logged again (faap report after faap eval) adds no second point
    held = client.get_run(entry["run_id"]).data.metrics
    _mlflow_metrics(client, entry["run_id"], {k: v for k, v in numbers.items() if held.get(k) != v}, step)


def _wandb_evaluation(
    entry: Mapping[str, Any], metrics_path: Path, figures: list[Path], numbers: Mapping[str, float]
) -> None:
    wandb = _require("wandb", f"the run is tracked in W&B (run {entry.get('id')}) but")
    where = {k: entry.get(k) for k in ("project", "entity", "mode", "dir")}
    # a mode training took from WANDB_MODE is recorded as None: decide it again now, as training
    # did (offline unless asked for or logged in), never wandb's own default
    where["mode"] = _wandb_mode(where["mode"])
    run = _wandb_init(wandb, where, run_id=entry["id"])
    try:
        run.save(str(metrics_path), base_path=str(metrics_path.parent.parent), policy="now")
        for figure in figures:
            run.save(str(figure), base_path=str(figure.parent), policy="now")
        run.summary.update(dict(numbers))
    finally:
        run.finish()
