"""torch.distributed helpers: torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; nccl on CUDA, gloo on CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from faapkit.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device_type: str) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(rank, world, local)


def check_device_available(name: str, key: str = "train.device") -> None:
    """``name`` is a device spelling faapkit knows (``faapkit.config.check_device``) and that
    device is on this machine; else a configuration error naming ``key`` (the option or config
    key it came from), before any work rather than as torch's own error later."""
    from faapkit.config import check_device

    check_device(name, key)
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{key} is '{name}' but CUDA is not available (use cpu or auto)")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{key} is '{name}' but this machine has {torch.cuda.device_count()} GPU(s)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key} is 'mps' but MPS is not available (use cpu or auto)")


def select_device(name: str, dist_info: DistInfo, key: str = "train.device") -> torch.device:
    """The device ``name`` (as given by ``key``) means for this process: ``auto`` is CUDA where
    there is one; under torchrun each process takes the GPU of its local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and dist_info.enabled:
        check_device_available("cuda", key)
        if dist_info.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"process {dist_info.local_rank} of {dist_info.world_size} has no GPU: this machine has "
                f"{torch.cuda.device_count()} (use at most that many processes per node, or device cpu)"
            )
        return torch.device("cuda", dist_info.local_rank)
    check_device_available(name, key)
    return torch.device(name)


def setup_process(device_name: str, key: str = "train.device") -> tuple[DistInfo, torch.device]:
    """Join the torchrun group if there is one and pick this process's device (``auto``, ``cpu``,
    ``cuda``, ``cuda:N``; ``key`` names where it was given). gloo unless CUDA is really there, so
    a missing GPU is reported by ``select_device`` as a configuration error rather than by nccl."""
    info = init_from_env("cuda" if device_name != "cpu" and torch.cuda.is_available() else "cpu")
    device = select_device(device_name, info, key)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return info, device


def any_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if it is true on any (keeps skip decisions in lockstep)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def average_gradients(params: Any, info: DistInfo) -> None:
    if not info.enabled:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= info.world_size


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank, so replicas are identical
    after every step and not only at the start of the next forward."""
    if info.enabled:
        for buffer in module.buffers():
            dist.broadcast(buffer, 0)


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
