"""The DETR model and its box post-processor."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_convert

from faapkit.detr.backbone import Joiner
from faapkit.detr.misc import NestedTensor
from faapkit.detr.transformer import Transformer


class MLP(nn.Module):
    """Simple multi-layer perceptron (``bbox_embed.layers.{0,1,2}``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [hidden_dim] * (num_layers - 1)
        self.num_layers = num_layers
        self.layers = nn.ModuleList(
            nn.Linear(n, k) for n, k in zip([input_dim, *dims], [*dims, output_dim], strict=True)
        )

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class DETR(nn.Module):
    """``NestedTensor (B, 3, H, W)`` -> dict with
    ``pred_logits (B, Q, C+1)``, ``pred_boxes (B, Q, 4)`` (normalised cxcywh),
    ``aux_outputs`` (one dict per earlier decoder layer) and ``features (B, Q, D)``, the last decoder
    layer after the decoder norm."""

    def __init__(
        self, backbone: Joiner, transformer: Transformer, num_classes: int, num_queries: int, aux_loss: bool = True
    ) -> None:
        super().__init__()
        self.num_queries = num_queries
        self.transformer = transformer
        hidden_dim = transformer.d_model
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.bbox_embed = MLP(hidden_dim, hidden_dim, 4, 3)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.input_proj = nn.Conv2d(backbone.num_channels, hidden_dim, kernel_size=1)
        self.backbone = backbone
        self.aux_loss = aux_loss
        self.num_classes = num_classes

    def forward(self, samples: NestedTensor) -> dict[str, object]:
        features, pos = self.backbone(samples)
        src, mask = features[-1].decompose()
        hs = self.transformer(self.input_proj(src), mask, self.query_embed.weight, pos[-1])[0]
        outputs_class = self.class_embed(hs)
        outputs_coord = self.bbox_embed(hs).sigmoid()
        out: dict[str, object] = {"pred_logits": outputs_class[-1], "pred_boxes": outputs_coord[-1], "features": hs[-1]}
        if self.aux_loss:
            out["aux_outputs"] = [
                {"pred_logits": a, "pred_boxes": b} for a, b in zip(outputs_class[:-1], outputs_coord[:-1], strict=True)
            ]
        return out


class PostProcess(nn.Module):
    """Model outputs -> per image ``{"scores" (Q,), "labels" (Q,), "boxes" (Q, 4) xyxy in pixels}``.
    ``target_sizes (B, 2)`` holds ``(h, w)`` of each original image."""

    @torch.no_grad()
    def forward(self, outputs: dict[str, Tensor], target_sizes: Tensor) -> list[dict[str, Tensor]]:
        out_logits, out_bbox = outputs["pred_logits"], outputs["pred_boxes"]
        prob = F.softmax(out_logits.float(), -1)
        scores, labels = prob[..., :-1].max(-1)
        boxes = box_convert(out_bbox.float(), "cxcywh", "xyxy")
        img_h, img_w = target_sizes.unbind(1)
        scale = torch.stack([img_w, img_h, img_w, img_h], dim=1).to(boxes.dtype)
        boxes = boxes * scale[:, None, :]
        return [{"scores": s, "labels": lab, "boxes": b} for s, lab, b in zip(scores, labels, boxes, strict=True)]
