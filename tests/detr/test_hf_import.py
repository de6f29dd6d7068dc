"""Hugging Face ``DetrForObjectDetection`` weights load into faapkit's DETR and compute the same
detections (``faapkit/detr/hf.py``).

The parity tests build a small, randomly initialised ``transformers`` DETR in code (nothing is
downloaded: ``HF_HUB_OFFLINE=1``, no pretrained backbone), save it as the hub does
(``model.safetensors`` beside ``config.json``), as a ``pytorch_model.bin`` of the same keys, and
as transformers >= 5 names the weights in memory, then load each through
:func:`faapkit.detr.frozen.load_detector` into a ``DetectorSpec`` of the same architecture and
compare logits and boxes on a padded batch. They skip only where ``transformers`` (or, for the timm
backbone, ``timm``) is not installed; CI installs both (the ``hf`` extra)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from faapkit.detr.build import read_state_dict
from faapkit.detr.frozen import load_detector
from faapkit.detr.hf import hf_to_upstream, is_hf_detr, upstream_to_hf
from faapkit.errors import CheckpointError
from faapkit.io import checkpoint_training, is_safetensors
from faapkit.plugins.specs import DetectorSpec

# the architecture both sides are built with (a small ResNet-18 DETR)
ARCH = {
    "backbone": "resnet18",
    "hidden_dim": 64,
    "nheads": 4,
    "enc_layers": 2,
    "dec_layers": 2,
    "dim_feedforward": 128,
    "num_queries": 6,
    "num_classes": 7,
    "dilation": False,
}
SPEC = DetectorSpec(name="hf-small", factory="faapkit.detr.build:detr_parts", arch=ARCH)


def _transformers():
    """The ``transformers`` module, offline; the test skips only when it is not installed."""
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers is not installed (pip install 'faapkit[hf]')")
    os.environ["HF_HUB_OFFLINE"] = "1"  # read at import: nothing may be fetched
    import transformers

    return transformers


def _hf_detr(backbone: str):
    """A random ``DetrForObjectDetection`` of :data:`ARCH` with a ``timm`` or a transformers-native
    ResNet-18, its frozen batch norms given non-trivial statistics (so a mix-up would show)."""
    tf = _transformers()
    common = {
        "d_model": ARCH["hidden_dim"],
        "encoder_layers": ARCH["enc_layers"],
        "decoder_layers": ARCH["dec_layers"],
        "encoder_attention_heads": ARCH["nheads"],
        "decoder_attention_heads": ARCH["nheads"],
        "encoder_ffn_dim": ARCH["dim_feedforward"],
        "decoder_ffn_dim": ARCH["dim_feedforward"],
        "num_queries": ARCH["num_queries"],
        "num_labels": ARCH["num_classes"],
        "use_pretrained_backbone": False,
    }
    if backbone == "timm":
        if importlib.util.find_spec("timm") is None:
            pytest.skip("timm is not installed (pip install 'faapkit[hf]')")
        config = tf.DetrConfig(use_timm_backbone=True, backbone="resnet18", **common)
    else:
        resnet18 = tf.ResNetConfig(
            depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], layer_type="basic", out_features=["stage4"]
        )
        config = tf.DetrConfig(use_timm_backbone=False, backbone=None, backbone_config=resnet18, **common)
    torch.manual_seed(0)
    model = tf.DetrForObjectDetection(config).eval()
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
            elif name.endswith(("running_mean", ".bias")):
                buf.normal_(0.0, 0.1)
            elif name.endswith(".weight"):
                buf.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module", params=["timm", "native"])
def saved(request, tmp_path_factory):
    """``(model, {layout: weights file})`` for one backbone layout."""
    model = _hf_detr(request.param)
    folder = tmp_path_factory.mktemp(f"hf-{request.param}")
    model.save_pretrained(folder)  # model.safetensors + config.json, under the hub's key names
    hub = folder / "model.safetensors"
    hub_state = _safetensors(hub)
    assert any(".conv_encoder." in k for k in hub_state)  # the hub layout, not the in-memory one
    torch.save(hub_state, folder / "pytorch_model.bin")  # a hub pytorch_model.bin: a bare state dict
    memory = tmp_path_factory.mktemp(f"hf-{request.param}-memory") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(memory))
    return model, {"hub safetensors": hub, "hub bin": folder / "pytorch_model.bin", "in-memory names": memory}


def _safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.parametrize("layout", ["hub safetensors", "hub bin", "in-memory names"])
def test_hugging_face_detr_gives_the_same_detections(saved, layout):
    model, files = saved
    detector = load_detector(SPEC, files[layout])
    images = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(2, 64, 96, dtype=torch.bool)
    mask[1, 40:, :] = True  # the second image is padded: masks must mean the same on both sides
    mask[1, :, 72:] = True
    with torch.no_grad():
        ours = detector(images, mask)
        theirs = model(pixel_values=images, pixel_mask=(~mask).long())
    torch.testing.assert_close(ours["pred_logits"], theirs.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours["pred_boxes"], theirs.pred_boxes, rtol=0, atol=1e-5)
    assert detector.sha256 and detector.checkpoint == str(files[layout])


def _tiny_hf(tmp_path: Path, extra: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "model.safetensors"
    save_file({"class_labels_classifier.weight": torch.zeros(8, 64), **extra}, str(path))
    return path


def test_an_unmappable_key_is_one_error_naming_the_file_and_the_key(tmp_path):
    path = _tiny_hf(tmp_path, {"model.backbone.position_embedding.row_embeddings.weight": torch.zeros(50, 32)})
    with pytest.raises(CheckpointError) as err:
        read_state_dict(path)
    message = str(err.value)
    assert str(path) in message and "model.backbone.position_embedding.row_embeddings.weight" in message
    assert "\n" not in message


def test_a_projection_without_its_partners_is_refused(tmp_path):
    path = _tiny_hf(tmp_path, {"model.encoder.layers.0.self_attn.q_proj.weight": torch.zeros(64, 64)})
    with pytest.raises(CheckpointError) as err:
        read_state_dict(path)
    assert str(err.value) == (
        f"{path}: no key 'model.encoder.layers.0.self_attn.k_proj.weight' to go with the other projections "
        "(transformer.encoder.layers.0.self_attn.in_proj_weight)"
    )


def test_a_config_that_computes_otherwise_is_refused(tmp_path):
    """A dilated (DC5) or learned-position DETR has the same tensor shapes: only config.json tells."""
    path = _tiny_hf(tmp_path, {})
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "detr", "dilation": True}))
    with pytest.raises(
        CheckpointError, match=r"config\.json: 'dilation' is true, but faapkit's DETR computes with false"
    ):
        read_state_dict(path, ARCH)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "detr", "dilation": False}))
    assert set(read_state_dict(path, ARCH)) == {"class_embed.weight"}


def test_the_format_is_told_by_content_and_keys_not_names(tmp_path):
    path = _tiny_hf(tmp_path, {"model.query_position_embeddings.weight": torch.zeros(6, 64)})
    renamed = path.rename(tmp_path / "weights.pth")
    assert is_safetensors(renamed) and checkpoint_training(renamed) == {}  # records no training
    assert set(read_state_dict(renamed)) == {"class_embed.weight", "query_embed.weight"}
    upstream = {"class_embed.weight": torch.zeros(8, 64), "query_embed.weight": torch.zeros(6, 64)}
    assert not is_hf_detr(upstream)
    with pytest.raises(CheckpointError, match="key 'class_embed.weight' of a Hugging Face DETR"):
        hf_to_upstream(upstream, "x")  # upstream keys are not renamed twice
    torch.save({"model": upstream}, tmp_path / "upstream.pth")
    assert not is_safetensors(tmp_path / "upstream.pth")
    assert read_state_dict(tmp_path / "upstream.pth").keys() == upstream.keys()


def _as_hugging_face(upstream: dict[str, torch.Tensor], native: bool) -> dict[str, torch.Tensor]:
    """An upstream state dict under the hub's names (q, k, v split again)."""
    out = {}
    for key, value in upstream.items():
        name = upstream_to_hf(key, native)
        assert name is not None, key
        if "{q,k,v}" in name:
            out.update({name.replace("{q,k,v}", p): part for p, part in zip("qkv", value.chunk(3), strict=True)})
        else:
            out[name] = value
    return out


