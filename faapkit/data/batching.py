"""Batch collation with padding masks, balanced group sampling and shape-bucketed eval batches."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from faapkit.data.transforms import resized_hw
from faapkit.detr.misc import nested_tensor_from_tensor_list


@dataclass
class Batch:
    """``images (B,3,H,W)`` padded, ``mask (B,H,W)`` True on padding, ``groups (B,)`` group indices
    (-1 = none), ``targets`` DETR targets (normalised cxcywh boxes)."""

    images: Tensor
    mask: Tensor
    targets: list[dict[str, Tensor]]
    groups: Tensor

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        return Batch(
            self.images.to(device, non_blocking=non_blocking),
            self.mask.to(device, non_blocking=non_blocking),
            [{k: v.to(device, non_blocking=non_blocking) for k, v in t.items()} for t in self.targets],
            self.groups.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> Batch:
        return Batch(self.images.pin_memory(), self.mask.pin_memory(), self.targets, self.groups.pin_memory())


def collate(items: Sequence[tuple[Tensor, dict[str, Any], int]]) -> Batch:
    nested = nested_tensor_from_tensor_list([it[0] for it in items])
    return Batch(
        nested.tensors, nested.mask, [it[1] for it in items], torch.tensor([it[2] for it in items], dtype=torch.int64)
    )


class BalancedGroupSampler:
    """Yields batches of ``(index, sample_seed)``: each draw picks a group with probability
    ``weights[g]`` (equal by default), then an image of that group uniformly, with replacement
    (the research sampler's semantics). Fully determined by ``(seed, epoch)``; ``position`` (batches
    already consumed in this epoch) makes it resumable. Under DDP rank r takes every world-th batch.

    With ``shapes`` (each image's original ``(h, w)``) and ``scales``, batches are shape-bucketed:
    every batch first draws one original size (:func:`_shape_buckets`) and one training scale, and
    its images come from that size only, as ``(index, sample_seed, scale)``: they resize to one
    shape, so the detector never sees padding (as at evaluation, and as a detector trained
    unpadded expects)."""

    def __init__(
        self,
        groups: Sequence[int],
        *,
        batch_size: int,
        num_batches: int,
        seed: int,
        weights: Sequence[float] | None = None,
        rank: int = 0,
        world_size: int = 1,
        shapes: Sequence[tuple[int, int]] | None = None,
        scales: Sequence[int] | None = None,
    ) -> None:
        members: dict[int, list[int]] = {}
        for idx, g in enumerate(groups):
            if g >= 0:
                members.setdefault(g, []).append(idx)
        self.by_group: dict[int, Tensor] = {g: torch.tensor(v) for g, v in sorted(members.items())}
        n = len(self.by_group)
        w = torch.tensor(list(weights) if weights is not None else [1.0] * n, dtype=torch.float64)
        self.weights = w / w.sum()
        self.batch_size, self.num_batches, self.seed = batch_size, num_batches, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0
        self.buckets: tuple[Tensor, list[list[Tensor]]] | None = None
        self.stranded = 0  # images never drawn: their size is missing from a sampled group
        if shapes is not None:
            if not scales:
                raise ShapeBucketError("shape-bucketed batches need at least one training scale")
            sizes, pools, self.stranded = _shape_buckets(groups, shapes, self.weights)
            self.buckets = (sizes, pools)
        self.scales = list(scales or [])

    def set_epoch(self, epoch: int, position: int = 0) -> None:
        self.epoch, self.position = epoch, position

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def __len__(self) -> int:
        return self.num_batches

    def _epoch_draws(self) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        total = self.num_batches * self.world_size * self.batch_size
        group_keys = list(self.by_group)
        chosen = torch.multinomial(self.weights, total, replacement=True, generator=gen)
        u = torch.rand(total, generator=gen, dtype=torch.float64)
        indices = torch.empty(total, dtype=torch.int64)
        for k, g in enumerate(group_keys):
            sel = chosen == k
            indices[sel] = _pick(self.by_group[g], u[sel])
        seeds = torch.randint(0, 2**31 - 1, (total,), generator=gen)
        return indices, seeds

    def _bucketed_draws(self) -> tuple[Tensor, Tensor, Tensor]:
        """Like :meth:`_epoch_draws`, every batch's images from one original size, plus each
        batch's scale ``(num_batches * world_size,)``."""
        assert self.buckets is not None
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n_batches = self.num_batches * self.world_size
        total = n_batches * self.batch_size
        joint, members = self.buckets
        bucket = torch.multinomial(joint.sum(1), n_batches, replacement=True, generator=gen)
        scale = torch.randint(0, len(self.scales), (n_batches,), generator=gen)
        u = torch.rand(total, generator=gen, dtype=torch.float64)
        indices = torch.empty(total, dtype=torch.int64)
        slot_bucket = bucket.repeat_interleave(self.batch_size)
        for b in bucket.unique().tolist():
            in_b = slot_bucket == b
            chosen = torch.multinomial(joint[b], int(in_b.sum()), replacement=True, generator=gen)
            slots = in_b.nonzero().squeeze(1)
            for k, pool in enumerate(members[b]):
                sel = slots[chosen == k]
                if len(sel):
                    indices[sel] = _pick(pool, u[sel])
        seeds = torch.randint(0, 2**31 - 1, (total,), generator=gen)
        return indices, seeds, torch.tensor(self.scales)[scale]

    def __iter__(self) -> Iterator[list[tuple[int, ...]]]:
        scales: Tensor | None = None
        if self.buckets is None:
            indices, seeds = self._epoch_draws()
        else:
            indices, seeds, scales = self._bucketed_draws()
        bs = self.batch_size
        for b in range(self.position, self.num_batches):
            k = b * self.world_size + self.rank
            batch = zip(indices[k * bs : (k + 1) * bs].tolist(), seeds[k * bs : (k + 1) * bs].tolist(), strict=True)
            yield [(i, s) if scales is None else (i, s, int(scales[k])) for i, s in batch]


def _pick(pool: Tensor, u: Tensor) -> Tensor:
    """Members of ``pool (n,)`` chosen uniformly by ``u (m,)`` in [0, 1)."""
    return pool[(u * len(pool)).long().clamp(max=len(pool) - 1)]


class ShapeBucketError(ValueError):
    """The images cannot be drawn in shape-bucketed batches (see :func:`_shape_buckets`)."""


def _shape_buckets(
    groups: Sequence[int], shapes: Sequence[tuple[int, int]], weights: Tensor
) -> tuple[Tensor, list[list[Tensor]], int]:
    """Original sizes to draw batches from: ``(joint (S, K), members[s][k] (n,), stranded)``, ``k``
    over the sampler's groups in order. A size is drawn only if every sampled group (positive
    weight) has an image of it; ``stranded`` counts the sampled images of the other sizes, which
    are never drawn (the caller must say so). A batch draws its size with ``P(s) = sum_k
    joint[s, k]`` and each slot's group with ``joint[s, k] / P(s)``, so every drawn image's chance
    per slot is ``w_k / n_k``, as without buckets, however the groups' sizes differ."""
    keys = sorted({g for g in groups if g >= 0})
    by_shape: dict[tuple[int, int], dict[int, list[int]]] = {}
    for idx, (g, hw) in enumerate(zip(groups, shapes, strict=True)):
        if g >= 0:
            by_shape.setdefault((int(hw[0]), int(hw[1])), {}).setdefault(g, []).append(idx)
    w = dict(zip(keys, weights.tolist(), strict=True))
    sampled = [g for g in keys if w[g] > 0]
    drawn = {hw: pools for hw, pools in sorted(by_shape.items()) if all(pools.get(g) for g in sampled)}
    if not drawn:
        raise ShapeBucketError("no image size is shared by every sampled group, so no batch can be shape-bucketed")
    counts = {g: sum(len(pools[g]) for pools in drawn.values()) for g in sampled}
    stranded = sum(len(pools.get(g, [])) for hw, pools in by_shape.items() if hw not in drawn for g in sampled)
    # joint[s, k] = w_k n_ks / n_k: the chance that a slot is size s and group k
    joint = torch.tensor(
        [[w[g] * len(pools[g]) / counts[g] if g in counts else 0.0 for g in keys] for pools in drawn.values()],
        dtype=torch.float64,
    )
    members = [[torch.tensor(pools.get(g, [-1])) for g in keys] for pools in drawn.values()]
    return joint, members, stranded


def eval_batches(
    records: Sequence[Any], batch_size: int, min_size: int, max_size: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """Batches of images that share one resized shape, so no image is ever padded and the result of
    an image cannot depend on its batch-mates (research P4). Deterministic order; rank r of
    ``world_size`` gets every world-th batch."""
    buckets: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(records):
        buckets.setdefault(resized_hw(r.height, r.width, min_size, max_size), []).append(i)
    batches = [idx[j : j + batch_size] for _, idx in sorted(buckets.items()) for j in range(0, len(idx), batch_size)]
    return batches[rank::world_size]


def loader_workers(requested: int | None, device_type: str) -> int:
    """Data-loading processes: ``requested``, or 0 on CPU (workers would compete with the model
    for the cores) and up to 8 on CUDA (decoding must keep up with the GPU). Results never depend
    on it: every sample's randomness comes from the seed the sampler draws for it."""
    if requested is not None:
        return requested
    if device_type != "cuda":
        return 0
    return max(1, min(8, (os.cpu_count() or 2) // 2))
