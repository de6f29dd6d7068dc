"""Hungarian matching between predictions and targets (scipy ``linear_sum_assignment``)."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torchvision.ops import box_convert, generalized_box_iou

Indices = list[tuple[Tensor, Tensor]]


class HungarianMatcher(nn.Module):
    """Cost = ``cost_class * -p(class) + cost_bbox * L1 + cost_giou * -GIoU``, solved per image."""

    def __init__(self, cost_class: float = 1, cost_bbox: float = 5, cost_giou: float = 2) -> None:
        super().__init__()
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou

    @torch.no_grad()
    def forward(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]) -> Indices:
        """Returns, per image, ``(query_indices, target_indices)`` of equal length min(Q, T_i)."""
        bs, num_queries = outputs["pred_logits"].shape[:2]
        sizes = [len(t["boxes"]) for t in targets]
        empty = torch.empty(0, dtype=torch.int64)
        if sum(sizes) == 0:
            return [(empty, empty) for _ in targets]
        prob = outputs["pred_logits"].flatten(0, 1).float().softmax(-1)
        boxes = outputs["pred_boxes"].flatten(0, 1).float()
        tgt_ids = torch.cat([t["labels"] for t in targets])
        tgt_boxes = torch.cat([t["boxes"] for t in targets]).float()
        giou = generalized_box_iou(box_convert(boxes, "cxcywh", "xyxy"), box_convert(tgt_boxes, "cxcywh", "xyxy"))
        cost = (
            self.cost_bbox * torch.cdist(boxes, tgt_boxes, p=1)
            - self.cost_class * prob[:, tgt_ids]
            - self.cost_giou * giou
        )
        # One device->host copy for the whole batch; each image only uses its own block.
        blocks = cost.view(bs, num_queries, -1).cpu().split(sizes, -1)
        indices: Indices = []
        for i, block in enumerate(blocks):
            rows, cols = linear_sum_assignment(block[i].numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices
