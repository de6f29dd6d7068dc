"""The training engine: one loop for every method version (no version-specific branches).

Per step: perturb the valid region with the generator, jitter colours (batched), run the frozen
detector once, compute the DETR set loss once, hand both to the version's loss strategy, then
clip and step. Schedules are evaluated per epoch by role: ``epsilon`` sets the generator bound,
``lr`` scales ``train.lr``, every other role is passed to the strategy as a weight (``beta``, ...).
"""

from __future__ import annotations

import platform
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from faapkit import __version__
from faapkit.artifacts.checkpoint import (
    FORMAT,
    CheckpointPayload,
    latest_checkpoint,
    read_training_checkpoint,
    save_training_checkpoint,
)
from faapkit.artifacts.rundir import RunDir
from faapkit.config import FaapConfig
from faapkit.data.batching import BalancedGroupSampler, ShapeBucketError, collate, loader_workers
from faapkit.data.coco import DatasetSplit, GroupedDetectionDataset, has_split, load_split, require_groups
from faapkit.data.synth import embedded_dataset_for
from faapkit.data.transforms import TrainTransform
from faapkit.detr.frozen import FrozenDetector, load_detector
from faapkit.distributed import any_true, barrier, broadcast_buffers, setup_process
from faapkit.errors import CheckpointError, ConfigError, FaapError, TrainingError
from faapkit.evaluate.inference import autocast_for
from faapkit.generators.perturb import apply_perturbation, compile_generator
from faapkit.losses.base import LossInputs, LossOutput, LossStrategy
from faapkit.plugins.registry import Registries
from faapkit.plugins.specs import DetectorSpec
from faapkit.train.augment import color_jitter
from faapkit.train.loggers import ScalarLog
from faapkit.train.meters import Meters
from faapkit.train.selection import RECORDED, describe_rule, select_epoch
from faapkit.train.validation import Validator

# config keys that may change when resuming (they do not change what is computed)
RESUMABLE_KEYS = {
    ("train", "max_steps"),
    ("train", "device"),
    ("data", "num_workers"),
    ("train", "log_every"),
    ("train", "loggers"),
    ("train", "logger_options"),
    ("train", "channels_last"),
    ("train", "compile"),
    ("train", "fused_optimizer"),
}


