"""Build DETR models from registered architecture records and load checkpoints strictly."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from faapkit.detr.backbone import Backbone, Joiner
from faapkit.detr.criterion import SetCriterion
from faapkit.detr.detr import DETR, PostProcess
from faapkit.detr.hf import check_hf_config, hf_to_upstream, is_hf_detr, read_safetensors
from faapkit.detr.matcher import HungarianMatcher
from faapkit.detr.position_encoding import PositionEmbeddingSine
from faapkit.detr.transformer import Transformer
from faapkit.errors import CheckpointError
from faapkit.io import is_safetensors, load_checkpoint
from faapkit.plugins.specs import DetectorParts

if TYPE_CHECKING:
    from faapkit.plugins.specs import DetectorSpec


def build_detr(
    *,
    backbone: str,
    hidden_dim: int,
    nheads: int,
    enc_layers: int,
    dec_layers: int,
    dim_feedforward: int,
    num_queries: int,
    num_classes: int,
    dilation: bool = False,
    dropout: float = 0.1,
    aux_loss: bool = True,
    eos_coef: float = 0.1,
) -> tuple[DETR, SetCriterion, PostProcess]:
    """Upstream ``build_model`` for the detection-only case, with no pretrained download."""
    joiner = Joiner(Backbone(backbone, dilation), PositionEmbeddingSine(hidden_dim // 2, normalize=True))
    transformer = Transformer(hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, dropout)
    model = DETR(joiner, transformer, num_classes=num_classes, num_queries=num_queries, aux_loss=aux_loss)
    criterion = SetCriterion(num_classes, HungarianMatcher(1, 5, 2), eos_coef=eos_coef)
    return model, criterion, PostProcess()


def detr_parts(
    *,
    backbone: str,
    hidden_dim: int,
    nheads: int,
    enc_layers: int,
    dec_layers: int,
    dim_feedforward: int,
    num_queries: int,
    num_classes: int,
    dilation: bool = False,
    dropout: float = 0.1,
    aux_loss: bool = True,
    eos_coef: float = 0.1,
) -> DetectorParts:
    """The factory of the built-in detectors: :func:`build_detr` as :class:`DetectorParts`. Its
    signature is the arch a ``DetectorSpec`` may hold (checked before anything is built)."""
    model, criterion, post = build_detr(
        backbone=backbone,
        hidden_dim=hidden_dim,
        nheads=nheads,
        enc_layers=enc_layers,
        dec_layers=dec_layers,
        dim_feedforward=dim_feedforward,
        num_queries=num_queries,
        num_classes=num_classes,
        dilation=dilation,
        dropout=dropout,
        aux_loss=aux_loss,
        eos_coef=eos_coef,
    )
    return DetectorParts(
        model=model,
        criterion=criterion,
        postprocess=post,
        num_queries=model.num_queries,
        num_classes=model.num_classes,
        feature_dim=model.transformer.d_model,
    )


def packaged_path(ref: str) -> Path:
    """``"package:relative/path"`` -> a filesystem path of package data."""
    package, _, rel = ref.partition(":")
    return Path(str(resources.files(package).joinpath(rel)))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path, arch: Mapping[str, Any] | None = None) -> dict[str, Tensor]:
    """A DETR state dict under upstream keys: an upstream checkpoint (``{"model": sd}`` or a bare
    state dict, read with ``weights_only=True``), or Hugging Face ``DetrForObjectDetection``
    weights (``model.safetensors``, ``pytorch_model.bin``), told apart by their keys and renamed
    by :mod:`faapkit.detr.hf`. ``arch``: the architecture they are for, checked against the
    ``config.json`` beside Hugging Face weights."""
    if path.is_file() and is_safetensors(path):
        state: Any = read_safetensors(path)
    else:
        obj = load_checkpoint(path)
        state = obj.get("model", obj)
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a DETR checkpoint: expected a state dict or {{'model': state_dict}}")
    if is_hf_detr(state):
        check_hf_config(path, arch or {})
        return hf_to_upstream(state, str(path))
    return dict(state)


def load_state_strict(
    model: torch.nn.Module, state: Mapping[str, Tensor], *, what: str, origin: Path | None = None
) -> None:
    """Load exactly: every key present, no extra key, every shape equal; otherwise one clear error
    (naming ``origin``, the file the state came from, when given)."""
    own = model.state_dict()
    named = getattr(state, "as_in_file", str)  # a renamed (Hugging Face) state names keys as its file does
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own and not k.endswith("num_batches_tracked")]
    mismatched = [
        f"{named(k)} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {named(missing[0])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {named(unexpected[0])})")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches (e.g. {mismatched[0]})")
        where = f"{origin}: " if origin is not None else ""
        raise CheckpointError(f"{where}checkpoint does not fit {what}: " + ", ".join(parts))
    model.load_state_dict(state, strict=False)  # strictness enforced above; num_batches_tracked tolerated


def _module_group(key: str) -> str:
    """``backbone.0.body.layer1...`` -> ``backbone.0.body``; ``transformer.encoder...`` -> ``transformer.encoder``."""
    parts = key.split(".")
    depth = {"backbone": 3, "transformer": 2}.get(parts[0], 1)
    return ".".join(parts[:depth])


def describe_detector(spec: DetectorSpec) -> dict[str, Any]:
    """Parameter counts per top-level module and the key layout, without loading weights."""
    model = spec.build().model
    state = model.state_dict()
    groups: dict[str, dict[str, int]] = {}
    for key in state:
        groups.setdefault(_module_group(key), {"params": 0, "keys": 0})["keys"] += 1
    for name, p in model.named_parameters():
        groups[_module_group(name)]["params"] += p.numel()
    weights = None
    if spec.weights:
        path = packaged_path(spec.weights)
        weights = str(path) if path.is_file() else f"{spec.weights} (missing)"
    return {
        "name": spec.name,
        "arch": dict(spec.arch),
        "num_params": sum(p.numel() for p in model.parameters()),
        "num_buffers": sum(b.numel() for b in model.buffers()),
        "num_keys": len(state),
        "groups": [{"prefix": k, **v} for k, v in groups.items()],
        "keys": [[k, list(v.shape)] for k, v in state.items()],
        "weights": weights,
        "trained_unpadded": spec.trained_unpadded,
        "input_size": {"min_size": spec.min_size, "max_size": spec.max_size, "train_scales": list(spec.train_scales)},
    }