@pytest.mark.parametrize("native", [False, True])
def test_every_upstream_key_has_its_file_name(native):
    upstream = {k: v for k, v in SPEC.build().model.state_dict().items() if not k.endswith("num_batches_tracked")}
    back = hf_to_upstream(_as_hugging_face(upstream, native), "x")
    assert back.keys() == upstream.keys() and all(torch.equal(back[k], upstream[k]) for k in upstream)


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (
            lambda sd: sd.pop("model.decoder.layers.1.fc2.weight"),
            "1 missing keys (e.g. model.decoder.layers.1.fc2.weight (transformer.decoder.layers.1.linear2.weight))",
        ),
        (
            lambda sd: sd.__setitem__("class_labels_classifier.weight", torch.zeros(3, 64)),
            "shape mismatches (e.g. class_labels_classifier.weight (class_embed.weight) (3, 64) vs (8, 64))",
        ),
        (
            lambda sd: sd.__setitem__("model.encoder.layers.0.self_attn.v_proj.bias", torch.zeros(5)),
            "model.encoder.layers.0.self_attn.{q,k,v}_proj.bias (transformer.encoder.layers.0.self_attn.in_proj_bias)",
        ),
    ],
)
def test_load_errors_name_the_key_as_the_file_has_it(tmp_path, edit, says):
    """Not only the upstream key, which the file does not hold: the file's, the upstream one beside it."""
    upstream = {k: v for k, v in SPEC.build().model.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = _as_hugging_face(upstream, native=False)
    edit(state)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(CheckpointError) as err:
        load_detector(SPEC, path)
    assert says in str(err.value) and str(path) in str(err.value)