def _kept_sha256(previous: dict[str, Any] | None, epoch: int) -> str | None:
    """The ``checkpoint_sha256`` the previous ``selection.json`` recorded for ``best.pt`` of
    ``epoch`` (``None`` when it chose another epoch or recorded none: an older run)."""
    previous = previous or {}
    digest = previous.get("checkpoint_sha256")
    return digest if previous.get("epoch") == epoch and isinstance(digest, str) else None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def param_groups(modules: list[nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and norm parameters (research P21)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for module in modules:
        for name, p in module.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def subset_outputs(outputs: dict[str, Any], rows: torch.Tensor) -> dict[str, Any]:
    """The detector outputs of batch rows ``rows`` (final and auxiliary decoder layers)."""
    picked = {k: outputs[k][rows] for k in ("pred_logits", "pred_boxes")}
    picked["aux_outputs"] = [{k: v[rows] for k, v in aux.items()} for aux in outputs.get("aux_outputs") or []]
    return picked


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        path = (*prefix, key)
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, path)
        elif a != b and path not in RESUMABLE_KEYS and path[:2] not in RESUMABLE_KEYS:
            diffs.append(".".join(path))
    return diffs


def with_defaults(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored run config with the keys added since it was written at their defaults (the
    behaviour the run was trained with), so that resuming an older run compares like with like.
    A config that no longer validates is compared as stored (its differences are then named)."""
    try:
        return FaapConfig.model_validate(stored).model_dump(mode="json")
    except ValidationError:
        return stored


@dataclass
class EpochState:
    epoch: int = 0
    position: int = 0
    global_step: int = 0
    meters: Meters = field(default_factory=Meters)
    skips: Counter = field(default_factory=Counter)
    nonfinite: int = 0
    images: int = 0
    seconds: float = 0.0


class Trainer:
    """Builds every part from a resolved config and runs (or resumes) a run folder."""

    def __init__(
        self,
        config: FaapConfig,
        registries: Registries,
        run_dir: Path,
        *,
        resume: bool = False,
        providers: dict[str, Any] | None = None,
        reporter: Any = None,
    ) -> None:
        self.config = config
        self.registries = registries
        self.run = RunDir(run_dir)
        self.resume = resume
        self.providers = providers or {}
        self.reporter = reporter
        self.version = registries.versions.get(config.version)
        self.resumed_manifest: dict[str, Any] = {}
        self.notes: list[str] = []  # warnings for the user, printed by the CLI after setup
        self._run_id = ""

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Build every part, then start or restore the run folder. Each part has its own
        ``build_*`` step (a subclass may override one); they run in this order because the
        generator, head and loss initialise their weights from the global RNG seeded here."""
        cfg = self.config
        self.dist, self.device = setup_process(cfg.train.device)
        seed_everything(cfg.train.seed + self.dist.rank)
        self.scalars = self.build_loggers()  # first: a logger's missing package is refused before anything is written
        try:
            self._check_run_folder()
            self._setup_parts()
        except BaseException:
            if self.dist.is_main:
                self.run.discard_if_unused()
            raise

    def _setup_parts(self) -> None:
        cfg = self.config
        root = Path(cfg.data.root) if cfg.data.root is not None else self.embedded_root()
        self.data = self.build_data(root)
        self._check_group_weights()
        self.dataset = self.build_dataset()
        self.steps_per_epoch = cfg.train.steps_per_epoch or self.default_steps_per_epoch()
        self.sampler = self.build_sampler()
        self.loader = self.build_loader()
        self.detector: FrozenDetector = self.build_detector()
        self.generator = self.build_generator()
        self.head: nn.Module | None = self.build_head()
        self.strategy: LossStrategy = self.build_loss()
        self._check_trainable()
        if cfg.train.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.detector.to(memory_format=torch.channels_last)
        self.optimizer = self.build_optimizer()
        self.g_model, self.head_for_loss = self.build_parallel()
        if cfg.train.compile:  # build_generator refuses it for anything but the U-Net
            compile_generator(self.generator)
        self.strategy.attach(self.head_for_loss, self.device, self.dist)
        self.validator = self.build_validator(root)
        self.state = EpochState()
        if self.resume and self.run.checkpoint_files():
            self._restore()
        elif self.dist.is_main:
            # a fresh run, or --resume of one that stopped before its first checkpoint: start afresh
            self.run.truncate_log(0)
            self.run.remove_partial_writes()
            self.run.write_manifest(self._manifest())
        self.scalars.open(self.state.global_step)
        barrier(self.dist)

    def build_data(self, root: Path) -> DatasetSplit:
        """The validated train split; both groups of the pair must be in it."""
        cfg = self.config
        data = load_split(
            root,
            cfg.data.train_split,
            split_by=cfg.data.split_by,
            layout=cfg.data.layout,
            limit=cfg.data.limit_images,
            on_corrupt=cfg.data.on_corrupt,
            on_invalid=cfg.data.on_invalid,
        )
        require_groups(data, [cfg.data.disadvantaged, cfg.data.advantaged])
        return data

    def build_dataset(self) -> GroupedDetectionDataset:
        """Training images and targets; group ids 0 = disadvantaged, 1 = advantaged, 2.. = others."""
        cfg = self.config
        others = [g for g in self.data.groups if g not in (cfg.data.disadvantaged, cfg.data.advantaged)]
        return GroupedDetectionDataset(
            self.data,
            TrainTransform(cfg.data.train_scales, cfg.data.max_size),
            groups=[cfg.data.disadvantaged, cfg.data.advantaged, *others],
        )

    def default_steps_per_epoch(self) -> int:
        """The research sampler's epoch: 2 x the larger group's images, with replacement, in
        batches of ``train.batch_size`` on every process."""
        cfg = self.config
        counts = [self.data.group_counts()[g] for g in (cfg.data.disadvantaged, cfg.data.advantaged)]
        draws = 2 * max(counts)
        return max(1, draws // (cfg.train.batch_size * self.dist.world_size))

    def build_sampler(self) -> BalancedGroupSampler:
        """Balanced (or ``data.group_weights`` / ``data.disadvantaged_share``) group sampling."""
        cfg = self.config
        weights = None
        if cfg.data.group_weights and cfg.data.disadvantaged_share is not None:
            raise ConfigError("data.group_weights and data.disadvantaged_share both set the sampling; choose one")
        if cfg.data.group_weights:
            weights = [cfg.data.group_weights.get(g, 0.0) for g in (cfg.data.disadvantaged, cfg.data.advantaged)]
        elif cfg.data.disadvantaged_share is not None:
            weights = [cfg.data.disadvantaged_share, 1.0 - cfg.data.disadvantaged_share]
        binary = [g if g in (0, 1) else -1 for g in self.dataset.record_groups()]
        shapes = [(r.height, r.width) for r in self.data.records] if cfg.data.shape_buckets else None
        why = "data.shape_buckets (on: set, or following a detector trained unpadded)"
        try:
            sampler = BalancedGroupSampler(
                binary,
                batch_size=cfg.train.batch_size,
                num_batches=self.steps_per_epoch,
                seed=cfg.train.seed,
                weights=weights,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
                shapes=shapes,
                scales=cfg.data.train_scales,
            )
        except ShapeBucketError as exc:
            raise ConfigError(f"{why}: {exc} in split '{cfg.data.train_split}'; set data.shape_buckets=false") from None
        if sampler.stranded:
            self.notes.append(
                f"{why}: {sampler.stranded} training image(s) have a size not every sampled group has and are "
                "never drawn; set data.shape_buckets=false to train on every image"
            )
        return sampler

    def build_loader(self) -> DataLoader:
        """Collated batches in the sampler's order."""
        cfg = self.config
        workers = loader_workers(cfg.data.num_workers, self.device.type)
        return DataLoader(
            self.dataset,
            batch_sampler=self.sampler,
            collate_fn=collate,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            # its own generator: creating an iterator must not consume the global RNG
            # (that would make a resumed epoch draw different dropout masks)
            generator=torch.Generator().manual_seed(cfg.train.seed),
        )

    def build_head(self) -> nn.Module | None:
        """The version's trainable head on decoder features ``(B, Q, D)``, or None."""
        if self.version.head is None:
            return None
        if self.detector.hidden_dim is None:
            raise ConfigError(
                f"version '{self.config.version}' needs decoder features for its head '{self.version.head}';"
                f" detector '{self.config.detector.name}' gives none"
            )
        return (
            self.registries.heads.get(self.version.head)
            .build(feature_dim=self.detector.hidden_dim, **self.config.head)
            .to(self.device)
        )

    def build_loss(self) -> LossStrategy:
        """The version's loss strategy with the validated ``[loss]`` options."""
        return self.registries.losses.get(self.version.loss).build(**self.config.loss)  # type: ignore[no-any-return]

    def build_optimizer(self) -> torch.optim.Optimizer:
        """AdamW over the generator (and the head when the loss trains it with the generator);
        sets ``trainable_params``, the parameters whose gradient norm is clipped."""
        cfg = self.config
        trainable = [self.generator] + (
            [self.head] if self.head is not None and self.strategy.head_in_generator_optimizer else []
        )
        fused = cfg.train.fused_optimizer and self.device.type == "cuda"
        optimizer = torch.optim.AdamW(
            param_groups(trainable, cfg.train.weight_decay), lr=cfg.train.lr, fused=fused or None
        )
        self.trainable_params = [p for m in trainable for p in m.parameters() if p.requires_grad]
        return optimizer

    def build_parallel(self) -> tuple[nn.Module, nn.Module | None]:
        """``(generator, head)`` as the step calls them: DDP-wrapped under torchrun (the head only
        when the generator's optimiser trains it), the modules themselves otherwise."""
        g_model: nn.Module = self.generator
        head_for_loss = self.head
        if self.dist.enabled:
            g_model = DDP(self.generator, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.head is not None and self.strategy.head_in_generator_optimizer:
                head_for_loss = DDP(self.head, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return g_model, head_for_loss

    def _check_run_folder(self) -> None:
        """Take the folder's lock (one writer per run folder), then check it may be written."""
        if self.dist.is_main:
            self.run.lock()
        if self.resume:
            manifest = self.run.read_manifest()
            if manifest.get("version") != self.config.version:
                raise ConfigError(
                    f"cannot resume {self.run.path}: it is a '{manifest.get('version')}' run, "
                    f"not '{self.config.version}'"
                )
            diffs = config_differences(with_defaults(manifest.get("config", {})), self.config.model_dump(mode="json"))
            if diffs:
                raise ConfigError(
                    f"cannot resume {self.run.path}: the config differs in {', '.join(diffs[:6])}"
                    + (" ..." if len(diffs) > 6 else "")
                )
            self.resumed_manifest = manifest
            return
        if self.run.exists():
            if not self.run.checkpoint_files():
                raise FaapError(
                    f"{self.run.path} holds a run that stopped before its first checkpoint; "
                    f"faap train --resume {self.run.path} starts it afresh, or choose another --out"
                )
            raise FaapError(f"{self.run.path} already holds a run; use --resume to continue it or choose another --out")
        # not a run: what a fresh run writes (its loggers start their files afresh) must not be there
        taken = [n for n in ("metrics.csv", "tb", "train_log.jsonl", "selection.json") if (self.run.path / n).exists()]
        if taken:
            raise FaapError(
                f"{self.run.path} holds {taken[0]} but no run.json (not a faapkit run): a new run would replace "
                "or mix into it; choose another --out"
            )
        if self.dist.is_main:
            self.run.create()

    def _check_group_weights(self) -> None:
        """``data.group_weights`` may only name groups the data has (a typo would silently weight 0)."""
        weights = self.config.data.group_weights or {}
        unknown = sorted(set(weights) - set(self.data.groups))
        if unknown:
            raise ConfigError(
                f"data.group_weights names group(s) {', '.join(unknown)} not in split '{self.data.split}' "
                f"(groups: {', '.join(self.data.groups)})"
            )

    def _check_trainable(self) -> None:
        """Refuse settings under which the version's loss would skip every batch: training would
        end "done" with an untrained generator. A batch holds only the disadvantaged (0) and
        advantaged (1) groups, so trying every split of ``batch_size`` between them is exhaustive."""
        cfg = self.config
        size = cfg.train.batch_size
        for n_dis in range(size + 1):
            if self.strategy.skip_reason(torch.tensor([0] * n_dis + [1] * (size - n_dis))) is None:
                return
        reason = self.strategy.skip_reason(torch.tensor([0] * (size // 2) + [1] * (size - size // 2)))
        raise ConfigError(
            f"train.batch_size={size} cannot train version '{cfg.version}': every batch would be skipped "
            f"({reason}); use a larger train.batch_size"
        )

    @property
    def run_id(self) -> str:
        """Identifies this run in its checkpoints (a checkpoint copied from another run is refused)."""
        if not self._run_id:
            self._run_id = self.resumed_manifest.get("run_id") or uuid.uuid4().hex[:16]
        return self._run_id

    def _manifest(self) -> dict[str, Any]:
        return {
            "format": "faapkit.run/1",
            "run_id": self.run_id,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "version": self.config.version,
            "config": self.config.model_dump(mode="json"),
            "software": {"faapkit": __version__, "torch": torch.__version__, "python": platform.python_version()},
            "providers": self.providers,
            "seed": self.config.train.seed,
            "world_size": self.dist.world_size,
            "dataset": {
                "root": str(self.data.root),
                "layout": self.data.layout,
                "split": self.data.split,
                "fingerprint": self.data.fingerprint,
                "groups": self.data.group_counts(),
                "skipped": self.data.skipped,
                "skipped_corrupt": len(self.data.skipped_corrupt),
            },
            "detector": {
                "name": self.detector.name,
                "checkpoint": self.detector.checkpoint,
                "sha256": self.detector.sha256,
            },
            "steps_per_epoch": self.steps_per_epoch,
        }

    # ------------------------------------------------------------------ schedules
    def _schedule(self, role: str, epoch: int, default: float | None = None) -> float:
        section = dict(self.config.schedules.get(role, {}))
        if not section:
            if default is None:
                raise ConfigError(f"version '{self.config.version}' has no '{role}' schedule")
            return default
        spec = self.registries.schedules.get(section.pop("name"))
        return spec.value(epoch, self.config.train.epochs, section)

    def epoch_values(self, epoch: int) -> tuple[float, float, dict[str, float]]:
        eps = self._schedule("epsilon", epoch)
        lr = self.config.train.lr * self._schedule("lr", epoch, 1.0)
        weights = {role: self._schedule(role, epoch) for role in self.config.schedules if role not in ("epsilon", "lr")}
        return eps, lr, weights

    # ------------------------------------------------------------------ checkpoints
    def _payload(self, complete: bool) -> dict[str, Any]:
        st = self.state
        return {
            "format": FORMAT,
            "version": self.config.version,
            "epoch": st.epoch,
            "epoch_complete": complete,
            "position": 0 if complete else st.position,
            "global_step": st.global_step,
            "epsilon": float(self.generator.epsilon),
            "generator_spec": dict(self.config.generator),
            **{k: v for k, v in self.config.generator.items() if k == "base_channels"},  # research key
            "generator": self.generator.state_dict(),
            "head": self.head.state_dict() if self.head is not None else {},
            "optimizer": self.optimizer.state_dict(),
            "strategy": self.strategy.state_dict(),
            "rng": rng_state(),
            "meters": st.meters.state_dict() if not complete else {},
            "skips": dict(st.skips) if not complete else {},
            "nonfinite": st.nonfinite if not complete else 0,
            "log_window": self.scalars.window_state(),
            "detector": {"name": self.detector.name, "sha256": self.detector.sha256},
            "dataset_fingerprint": self.data.fingerprint,
            "run_id": self.run_id,
        }

    def _save(self, complete: bool, payload: dict[str, Any] | None = None) -> Path:
        path = (
            self.run.epoch_checkpoint(self.state.epoch)
            if complete
            else self.run.step_checkpoint(self.state.global_step)
        )
        if payload is None:
            payload = self._payload(complete)  # on every process: it gathers the loggers' window
        if self.dist.is_main:
            save_training_checkpoint(path, payload)
        barrier(self.dist)
        return path

    def _restore(self) -> None:
        path = latest_checkpoint(self.run.checkpoint_files())
        if path is None:
            raise FaapError(f"{self.run.path} has no checkpoint to resume from")
        ckpt = read_training_checkpoint(path)
        self._check_resumable(ckpt, path)
        try:
            self.generator.load_state_dict(ckpt.generator)
            if self.head is not None:
                self.head.load_state_dict(ckpt.head)
            self.optimizer.load_state_dict(ckpt.optimizer)
            self.strategy.load_state_dict(ckpt.strategy)
        except (KeyError, RuntimeError, ValueError) as exc:
            first = " ".join(str(exc).split())[:160]
            raise CheckpointError(f"cannot resume from {path}: its state does not fit this run ({first})") from None
        restore_rng(ckpt.rng)
        st = self.state
        st.global_step = ckpt.global_step
        if ckpt.epoch_complete:
            st.epoch, st.position = ckpt.epoch + 1, 0
        else:
            st.epoch, st.position = ckpt.epoch, ckpt.position
            st.meters.load_state_dict(ckpt.meters)
            st.skips.update(ckpt.skips)
            st.nonfinite = ckpt.nonfinite
        self.scalars.load_window(ckpt.log_window)
        if self.dist.is_main:
            self.run.truncate_log(st.epoch)
            self.run.remove_partial_writes()

    def _check_resumable(self, ckpt: CheckpointPayload, path: Path) -> None:
        """The checkpoint must come from this run: version, detector weights, dataset content and
        generator width; each mismatch is named (continuing from foreign weights is silent)."""
        manifest = self.resumed_manifest
        problems = []
        if ckpt.version != self.config.version:
            problems.append(f"version '{ckpt.version}' (this run: '{self.config.version}')")
        sha = ckpt.detector.sha256
        if sha != self.detector.sha256:
            problems.append(f"detector weights {str(sha)[:12]} (now: {str(self.detector.sha256)[:12]})")
        generator = dict(self.config.generator)
        if ckpt.generator_spec != generator:
            problems.append(f"generator {ckpt.generator_spec} (this run: {generator})")
        fingerprints = {ckpt.dataset_fingerprint, manifest["dataset"]["fingerprint"]}
        if fingerprints != {self.data.fingerprint}:
            problems.append(
                f"dataset fingerprint {', '.join(sorted(fingerprints))} (the data now: {self.data.fingerprint}; "
                "images or annotations changed)"
            )
        if ckpt.run_id != manifest["run_id"]:
            problems.append(f"run id {ckpt.run_id} (this folder's run: {manifest['run_id']}; copied from another run?)")
        if problems:
            raise CheckpointError(f"cannot resume from {path}: it differs in {'; '.join(problems)}")

    # ------------------------------------------------------------------ loop
    def build_generator(self) -> Any:
        """The configured generator: an ``nn.Module`` with an assignable ``epsilon``."""
        options = dict(self.config.generator)
        spec = self.registries.generators.get(options.pop("name"))
        if self.config.train.compile and spec.name != "unet":
            raise ConfigError(f"train.compile supports the 'unet' generator only, not '{spec.name}'")
        generator = spec.build(epsilon=self._schedule("epsilon", 0), detector=self.detector, **options)
        return generator.to(self.device)  # type: ignore[no-any-return]

    def build_validator(self, root: Path) -> Validator | None:
        """The val split scorer (main process only), or None when ``train.val_every`` is 0."""
        cfg = self.config
        if cfg.train.val_every == 0 or not self.dist.is_main:
            return None
        if not has_split(root, cfg.data.val_split, cfg.data.layout):
            if "val_split" in cfg.data.model_fields_set and not self.resume:  # named by the user: no typo passes
                raise ConfigError(
                    f"data.val_split='{cfg.data.val_split}' is not a split under {root}; "
                    "name an existing split or set train.val_every=0"
                )
            self.notes.append(
                f"no '{cfg.data.val_split}' split under {root}: no validation during training and no best.pt, "
                "so faap eval RUN takes the highest step (set data.val_split to select on val, or "
                "train.val_every=0 to silence this)"
            )
            return None
        if cfg.data.val_split in (cfg.data.train_split, cfg.eval.split):
            role = "train" if cfg.data.val_split == cfg.data.train_split else "eval"
            self.notes.append(
                f"data.val_split='{cfg.data.val_split}' is also the {role} split: a checkpoint chosen "
                "there and reported there overstates the effect"
            )
        try:
            data = load_split(
                root,
                cfg.data.val_split,
                split_by=cfg.data.split_by,
                layout=cfg.data.layout,
                limit=cfg.train.val_limit_images or cfg.data.limit_images,
                on_corrupt=cfg.data.on_corrupt,
            )
        except FaapError as exc:
            raise ConfigError(
                f"validation split '{cfg.data.val_split}' cannot be read ({exc}); set data.val_split "
                "or train.val_every=0"
            ) from None
        return Validator(
            data,
            self.detector,
            self.device,
            disadvantaged=cfg.data.disadvantaged,
            advantaged=cfg.data.advantaged,
            min_size=cfg.data.min_size,
            max_size=cfg.data.max_size,
        )

    def build_loggers(self) -> ScalarLog:
        """The ``train.loggers`` writers (built on the main process only: the others never write)."""
        train = self.config.train
        loggers = []
        if self.dist.is_main:
            for name in train.loggers:
                spec = self.registries.loggers.get(name)
                loggers.append(spec.build(run_dir=self.run.path, **train.logger_options.get(name, {})))
        return ScalarLog(loggers, every=train.log_every, active=bool(train.loggers), dist=self.dist)

    def embedded_root(self) -> Path:
        """The embedded benchmark a run without ``data.root`` trains on: a resumed run's own (the
        one its manifest records), else the one the detector was trained on."""
        recorded = self.resumed_manifest.get("dataset", {}).get("root")
        return embedded_dataset_for(
            self.detector_spec(), self.config.detector.checkpoint, recorded=Path(recorded) if recorded else None
        )

    def detector_spec(self) -> DetectorSpec:
        """The registered detector the config names (its weights, batching and benchmark)."""
        return self.registries.detectors.get(self.config.detector.name)

    def build_detector(self) -> FrozenDetector:
        return load_detector(self.detector_spec(), self.config.detector.checkpoint, device=self.device)

    def fit(self) -> dict[str, Any]:
        """Train to ``train.epochs`` (or ``train.max_steps``); the loggers are closed however it ends."""
        try:
            return self._fit()
        finally:
            self.scalars.close()

    def _fit(self) -> dict[str, Any]:
        cfg = self.config
        st = self.state
        last_row: dict[str, Any] = {}
        reached_max = cfg.train.max_steps is not None and st.global_step >= cfg.train.max_steps
        while st.epoch < cfg.train.epochs and not reached_max:
            eps, lr, weights = self.epoch_values(st.epoch)
            self.generator.epsilon = eps
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.generator.train()
            if self.head is not None:
                self.head.train()
            self.sampler.set_epoch(st.epoch, st.position)
            if self.reporter:
                self.reporter.start_epoch(st.epoch, self.steps_per_epoch, st.position)
            start = time.perf_counter()
            for batch in self.loader:
                self.train_step(batch, weights)
                st.position += 1
                st.global_step += 1
                self.scalars.after_step(st.global_step, st.epoch, {"epsilon": eps, "lr": lr, **weights})
                if self.reporter:
                    self.reporter.step(st, eps, lr)
                if cfg.train.max_steps is not None and st.global_step >= cfg.train.max_steps:
                    reached_max = True
                    break
            st.seconds += time.perf_counter() - start
            if reached_max and st.position < self.steps_per_epoch:
                self._save(complete=False)
                break
            last_row = self._end_epoch(eps, lr, weights)
        if self.reporter:
            self.reporter.finish()
        return {"run": str(self.run.path), "epochs_done": st.epoch, "global_step": st.global_step, "last": last_row}

    def _end_epoch(self, eps: float, lr: float, weights: dict[str, float]) -> dict[str, Any]:
        st = self.state
        row = {
            "epoch": st.epoch,
            "steps": st.position,
            "epsilon": eps,
            "lr": lr,
            **weights,
            **{k: round(v, 6) for k, v in st.meters.means().items()},
            "skipped": sum(st.skips.values()),
            "skip_reasons": dict(st.skips),
            "nonfinite": st.nonfinite,
            "images_per_s": round(st.images / st.seconds, 2) if st.seconds > 0 else None,
        }
        last_epoch = st.epoch + 1 == self.config.train.epochs
        every = self.config.train.val_every
        if self.validator is not None and ((st.epoch + 1) % every == 0 or last_epoch):
            row["val"] = val = self.validator.score(self.generator)
            self.scalars.log_val(st.global_step, st.epoch, val, self.validator.baseline)
        if self.dist.is_main:
            self.run.write_epoch(row)
        payload = self._payload(complete=True)  # one state snapshot for every file written below
        if (st.epoch + 1) % self.config.train.save_every == 0 or last_epoch:
            self._save(complete=True, payload=payload)
        if self.dist.is_main:
            save_training_checkpoint(self.run.checkpoints / "last.pt", payload)
            if "val" in row:
                self._update_best(row, payload)
        if self.reporter:
            self.reporter.end_epoch(row)
        st.epoch += 1
        st.position = 0
        st.meters = Meters()
        st.skips = Counter()
        st.nonfinite = 0
        st.images = 0
        st.seconds = 0.0
        return row

    def _update_best(self, row: dict[str, Any], payload: dict[str, Any]) -> None:
        """Keep ``checkpoints/best.pt`` and ``selection.json`` at the epoch the val rule prefers."""
        assert self.validator is not None
        drop, rule = self.config.train.select_max_advantaged_drop, self.config.train.select_rule
        baseline = self.validator.baseline
        log = self.run.read_log()
        chosen = select_epoch(log, baseline["AP"][baseline["advantaged"]], drop, rule)
        selection = {
            "rule": RECORDED[rule],
            "description": describe_rule(drop, rule),
            "max_advantaged_drop": drop,
            "split": self.config.data.val_split,
            "val_baseline": baseline,
            "epoch": chosen["epoch"] if chosen else None,
            "val": chosen["val"] if chosen else None,
            "validated_epochs": [r["epoch"] for r in log if r.get("val")],
        }
        if chosen is not None and chosen["epoch"] == row["epoch"]:
            digest = save_training_checkpoint(self.run.checkpoints / "best.pt", {**payload, "selection": selection})
            selection["checkpoint_sha256"] = digest  # faap eval checks best.pt against it
        elif chosen is not None:  # best.pt stays the earlier epoch's: its recorded hash stays too
            selection["checkpoint_sha256"] = _kept_sha256(self.run.read_selection(), chosen["epoch"])
        else:
            selection["checkpoint_sha256"] = None
            (self.run.checkpoints / "best.pt").unlink(missing_ok=True)
        self.run.write_selection(selection)

    def train_step(self, batch: Any, weights: dict[str, float]) -> None:
        """One optimiser step (or a counted skip) on a collated batch; updates the epoch meters."""
        st = self.state
        batch = batch.to(self.device, non_blocking=True)
        groups = torch.where(batch.groups <= 1, batch.groups, torch.full_like(batch.groups, -1))
        reason = self.strategy.skip_reason(groups)
        if any_true(reason is not None, self.dist, self.device):
            st.skips[reason or "skipped on another rank"] += 1
            return
        inputs = self.loss_inputs(batch, groups, weights)
        extra = self.strategy.before_generator_step(inputs)
        out = self.strategy(inputs)
        if self._optimizer_step(out.total):
            self._record_step(inputs, out, extra)

    def loss_inputs(self, batch: Any, groups: Tensor, weights: dict[str, float]) -> LossInputs:
        """Perturb, jitter and detect once, and compute the batch's DETR set loss once (P12):
        everything the loss strategy reads. ``groups (B,)``: 0, 1, or -1 for any other group."""
        cfg, st = self.config, self.state
        images = batch.images
        if cfg.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast_for(self.device, cfg.train.amp):
            perturbed, delta = apply_perturbation(self.g_model, images, batch.mask)
            if cfg.train.augment != "none":
                gen = torch.Generator().manual_seed(
                    hash((cfg.train.seed, self.dist.rank, st.epoch, st.position)) % 2**63
                )
                perturbed = color_jitter(perturbed, batch.mask, cfg.train.augment, gen)
            outputs = self.detector(perturbed, batch.mask)
        detection, _, indices = self.detector.detection_loss(outputs, batch.targets)
        return LossInputs(
            outputs,
            batch.targets,
            groups,
            detection,
            indices,
            {"beta": 0.0, **weights},
            self.head_for_loss,
            delta=delta,
            epsilon=float(self.generator.epsilon),
            detection_of=lambda rows: self.detector.detection_loss(
                subset_outputs(outputs, rows), [batch.targets[i] for i in rows.tolist()]
            )[0],
        )

    def _optimizer_step(self, total: Tensor) -> bool:
        """Backward, clip and step; False (and counted) when the loss or gradient norm is not finite."""
        cfg, st = self.config, self.state
        # one host sync decides the step: a non-finite loss or gradient norm skips it (backward on a
        # NaN loss is harmless, its gradients are discarded)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            self.trainable_params, cfg.train.max_norm if cfg.train.max_norm > 0 else float("inf")
        )
        bad = not bool(torch.isfinite(total.detach()) & torch.isfinite(norm))
        if any_true(bad, self.dist, self.device):
            self.optimizer.zero_grad(set_to_none=True)
            st.nonfinite += 1
            st.skips["non-finite loss or gradient"] += 1
            if st.nonfinite > cfg.train.max_nonfinite:
                raise TrainingError(
                    f"{st.nonfinite} non-finite steps in epoch {st.epoch} (limit train.max_nonfinite="
                    f"{cfg.train.max_nonfinite}); the last good checkpoint is kept"
                )
            return False
        self.optimizer.step()
        broadcast_buffers(self.generator, self.dist)
        return True

    def _record_step(self, inputs: LossInputs, out: LossOutput, extra: dict[str, Any]) -> None:
        """The step's meters (epoch means) and logger window: losses, delta norms, group counts."""
        assert inputs.delta is not None
        groups = inputs.groups
        with torch.no_grad():
            flat = inputs.delta.detach().float().flatten(1)
            values = {
                "total": out.total.detach(),
                "loss_det": inputs.detection.detach(),
                "delta_linf": flat.abs().max(1).values.mean(),
                "delta_l2": flat.norm(dim=1).mean(),
                "n_dis": (groups == 0).sum(),
                "n_adv": (groups == 1).sum(),
                **extra,
                **{k: (v.detach() if torch.is_tensor(v) else v) for k, v in out.terms.items()},
            }
        tensors = {k: v for k, v in values.items() if torch.is_tensor(v)}
        numbers = torch.stack([v.float().reshape(()) for v in tensors.values()]).tolist()  # one host copy
        plain = {**values, **dict(zip(tensors, numbers, strict=True))}
        self.state.meters.update(plain)
        self.scalars.update(plain)
        self.state.images += len(groups)
