"""Hungarian matching between predictions and targets (scipy ``linear_sum_assignment``)."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from faapkit.detr.box_ops import box_cxcywh_to_xyxy, generalized_box_iou

Indices = list[tuple[Tensor, Tensor]]


class HungarianMatcher(nn.Module):
    """Cost = ``cost_class * -p(class) + cost_bbox * L1 + cost_giou * -GIoU``. Computed per image
    (identical to upstream's batched matrix, which it splits per image anyway)."""

    def __init__(self, cost_class: float = 1, cost_bbox: float = 5, cost_giou: float = 2) -> None:
        super().__init__()
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou

    @torch.no_grad()
    def forward(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]) -> Indices:
        """Returns, per image, ``(query_indices, target_indices)`` of equal length min(Q, T_i)."""
        prob = outputs["pred_logits"].float().softmax(-1)
        boxes = outputs["pred_boxes"].float()
        indices: Indices = []
        empty = torch.empty(0, dtype=torch.int64)
        for b, target in enumerate(targets):
            if len(target["labels"]) == 0:
                indices.append((empty, empty))
                continue
            tgt_boxes = target["boxes"].float()
            cost = (self.cost_bbox * torch.cdist(boxes[b], tgt_boxes, p=1)
                    - self.cost_class * prob[b][:, target["labels"]]
                    - self.cost_giou * generalized_box_iou(box_cxcywh_to_xyxy(boxes[b]), box_cxcywh_to_xyxy(tgt_boxes)))
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices
