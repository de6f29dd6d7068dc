"""The frozen detector: masks, gradients to the input only, strict and safe loading."""

from __future__ import annotations

import pickle

import pytest
import torch

from faapkit.detr.build import build_detr, detr_parts, read_state_dict
from faapkit.detr.frozen import FrozenDetector, load_detector
from faapkit.detr.misc import nested_tensor_from_tensor_list
from faapkit.errors import CheckpointError

SMALL = dict(
    backbone="resnet18",
    hidden_dim=32,
    nheads=2,
    enc_layers=1,
    dec_layers=2,
    dim_feedforward=64,
    num_queries=5,
    num_classes=3,
)


def small_detector() -> FrozenDetector:
    torch.manual_seed(0)
    return FrozenDetector(detr_parts(**SMALL), name="small")


def test_padded_batch_equals_single_images():
    det = small_detector()
    a, b = torch.randn(3, 96, 128), torch.randn(3, 64, 96)
    batch = nested_tensor_from_tensor_list([a, b])
    assert batch.mask[1, 64:, :].all() and batch.mask[1, :, 96:].all() and not batch.mask[0].any()
    with torch.no_grad():
        out = det(batch.tensors, batch.mask)
        alone = det(a[None], torch.zeros(1, 96, 128, dtype=torch.bool))
    # the unpadded image of the batch must be unaffected by its padded batch-mate
    torch.testing.assert_close(out["pred_logits"][0], alone["pred_logits"][0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["pred_boxes"][0], alone["pred_boxes"][0], rtol=1e-4, atol=1e-5)
    assert out["features"].shape == (2, 5, 32)


def test_gradient_reaches_input_and_parameters_stay():
    det = small_detector()
    before = {k: v.clone() for k, v in det.state_dict().items()}
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    padded = nested_tensor_from_tensor_list([x[0], x[1, :, :48, :48]])
    opt = torch.optim.SGD([x], lr=0.1)
    out = det(padded.tensors, padded.mask)
    targets = [{"boxes": torch.tensor([[0.5, 0.5, 0.3, 0.3]]), "labels": torch.tensor([1])}] * 2
    total, terms, indices = det.detection_loss(out, targets)
    total.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in det.parameters())
    opt.step()
    det.train()  # must stay in eval mode
    assert not det.training and not det.model.training
    for k, v in det.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert set(terms) == {"loss_ce", "loss_bbox", "loss_giou", "loss_ce_0", "loss_bbox_0", "loss_giou_0"}


def test_checkpoint_round_trip_strict(tmp_path, registries):
    spec = registries.detectors.get("detr-r18-d64")
    model, _, _ = build_detr(**spec.arch)
    path = tmp_path / "detr.pth"
    torch.save({"model": model.state_dict()}, path)
    det = load_detector(spec, path)
    x, m = torch.randn(1, 3, 64, 64), torch.zeros(1, 64, 64, dtype=torch.bool)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            det(x, m)["pred_logits"], model(nested_tensor_from_tensor_list([x[0]]))["pred_logits"]
        )
    bare = tmp_path / "bare.pth"
    torch.save(model.state_dict(), bare)
    assert set(read_state_dict(bare)) == set(model.state_dict())


def test_wrong_architecture_is_a_clear_error(tmp_path, registries):
    model, _, _ = build_detr(**registries.detectors.get("detr-r18-d64").arch)
    path = tmp_path / "r18.pth"
    torch.save({"model": model.state_dict()}, path)
    with pytest.raises(CheckpointError, match="does not fit detector 'detr-synth-tiny'.*missing keys"):
        load_detector(registries.detectors.get("detr-synth-tiny"), path)
    partial = dict(model.state_dict())
    partial.pop("query_embed.weight")
    torch.save(partial, path)
    with pytest.raises(CheckpointError, match="1 missing keys"):
        load_detector(registries.detectors.get("detr-r18-d64"), path)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_pickle_is_refused(tmp_path, registries):
    path = tmp_path / "evil.pth"
    with path.open("wb") as fh:
        pickle.dump({"model": Evil()}, fh)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_detector(registries.detectors.get("detr-r18-d64"), path)


def test_truncated_checkpoint(tmp_path, registries):
    model, _, _ = build_detr(**registries.detectors.get("detr-r18-d64").arch)
    path = tmp_path / "t.pth"
    torch.save({"model": model.state_dict()}, path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_detector(registries.detectors.get("detr-r18-d64"), path)
