"""The parts a training run is built from, one overridable ``build_*`` step each: the train split
and its dataset, the group sampler and loader, the frozen detector, the generator, the version's
head and loss strategy, the optimiser, the DDP wrapping, the validator and the loggers; plus the
checks that refuse a run these parts could not train.

``Trainer`` (``faapkit/train/trainer.py``) derives from :class:`PartBuilders` and calls the steps in
the order the global RNG is drawn (``Trainer.setup``); a subclass or a benchmark overrides one step
to swap a part (``build_detector`` returning a given detector, say).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from faapkit.artifacts.rundir import RunDir
from faapkit.config import FaapConfig
from faapkit.data.batching import BalancedGroupSampler, ShapeBucketError, collate, loader_workers
from faapkit.data.coco import (
    DatasetSplit,
    GroupedDetectionDataset,
    has_split,
    load_split,
    require_groups,
    require_person_label,
)
from faapkit.data.synth import embedded_dataset_for
from faapkit.data.transforms import TrainTransform
from faapkit.detr.frozen import FrozenDetector, load_detector
from faapkit.distributed import DistInfo
from faapkit.errors import ConfigError, DataError, FaapError
from faapkit.losses.base import LossStrategy
from faapkit.plugins.registry import Registries
from faapkit.plugins.specs import DetectorSpec, VersionSpec
from faapkit.train.loggers import ScalarLog
from faapkit.train.validation import Validator


def param_groups(modules: list[nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and norm parameters (research P21)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for module in modules:
        for name, p in module.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class PartBuilders:
    """The ``build_*`` steps of :class:`faapkit.train.trainer.Trainer`; each reads the config and
    the parts built before it (the attributes below, set by ``Trainer.setup``)."""

    config: FaapConfig
    registries: Registries
    run: RunDir
    resume: bool
    version: VersionSpec
    resumed_manifest: dict[str, Any]
    notes: list[str]
    dist: DistInfo
    device: torch.device
    data: DatasetSplit
    dataset: GroupedDetectionDataset
    steps_per_epoch: int
    sampler: BalancedGroupSampler
    detector: FrozenDetector
    generator: Any
    head: nn.Module | None
    strategy: LossStrategy
    trainable_params: list[nn.Parameter]

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
            group_level=cfg.data.group_level,
            resize=[(scale, cfg.data.max_size) for scale in cfg.data.train_scales],
        )
        self._check_group_level(data)
        require_groups(data, [cfg.data.disadvantaged, cfg.data.advantaged])
        require_person_label(data, self.detector_spec().person_label, cfg.detector.name)
        return data

    def _check_group_level(self, data: DatasetSplit) -> None:
        """The version trains on the level of the data's groups (``VersionSpec.group_levels``)."""
        if data.group_level in self.version.group_levels:
            return
        versions = self.registries.versions.entries.values()
        able = sorted(v.name for v in versions if data.group_level in v.group_levels)
        why = "takes one group per image" if data.group_level == "box" else "takes each box's group"
        raise ConfigError(
            f"version '{self.version.name}' {why}, and split '{data.split}' of {data.root} has its "
            f"'{data.split_by}' groups on {'boxes' if data.group_level == 'box' else 'images'} "
            f"(data.group_level {data.group_level}); versions that train on them: {', '.join(able) or 'none'}"
        )

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
        batches of ``train.batch_size`` on every process. The groups are the sampler's pools
        (box level: a mixed image is in the disadvantaged pool only, see ``sampling_key``), so a
        mixed image counts once."""
        cfg = self.config
        pools = Counter(self.dataset.record_groups())
        draws = 2 * max(pools.get(0, 0), pools.get(1, 0))
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
        self._check_sampled(binary)
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

    def _check_sampled(self, binary: list[int]) -> None:
        """Both sampling keys have images. Image level: ``require_groups`` saw to it; box level, an
        image holding a disadvantaged box is drawn as disadvantaged, so the advantaged group needs
        images of advantaged people only (``faapkit.data.box_groups.sampling_key``)."""
        cfg = self.config
        for key, group, what in ((0, cfg.data.disadvantaged, "a box"), (1, cfg.data.advantaged, "only boxes")):
            if key not in binary:
                raise DataError(
                    f"no image of split '{self.data.split}' holds {what} of group '{group}', which the training "
                    f"sampler draws as the {('disadvantaged', 'advantaged')[key]} group (box-level groups: an image "
                    "holding a disadvantaged box is drawn as disadvantaged)"
                )

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

    def embedded_root(self) -> Path:
        """The embedded benchmark a run without ``data.root`` trains on: a resumed run's own (the
        one its manifest records), else the one ``data.benchmark`` names, else the one the
        detector was trained on."""
        recorded = self.resumed_manifest.get("dataset", {}).get("root")
        return embedded_dataset_for(
            self.detector_spec(),
            self.config.detector.checkpoint,
            recorded=Path(recorded) if recorded else None,
            benchmark=self.config.data.benchmark,
        )

    def detector_spec(self) -> DetectorSpec:
        """The registered detector the config names (its weights, batching and benchmark)."""
        return self.registries.detectors.get(self.config.detector.name)

    def build_detector(self) -> FrozenDetector:
        """The frozen detector; box-level groups are refused here, before any step, for a detector
        whose own loss cannot give one group's boxes' loss."""
        detector = load_detector(self.detector_spec(), self.config.detector.checkpoint, device=self.device)
        if self.data.group_level == "box" and detector.own_loss is not None:
            raise ConfigError(
                f"detector '{detector.name}' trains on its own loss, which cannot give one group's loss of "
                f"box-level groups ('{self.config.data.split_by}' is on each person's box); use image-level groups"
            )
        return detector

    def build_generator(self) -> Any:
        """The configured generator: an ``nn.Module`` with an assignable ``epsilon``."""
        options = dict(self.config.generator)
        spec = self.registries.generators.get(options.pop("name"))
        if self.config.train.compile and spec.name != "unet":
            raise ConfigError(f"train.compile supports the 'unet' generator only, not '{spec.name}'")
        generator = spec.build(epsilon=self._schedule("epsilon", 0), detector=self.detector, **options)
        return generator.to(self.device)  # type: ignore[no-any-return]

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
                group_level=cfg.data.group_level,
                resize=[self.detector.sizes(cfg.data.min_size, cfg.data.max_size)],
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
            resamples=cfg.train.val_bootstrap,
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

    def _schedule(self, role: str, epoch: int, default: float | None = None) -> float:
        section = dict(self.config.schedules.get(role, {}))
        if not section:
            if default is None:
                raise ConfigError(f"version '{self.config.version}' has no '{role}' schedule")
            return default
        spec = self.registries.schedules.get(section.pop("name"))
        return spec.value(epoch, self.config.train.epochs, section)

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
