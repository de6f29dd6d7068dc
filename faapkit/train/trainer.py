"""The training engine: one loop for every method version (no version-specific branches).

Per step: perturb the valid region with the generator, jitter colours (batched), run the frozen
detector once, compute the DETR set loss once, hand both to the version's loss strategy, then
clip and step. Schedules are evaluated per epoch by role: ``epsilon`` sets the generator bound,
``lr`` scales ``train.lr``, every other role is passed to the strategy as a weight (``beta``, ...).

The parts are built by the ``build_*`` steps of :mod:`faapkit.train.parts`; what the run may do
with its folder is :mod:`faapkit.train.runfolder`, continuing from a checkpoint
:mod:`faapkit.train.resume`, keeping ``best.pt`` :mod:`faapkit.train.best`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from faapkit.artifacts.checkpoint import FORMAT, save_training_checkpoint
from faapkit.artifacts.rundir import RunDir
from faapkit.config import FaapConfig
from faapkit.detr.frozen import FrozenDetector
from faapkit.distributed import any_true, barrier, broadcast_buffers, setup_process
from faapkit.errors import TrainingError
from faapkit.evaluate.coco_backend import check_backend
from faapkit.evaluate.inference import autocast_for
from faapkit.generators.perturb import apply_perturbation, compile_generator
from faapkit.losses.base import LossInputs, LossOutput, LossStrategy
from faapkit.plugins.registry import Registries
from faapkit.train import resume
from faapkit.train.augment import color_jitter
from faapkit.train.best import update_best
from faapkit.train.loggers import ScalarLog
from faapkit.train.parts import PartBuilders
from faapkit.train.runfolder import open_run_folder, run_manifest, start_fresh
from faapkit.train.state import EpochState, restore_rng, rng_state, seed_everything


def subset_outputs(outputs: dict[str, Any], rows: torch.Tensor) -> dict[str, Any]:
    """What the detection loss reads of batch rows ``rows``: every batch-first tensor of
    ``outputs`` (a DETR's final layer, a detector's own-loss images and mask) and, where there
    are any, the auxiliary decoder layers'."""
    picked: dict[str, Any] = {k: v[rows] for k, v in outputs.items() if torch.is_tensor(v)}
    picked["aux_outputs"] = [{k: v[rows] for k, v in aux.items()} for aux in outputs.get("aux_outputs") or []]
    return picked


