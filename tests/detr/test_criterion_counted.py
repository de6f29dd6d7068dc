"""One group's DETR set loss (box-level groups): ``SetCriterion(..., counted=)`` on hand-built
tensors. It is the whole loss when every target counts; the other targets take part in the
matching only, so their boxes and labels change nothing but which queries are left to the shared
no-object term."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_convert, generalized_box_iou

from faapkit.detr.criterion import SetCriterion
from faapkit.detr.frozen import FrozenDetector
from faapkit.detr.matcher import HungarianMatcher, Indices
from faapkit.errors import ConfigError
from faapkit.losses.base import LossInputs

Q, C = 5, 2


def _outputs(seed: int = 0, aux: int = 1) -> dict:
    gen = torch.Generator().manual_seed(seed)

    def layer() -> dict:
        return {
            "pred_logits": torch.randn(2, Q, C + 1, generator=gen),
            "pred_boxes": torch.rand(2, Q, 4, generator=gen) * 0.5 + 0.25,
        }

    return {**layer(), "aux_outputs": [layer() for _ in range(aux)]}


def _targets() -> list[dict[str, torch.Tensor]]:
    return [
        {
            "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.4], [0.7, 0.5, 0.2, 0.3], [0.5, 0.6, 0.1, 0.2]]),
            "labels": torch.tensor([1, 1, 0]),
            "groups": torch.tensor([0, 1, 0]),
        },
        {"boxes": torch.tensor([[0.6, 0.4, 0.3, 0.3]]), "labels": torch.tensor([1]), "groups": torch.tensor([1])},
    ]


class FixedMatcher:
    """The matching held fixed, so that moving a target's box cannot move it."""

    def __init__(self, indices: Indices) -> None:
        self.indices = indices

    def __call__(self, outputs: dict, targets: list) -> Indices:
        return self.indices


FIXED = [(torch.tensor([4, 0, 2]), torch.tensor([0, 1, 2])), (torch.tensor([3]), torch.tensor([0]))]


def _total(criterion: SetCriterion, outputs: dict, targets: list, counted=None) -> torch.Tensor:
    terms, _ = criterion(outputs, targets, counted)
    return criterion.total(terms)


def test_every_target_counted_is_the_whole_loss():
    criterion = SetCriterion(C, HungarianMatcher(1, 5, 2), eos_coef=0.1)
    outputs, targets = _outputs(), _targets()
    whole, _ = criterion(outputs, targets)
    every, _ = criterion(outputs, targets, [torch.ones(len(t["labels"]), dtype=torch.bool) for t in targets])
    assert whole.keys() == every.keys() and len(whole) == 6
    for k in whole:
        assert torch.equal(whole[k], every[k]), k
    # one group holding every box: its loss is the whole loss
    same = [{**t, "groups": torch.zeros_like(t["groups"])} for t in targets]
    assert torch.equal(_total(criterion, outputs, same, [t["groups"] == 0 for t in same]), criterion.total(whole))


def test_other_groups_boxes_change_nothing_but_the_matching():
    criterion = SetCriterion(C, FixedMatcher(FIXED), eos_coef=0.1)
    outputs, targets = _outputs(aux=0), _targets()
    counted = [t["groups"] == 0 for t in targets]
    moved = [dict(t) for t in targets]
    for t in moved:  # the advantaged boxes elsewhere, with another label
        other = t["groups"] != 0
        t["boxes"] = torch.where(other[:, None], torch.tensor([0.1, 0.9, 0.05, 0.05]), t["boxes"])
        t["labels"] = torch.where(other, torch.zeros_like(t["labels"]), t["labels"])
    restricted = _total(criterion, outputs, targets, counted)
    assert torch.equal(_total(criterion, outputs, moved, counted), restricted)
    assert not torch.equal(_total(criterion, outputs, moved), _total(criterion, outputs, targets))


