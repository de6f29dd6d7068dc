"""The torch side of the ``faap_first_queries`` test plugin, imported only when its detector is built."""

import dataclasses
from typing import Any

from torch import nn

from faapkit.plugin_api import DetectorParts, detr_parts


class FirstQueries(nn.Module):
    """A DETR whose outputs keep queries ``[:keep]``: ``(B, Q, .) -> (B, keep, .)`` for the final
    layer, ``features`` and every ``aux_outputs`` layer. State-dict keys are ``detr.*``."""

    def __init__(self, detr: nn.Module, keep: int) -> None:
        super().__init__()
        self.detr, self.keep = detr, keep

    def forward(self, samples: Any) -> dict[str, Any]:
        out = self.detr(samples)
        kept = {k: out[k][:, : self.keep] for k in ("pred_logits", "pred_boxes", "features")}
        kept["aux_outputs"] = [{k: v[:, : self.keep] for k, v in aux.items()} for aux in out["aux_outputs"]]
        return kept


def first_queries(keep: int, **arch: Any) -> DetectorParts:
    """The built-in DETR factory, wrapped: the same criterion and postprocess, ``keep`` queries."""
    parts = detr_parts(**arch)
    return dataclasses.replace(parts, model=FirstQueries(parts.model, keep), num_queries=keep)
