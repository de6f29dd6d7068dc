"""Hugging Face ``DetrForObjectDetection`` weights as faapkit's DETR (upstream facebookresearch/detr keys).

A Hugging Face DETR checkpoint (``model.safetensors`` or ``pytorch_model.bin``) holds the same
network as upstream DETR under other names; :func:`hf_to_upstream` renames it, so the strict loader
(:func:`faapkit.detr.build.load_state_strict`) checks it against the registered architecture like
any upstream checkpoint. It is told apart from an upstream state dict by its keys
(:func:`is_hf_detr`), never by the file name. The layouts read:

* transformer: ``model.{encoder,decoder}.layers.N.*`` with split ``q_proj``/``k_proj``/``v_proj``
  (each ``(D, D)`` weight, ``(D,)`` bias), fused here into ``nn.MultiheadAttention``'s
  ``in_proj_weight (3D, D)`` / ``in_proj_bias (3D,)`` in q, k, v order; ``out_proj`` (files and
  transformers < 5 in memory) or ``o_proj`` (transformers >= 5 in memory); ``fc1``/``fc2`` or
  ``mlp.fc1``/``mlp.fc2``; ``model.decoder.layernorm`` is the decoder's shared final norm;
* heads: ``class_labels_classifier`` (``class_embed``, ``(C+1, D)``), ``bbox_predictor.layers.0-2``
  (``bbox_embed``), ``model.query_position_embeddings`` (``query_embed``, ``(Q, D)``),
  ``model.input_projection`` (``input_proj``, a 1x1 conv ``(D, C_backbone, 1, 1)``);
* backbone under ``model.backbone.conv_encoder.model.`` (files) or ``model.backbone.model.`` (in
  memory), either timm's ResNet (``conv1``, ``bn1``, ``layerN.M.{convK,bnK,downsample.0/1}``:
  torchvision's names already) or transformers' own ``ResNetBackbone`` (``embedder.embedder.*``,
  ``encoder.stages.S.layers.B.{layer.J,shortcut}.{convolution,normalization}``); its frozen batch
  norms keep their four buffers, ``num_batches_tracked`` is dropped.

Anything else (a learned position embedding, a segmentation head, a timm ResNet with another stem)
has no counterpart and is refused, naming the file and the key. ``config.json`` beside the weights,
when there is one, is checked for settings that would change what the same weights compute
(:func:`check_hf_config`): those are not visible in the keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from faapkit.errors import CheckpointError

# keys only a Hugging Face DetrForObjectDetection has (upstream: class_embed, query_embed, input_proj)
HF_MARKERS = ("class_labels_classifier.", "bbox_predictor.", "model.query_position_embeddings.")
BN_FIELDS = "weight|bias|running_mean|running_var"

# transformers >= 5 names in memory -> the names its files (and transformers < 5) use
_NORMALISE = (
    (re.compile(r"^model\.backbone\.model\."), "model.backbone.conv_encoder.model."),
    (re.compile(r"\.o_proj\."), ".out_proj."),
    (re.compile(r"\.mlp\.(fc[12])\."), r".\1."),
)

# per layer: Hugging Face sub-module -> upstream sub-module
_ENCODER = {
    "self_attn.out_proj": "self_attn.out_proj",
    "self_attn_layer_norm": "norm1",
    "fc1": "linear1",
    "fc2": "linear2",
    "final_layer_norm": "norm2",
}
_DECODER = {
    "self_attn.out_proj": "self_attn.out_proj",
    "self_attn_layer_norm": "norm1",
    "encoder_attn.out_proj": "multihead_attn.out_proj",
    "encoder_attn_layer_norm": "norm2",
    "fc1": "linear1",
    "fc2": "linear2",
    "final_layer_norm": "norm3",
}
_ATTN = {"self_attn": "self_attn", "encoder_attn": "multihead_attn"}

_LAYER = re.compile(r"model\.(encoder|decoder)\.layers\.(\d+)\.(.+)\.(weight|bias)")
_QKV = re.compile(r"(self_attn|encoder_attn)\.([qkv])_proj")
_HEADS = (
    (re.compile(r"class_labels_classifier\.(weight|bias)"), r"class_embed.\1"),
    (re.compile(r"bbox_predictor\.layers\.([0-2])\.(weight|bias)"), r"bbox_embed.layers.\1.\2"),
    (re.compile(r"model\.query_position_embeddings\.weight"), "query_embed.weight"),
    (re.compile(r"model\.input_projection\.(weight|bias)"), r"input_proj.\1"),
    (re.compile(r"model\.decoder\.layernorm\.(weight|bias)"), r"transformer.decoder.norm.\1"),
)
_BACKBONE = "model.backbone.conv_encoder.model."
_TIMM = re.compile(rf"(conv1\.weight|bn1\.({BN_FIELDS})|layer[1-4]\.\d+\.(conv[1-3]\.weight|bn[1-3]\.({BN_FIELDS})"
                   rf"|downsample\.0\.weight|downsample\.1\.({BN_FIELDS})))")  # fmt: skip
_STEM = re.compile(rf"embedder\.embedder\.(convolution\.weight|normalization\.({BN_FIELDS}))")
_STAGE = re.compile(rf"encoder\.stages\.(\d+)\.layers\.(\d+)\.(layer\.(\d+)|shortcut)\.(convolution|normalization)\."
                    rf"({BN_FIELDS})")  # fmt: skip


def is_hf_detr(keys: Any) -> bool:
    """Whether a state dict's keys are a Hugging Face ``DetrForObjectDetection``'s."""
    return any(str(k).startswith(HF_MARKERS) for k in keys)


def read_safetensors(path: Path) -> dict[str, Tensor]:
    """Every tensor of a ``.safetensors`` file, on the CPU; an unreadable file is one error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path), device="cpu"))
    except (SafetensorError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise CheckpointError(f"cannot read safetensors file {path}: {reason}") from None


class HFState(dict[str, Tensor]):
    """:func:`hf_to_upstream`'s state dict: upstream keys -> tensors, knowing how the file names
    each key (``file_keys``, and for a key the file lacks, the name the file would give it), so
    that the strict loader's errors name the key a user can find in the file."""

    def __init__(self, tensors: Mapping[str, Tensor], file_keys: Mapping[str, str], native_backbone: bool) -> None:
        super().__init__(tensors)
        self.file_keys = dict(file_keys)
        self.native_backbone = native_backbone

    def as_in_file(self, key: str) -> str:
        """``key`` (upstream) as the file names it, the upstream key in parentheses."""
        named = self.file_keys.get(key) or upstream_to_hf(key, self.native_backbone)
        return key if named is None else f"{named} ({key})"


def hf_to_upstream(state: Mapping[str, Tensor], origin: str) -> HFState:
    """A Hugging Face DETR state dict under upstream DETR's keys (see the module docstring);
    ``origin`` names the file in the error an unmappable key raises."""
    out: dict[str, Tensor] = {}
    file_keys: dict[str, str] = {}
    split: dict[str, dict[str, Tensor]] = {}  # upstream attention prefix -> {"q.weight": ..., ...}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue  # a frozen batch norm has none; upstream's loader drops it too
        name = _normalised(key)
        qkv = _split_projection(name)
        if qkv is not None:
            split.setdefault(qkv[0], {})[qkv[1]] = value
            kind = qkv[1].split(".")[1]
            file_keys[f"{qkv[0]}.in_proj_{kind}"] = re.sub(r"\.[qkv]_proj\.", ".{q,k,v}_proj.", key)
            continue
        mapped = _transformer_key(name) or _head_key(name) or _backbone_key(name)
        if mapped is None:
            raise CheckpointError(f"{origin}: key '{key}' of a Hugging Face DETR has no counterpart in faapkit's DETR")
        out[mapped] = value
        file_keys[mapped] = key
    for prefix, parts in split.items():
        out.update(_fused(prefix, parts, origin, file_keys))
    native = any(".embedder.embedder." in k or ".encoder.stages." in k for k in state)
    return HFState(out, file_keys, native)


def _normalised(key: str) -> str:
    for pattern, repl in _NORMALISE:
        key = pattern.sub(repl, key)
    return key


def _split_projection(name: str) -> tuple[str, str] | None:
    """``model.encoder.layers.0.self_attn.q_proj.weight`` ->
    (``transformer.encoder.layers.0.self_attn``, ``q.weight``); None for any other key."""
    m = _LAYER.fullmatch(name)
    qkv = _QKV.fullmatch(m.group(3)) if m else None
    if m is None or qkv is None:
        return None
    return f"transformer.{m.group(1)}.layers.{m.group(2)}.{_ATTN[qkv.group(1)]}", f"{qkv.group(2)}.{m.group(4)}"


def _fused(prefix: str, parts: dict[str, Tensor], origin: str, file_keys: Mapping[str, str]) -> dict[str, Tensor]:
    """q, k, v projections ``(D, D)`` / ``(D,)`` -> ``in_proj_weight (3D, D)`` / ``in_proj_bias (3D,)``."""
    out = {}
    for kind in ("weight", "bias"):
        missing = [p for p in "qkv" if f"{p}.{kind}" not in parts]
        if missing:
            known = next(iter(v for k, v in file_keys.items() if k.startswith(f"{prefix}.in_proj_")))
            named = known.replace("{q,k,v}_proj.weight", f"{missing[0]}_proj.{kind}").replace(
                "{q,k,v}_proj.bias", f"{missing[0]}_proj.{kind}"
            )
            raise CheckpointError(
                f"{origin}: no key '{named}' to go with the other projections ({prefix}.in_proj_{kind})"
            )
        out[f"{prefix}.in_proj_{kind}"] = torch.cat([parts[f"{p}.{kind}"] for p in "qkv"], dim=0)
    return out


def _transformer_key(name: str) -> str | None:
    m = _LAYER.fullmatch(name)
    if m is None:
        return None
    sub = (_ENCODER if m.group(1) == "encoder" else _DECODER).get(m.group(3))
    return None if sub is None else f"transformer.{m.group(1)}.layers.{m.group(2)}.{sub}.{m.group(4)}"


def _head_key(name: str) -> str | None:
    for pattern, repl in _HEADS:
        if pattern.fullmatch(name):
            return pattern.sub(repl, name)
    return None


def _backbone_key(name: str) -> str | None:
    """A ResNet key of either layout as torchvision's (``backbone.0.body.*``)."""
    if not name.startswith(_BACKBONE):
        return None
    rest = name[len(_BACKBONE) :]
    if _TIMM.fullmatch(rest):
        return f"backbone.0.body.{rest}"
    stem = _STEM.fullmatch(rest)
    if stem:
        return "backbone.0.body." + (
            "conv1.weight" if stem.group(1) == "convolution.weight" else f"bn1.{stem.group(2)}"
        )
    m = _STAGE.fullmatch(rest)
    if m is None or (m.group(5) == "convolution" and m.group(6) != "weight"):
        return None  # a convolution has a weight only (no bias, no statistics)
    stage, block, conv, kind, field = m.group(1), m.group(2), m.group(4), m.group(5), m.group(6)
    prefix = f"backbone.0.body.layer{int(stage) + 1}.{block}."
    if conv is None:  # the shortcut: a 1x1 conv and its norm, torchvision's downsample.0 / .1
        return prefix + ("downsample.0.weight" if kind == "convolution" else f"downsample.1.{field}")
    return prefix + (f"conv{int(conv) + 1}.weight" if kind == "convolution" else f"bn{int(conv) + 1}.{field}")


def upstream_to_hf(key: str, native_backbone: bool = False) -> str | None:
    """The key a Hugging Face DETR file gives upstream ``key`` (the hub's names; the backbone in
    transformers' own layout when ``native_backbone``, else timm's); ``None`` for none. A fused
    projection is named ``...{q,k,v}_proj.weight``."""
    m = _IN_PROJ.fullmatch(key)
    if m:
        attn = {v: k for k, v in _ATTN.items()}[m.group(3)]
        return f"model.{m.group(1)}.layers.{m.group(2)}.{attn}.{{q,k,v}}_proj.{m.group(4)}"
    m = re.fullmatch(r"transformer\.(encoder|decoder)\.layers\.(\d+)\.(.+)\.(weight|bias)", key)
    if m:
        inverse = {v: k for k, v in (_ENCODER if m.group(1) == "encoder" else _DECODER).items()}
        sub = inverse.get(m.group(3))
        return None if sub is None else f"model.{m.group(1)}.layers.{m.group(2)}.{sub}.{m.group(4)}"
    for upstream, hf in _HEADS_INVERSE:
        if upstream.fullmatch(key):
            return upstream.sub(hf, key)
    if key.startswith("backbone.0.body."):
        rest = key[len("backbone.0.body.") :]
        return _BACKBONE + (_native_backbone_key(rest) if native_backbone else rest)
    return None


_IN_PROJ = re.compile(
    r"transformer\.(encoder|decoder)\.layers\.(\d+)\.(self_attn|multihead_attn)\.in_proj_(weight|bias)"
)
_HEADS_INVERSE = (
    (re.compile(r"class_embed\.(weight|bias)"), r"class_labels_classifier.\1"),
    (re.compile(r"bbox_embed\.layers\.([0-2])\.(weight|bias)"), r"bbox_predictor.layers.\1.\2"),
    (re.compile(r"query_embed\.weight"), "model.query_position_embeddings.weight"),
    (re.compile(r"input_proj\.(weight|bias)"), r"model.input_projection.\1"),
    (re.compile(r"transformer\.decoder\.norm\.(weight|bias)"), r"model.decoder.layernorm.\1"),
)


def _native_backbone_key(rest: str) -> str:
    """A torchvision ResNet key (``layer1.0.conv2.weight``) as transformers' ``ResNetBackbone`` names it."""
    if rest == "conv1.weight":
        return "embedder.embedder.convolution.weight"
    if rest.startswith("bn1."):
        return f"embedder.embedder.normalization.{rest[4:]}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(conv|bn)(\d)\.(\w+)", rest)
    if m:
        kind = "convolution" if m.group(3) == "conv" else "normalization"
        stage, conv = int(m.group(1)) - 1, int(m.group(4)) - 1
        return f"encoder.stages.{stage}.layers.{m.group(2)}.layer.{conv}.{kind}.{m.group(5)}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.downsample\.([01])\.(\w+)", rest)
    if m:
        kind = "convolution" if m.group(3) == "0" else "normalization"
        return f"encoder.stages.{int(m.group(1)) - 1}.layers.{m.group(2)}.shortcut.{kind}.{m.group(4)}"
    return rest


