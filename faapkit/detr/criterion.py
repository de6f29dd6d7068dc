"""DETR set criterion: labels (CE with a down-weighted no-object class), L1 and GIoU box losses on
Hungarian-matched pairs, for the final and every auxiliary decoder layer.

``counted`` (one boolean ``(T_i,)`` per image) restricts the loss to some targets (one group's
boxes, box-level groups): the matching is the same (every target takes part in it), the class term
counts the queries matched to counted targets and the unmatched queries (the no-object term, so
shared by every restriction), and leaves out the queries matched to the other targets; the box
terms count the counted targets' pairs, normalised by their number. With every target counted it
is the whole loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_convert, generalized_box_iou

from faapkit.detr.matcher import HungarianMatcher, Indices

LOSS_WEIGHTS = {"loss_ce": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}
IGNORED = -100  # F.cross_entropy's ignore_index: a query matched to a target not counted


def _src_permutation(indices: Indices) -> tuple[Tensor, Tensor]:
    batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
    src_idx = torch.cat([src for src, _ in indices])
    return batch_idx, src_idx


def _matched(counted: list[Tensor], indices: Indices) -> Tensor:
    """Whether each matched pair's target is counted, in :func:`_src_permutation`'s order."""
    return torch.cat([c[j.to(c.device)] for c, (_, j) in zip(counted, indices, strict=True)]).bool()


class SetCriterion(nn.Module):
    """``forward(outputs, targets) -> (losses, indices)``: unweighted terms ``loss_ce``,
    ``loss_bbox``, ``loss_giou`` and their ``_i`` aux copies, plus the final layer's matching."""

    empty_weight: Tensor

    def __init__(
        self,
        num_classes: int,
        matcher: HungarianMatcher,
        eos_coef: float = 0.1,
        weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher
        self.eos_coef = eos_coef
        base = weights or LOSS_WEIGHTS
        self.base_weights = dict(base)
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight)

    def weight_dict(self, num_aux: int) -> dict[str, float]:
        weights = dict(self.base_weights)
        for i in range(num_aux):
            weights.update({f"{k}_{i}": v for k, v in self.base_weights.items()})
        return weights

    def _layer_losses(
        self,
        outputs: dict[str, Tensor],
        targets: list[dict[str, Tensor]],
        indices: Indices,
        num_boxes: float,
        counted: list[Tensor] | None = None,
    ) -> dict[str, Tensor]:
        logits = outputs["pred_logits"].float()
        idx = _src_permutation(indices)
        idx = (idx[0].to(logits.device), idx[1].to(logits.device))
        target_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        matched_labels = torch.cat(
            [t["labels"][j.to(t["labels"].device)] for t, (_, j) in zip(targets, indices, strict=True)]
        )
        keep = None if counted is None else _matched(counted, indices).to(logits.device)
        target_classes[idx] = matched_labels if keep is None else matched_labels.masked_fill(~keep, IGNORED)
        loss_ce = F.cross_entropy(logits.transpose(1, 2), target_classes, self.empty_weight, ignore_index=IGNORED)
        src_boxes = outputs["pred_boxes"].float()[idx]
        target_boxes = torch.cat(
            [t["boxes"][j.to(t["boxes"].device)] for t, (_, j) in zip(targets, indices, strict=True)]
        ).float()
        if keep is not None:
            src_boxes, target_boxes = src_boxes[keep], target_boxes[keep.to(target_boxes.device)]
        loss_bbox = F.l1_loss(src_boxes, target_boxes, reduction="none").sum() / num_boxes
        src_xyxy, target_xyxy = box_convert(src_boxes, "cxcywh", "xyxy"), box_convert(target_boxes, "cxcywh", "xyxy")
        giou = torch.diag(generalized_box_iou(src_xyxy, target_xyxy))
        loss_giou = (1 - giou).sum() / num_boxes
        return {"loss_ce": loss_ce, "loss_bbox": loss_bbox, "loss_giou": loss_giou}

    def forward(
        self, outputs: dict[str, object], targets: list[dict[str, Tensor]], counted: list[Tensor] | None = None
    ) -> tuple[dict[str, Tensor], Indices]:
        final = {"pred_logits": outputs["pred_logits"], "pred_boxes": outputs["pred_boxes"]}
        indices = self.matcher(final, targets)
        # Box losses are normalised by the number of targets in the batch given (at least 1), or of
        # the counted ones.
        if counted is None:
            num_boxes = max(1.0, float(sum(len(t["labels"]) for t in targets)))
        else:
            num_boxes = max(1.0, float(sum(int(c.sum()) for c in counted)))
        losses = self._layer_losses(final, targets, indices, num_boxes, counted)  # type: ignore[arg-type]
        aux_outputs: list[dict[str, Tensor]] = outputs.get("aux_outputs") or []  # type: ignore[assignment]
        for i, aux in enumerate(aux_outputs):
            aux_indices = self.matcher(aux, targets)
            aux_losses = self._layer_losses(aux, targets, aux_indices, num_boxes, counted)
            losses.update({f"{k}_{i}": v for k, v in aux_losses.items()})
        return losses, indices

    def total(self, losses: dict[str, Tensor]) -> Tensor:
        """Weighted sum over the terms present (1 / 5 / 2 for every layer)."""
        weights = self.weight_dict(len(losses) // 3)
        return sum(losses[k] * weights[k] for k in losses if k in weights)  # type: ignore[return-value]