class Trainer(PartBuilders):
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
        # the run's evaluation needs its COCO backend: refused now, not once training has ended
        check_backend(cfg.eval.coco_backend, "the run's eval.coco_backend, which its evaluation will use")
        self.dist, self.device = setup_process(cfg.train.device)
        seed_everything(cfg.train.seed + self.dist.rank)
        self.scalars: ScalarLog = self.build_loggers()  # first: a missing logger package is refused before any write
        try:
            self.resumed_manifest = open_run_folder(self.run, cfg, resume=self.resume, is_main=self.dist.is_main)
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
            start_fresh(self.run, self._manifest())
        self.scalars.open(self.state.global_step)
        barrier(self.dist)

    @property
    def run_id(self) -> str:
        """Identifies this run in its checkpoints (a checkpoint copied from another run is refused)."""
        if not self._run_id:
            self._run_id = self.resumed_manifest.get("run_id") or uuid.uuid4().hex[:16]
        return self._run_id

    def _manifest(self) -> dict[str, Any]:
        return run_manifest(
            self.config,
            run_id=self.run_id,
            providers=self.providers,
            world_size=self.dist.world_size,
            data=self.data,
            detector=self.detector,
            steps_per_epoch=self.steps_per_epoch,
        )

    def epoch_values(self, epoch: int) -> tuple[float, float, dict[str, float]]:
        """``(epsilon, lr, weights)`` of ``epoch``: the schedules evaluated by role."""
        eps = self._schedule("epsilon", epoch)
        lr = self.config.train.lr * self._schedule("lr", epoch, 1.0)
        weights = {role: self._schedule(role, epoch) for role in self.config.schedules if role not in ("epsilon", "lr")}
        return eps, lr, weights

    # ------------------------------------------------------------------ checkpoints
    def _payload(self, complete: bool) -> dict[str, Any]:
        """What a checkpoint holds (read back by :mod:`faapkit.train.resume` and ``faap eval``)."""
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
        """Continue from the run's latest checkpoint: parts, then RNG, then position (this order)."""
        path, ckpt = resume.latest(self.run, self.notes)
        resume.check_resumable(
            ckpt,
            path,
            config=self.config,
            manifest=self.resumed_manifest,
            detector_sha256=self.detector.sha256,
            data_fingerprint=self.data.fingerprint,
        )
        resume.load_parts(
            ckpt, path, generator=self.generator, head=self.head, optimizer=self.optimizer, strategy=self.strategy
        )
        restore_rng(ckpt.rng)
        resume.restore_position(ckpt, self.state)
        self.scalars.load_window(ckpt.log_window)
        if self.dist.is_main:
            self.run.truncate_log(self.state.epoch)
            self.run.remove_partial_writes()

    # ------------------------------------------------------------------ loop
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
        stopped = None
        if st.epoch < cfg.train.epochs:  # train.max_steps ended it first: where, for the way on
            stopped = {"epoch": st.epoch, "step": st.position, "steps_per_epoch": self.steps_per_epoch}
        return {
            "run": str(self.run.path),
            "epochs_done": st.epoch,
            "global_step": st.global_step,
            "last": last_row,
            "stopped": stopped,
        }

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
            if self.reporter:
                reporter, epoch = self.reporter, st.epoch
                self.validator.progress = lambda done, total: reporter.validating(epoch, done, total)
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
                assert self.validator is not None
                update_best(self.run, self.config, self.validator.baseline, row, payload)
        if self.reporter:
            self.reporter.end_epoch(row)
        st.next_epoch()
        return row

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
            outputs = self.detector.loss_outputs(perturbed, batch.mask)
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
            detection_of=self._detection_of(outputs, batch.targets),
            images=images,
            mask=batch.mask,
            detection_on=self._detection_on(batch.mask, batch.targets),
            generator=self.generator,
        )

    def _rows_loss(
        self, outputs: dict[str, Any], targets: list[dict[str, Tensor]], rows: Tensor, group: int | None
    ) -> Tensor:
        """The DETR set loss of ``outputs`` (batch rows ``rows``, in order) against those rows'
        targets, of the boxes of ``group`` only when one is given (``targets[i]["groups"]``)."""
        picked = [targets[i] for i in rows.tolist()]
        counted = None if group is None else [t["groups"] == group for t in picked]
        return self.detector.detection_loss(outputs, picked, counted)[0]

    def _detection_of(self, outputs: dict[str, Any], targets: list[dict[str, Tensor]]) -> Callable[..., Tensor]:
        """``LossInputs.detection_of``: the DETR set loss of batch rows ``rows`` of this step's
        forward, of the boxes of ``group`` only when one is given (box-level data)."""

        def detection_of(rows: Tensor, group: int | None = None) -> Tensor:
            return self._rows_loss(subset_outputs(outputs, rows), targets, rows, group)

        return detection_of

    def _detection_on(self, mask: Tensor, targets: list[dict[str, Tensor]]) -> Callable[..., Tensor]:
        """``LossInputs.detection_on``: a new forward of the frozen detector on ``images (n, 3, H, W)``
        standing for batch rows ``rows (n,)``, and their set loss (of ``group``'s boxes when given)."""

        def detection_on(images: Tensor, rows: Tensor, group: int | None = None) -> Tensor:
            with autocast_for(self.device, self.config.train.amp):
                outputs = self.detector.loss_outputs(images, mask[rows])
            return self._rows_loss(outputs, targets, rows, group)

        return detection_on

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