# config.json settings that the keys do not show, and the value faapkit's DETR computes with
_SAME_COMPUTATION = {
    "activation_function": "relu",
    "position_embedding_type": "sine",
    "backbone_config.downsample_in_bottleneck": False,  # True: the stride sits in the first 1x1 conv
    "backbone_config.downsample_in_first_stage": False,
    "backbone_config.hidden_act": "relu",
}


def check_hf_config(weights: Path, arch: Mapping[str, Any]) -> None:
    """Refuse Hugging Face weights whose ``config.json`` (beside them, when there is one) asks
    for a computation faapkit's DETR of ``arch`` does not do: the same tensors would then give
    other detections, silently. Shapes are checked by the strict loader, not here."""
    path = weights.parent / "config.json"
    if not path.is_file():
        return
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} (beside {weights.name}) is not readable JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("model_type") != "detr":
        return  # not a DETR's configuration: nothing it says is about these weights
    expected = {**_SAME_COMPUTATION, "dilation": bool(arch.get("dilation", False))}
    for dotted, want in expected.items():
        got = _lookup(config, dotted)
        if got is not None and got != want:
            raise CheckpointError(
                f"{path}: '{dotted}' is {json.dumps(got)}, but faapkit's DETR computes with {json.dumps(want)}; "
                f"the weights in {weights.name} would give other detections"
            )


def _lookup(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node