def test_restricted_loss_by_hand():
    """Class term: the queries matched to the group's boxes and the unmatched ones (no object,
    weight eos_coef), those matched to other boxes left out; box terms over the group's pairs,
    divided by their number."""
    criterion = SetCriterion(C, FixedMatcher(FIXED), eos_coef=0.1)
    outputs, targets = _outputs(aux=0), _targets()
    terms, _ = criterion(outputs, targets, [t["groups"] == 0 for t in targets])
    logits, boxes = outputs["pred_logits"], outputs["pred_boxes"]
    # image 0: query 4 -> box 0 (group 0, label 1), query 0 -> box 1 (group 1), query 2 -> box 2
    # (group 0, label 0); image 1: query 3 -> box 0 (group 1); every other query: no object
    rows = [(0, 4, 1), (0, 2, 0)] + [(0, q, C) for q in (1, 3)] + [(1, q, C) for q in (0, 1, 2, 4)]
    ce = torch.stack([F.cross_entropy(logits[b, q][None], torch.tensor([c]), reduction="sum") for b, q, c in rows])
    w = torch.tensor([1.0 if c < C else 0.1 for _, _, c in rows])
    torch.testing.assert_close(terms["loss_ce"], (w * ce).sum() / w.sum())
    src = boxes[0, [4, 2]]
    tgt = targets[0]["boxes"][[0, 2]]
    torch.testing.assert_close(terms["loss_bbox"], (src - tgt).abs().sum() / 2)
    giou = torch.diag(generalized_box_iou(box_convert(src, "cxcywh", "xyxy"), box_convert(tgt, "cxcywh", "xyxy")))
    torch.testing.assert_close(terms["loss_giou"], (1 - giou).sum() / 2)


def test_loss_inputs_group_rows():
    """``detection_of_group`` asks for the rows holding the group's boxes, and is a zero (with a
    graph) when no row holds one."""
    targets = _targets()
    asked = []
    logits = torch.zeros(2, Q, C + 1, requires_grad=True)
    x = LossInputs(
        {"pred_logits": logits},
        targets,
        torch.tensor([0, 1]),
        torch.tensor(0.0),
        [],
        {},
        None,
        detection_of=lambda rows, group=None: asked.append((rows.tolist(), group)) or torch.tensor(1.0),
    )
    assert x.box_level
    assert x.holding(0).tolist() == [0] and x.holding(1).tolist() == [0, 1]
    x.detection_of_group(1)
    assert asked == [([0, 1], 1)]
    none = x.detection_of_group(-1)
    assert float(none.detach()) == 0.0 and none.requires_grad and len(asked) == 1
    plain = LossInputs({}, [{"boxes": torch.zeros(0, 4)}], torch.tensor([0]), torch.tensor(0.0), [], {}, None)
    assert not plain.box_level


def test_frozen_detector_passes_counted(tiny_detector):
    """The shipped detectors' criterion takes ``counted``; one that does not is refused in a line."""
    gen = torch.Generator().manual_seed(1)
    outputs = {
        "pred_logits": torch.randn(2, 4, tiny_detector.num_classes + 1, generator=gen),
        "pred_boxes": torch.rand(2, 4, 4, generator=gen) * 0.5 + 0.25,
    }
    targets = [{"boxes": t["boxes"], "labels": t["labels"] * 0} for t in _targets()]
    counted = [t["groups"] == 0 for t in _targets()]
    whole = tiny_detector.detection_loss(outputs, targets)[0]
    every = tiny_detector.detection_loss(outputs, targets, [torch.ones_like(c) for c in counted])[0]
    assert torch.equal(whole, every)
    assert torch.isfinite(tiny_detector.detection_loss(outputs, targets, counted)[0])

    def plain(outputs, targets):
        return tiny_detector.criterion(outputs, targets)

    plain.total = tiny_detector.criterion.total  # type: ignore[attr-defined]
    other = FrozenDetector(dataclasses.replace(tiny_detector.parts, criterion=plain), name="plain")
    assert torch.equal(other.detection_loss(outputs, targets)[0], whole)
    with pytest.raises(ConfigError, match="detector 'plain': its criterion takes no 'counted' targets"):
        other.detection_loss(outputs, targets, counted)
