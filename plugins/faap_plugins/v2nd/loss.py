"""The 2nd version's loss: group-blind low/high InfoNCE on image detection scores, with the
research code's median bug fixed (P10: a disjoint rank split), plus matched-score Wasserstein."""

from __future__ import annotations

import torch
from torch import Tensor

from faapkit.plugin_api import (
    LossInputs,
    LossOutput,
    LossStrategy,
    image_scores,
    info_nce,
    matched_scores,
    score_terms,
    self_similarity,
    wasserstein_1d_asymmetric,
)


def rank_split(scores: Tensor) -> tuple[Tensor, Tensor]:
    """P10 fixed: indices of the lower floor(N/2) and upper ceil(N/2) scores, ties broken by batch
    position, so the two sets are disjoint."""
    order = torch.sort(scores.detach(), stable=True).indices
    half = len(order) // 2
    return order[:half], order[half:]


def score_split_contrastive(z: Tensor, scores: Tensor, tau: float, w_low_high: float, w_high_low: float) -> Tensor:
    """Low-score images take the high-score ones as positives and the reverse, ``z (N, P)``,
    ``scores (N,)``; 0 when a side holds fewer than two images."""
    low, high = rank_split(scores)
    if len(low) < 2 or len(high) < 2:
        return z.sum() * 0.0
    z_l, z_h = z[low], z[high]
    lh = z_l @ z_h.t() / tau
    return w_low_high * info_nce(lh, self_similarity(z_l, tau)) + w_high_low * info_nce(
        lh.t(), self_similarity(z_h, tau)
    )


class ScoreSplitInfoNCE(LossStrategy):
    """Group-blind low/high InfoNCE on image scores + W(matched) when both groups are present."""

    def __init__(
        self,
        temperature: float,
        score_top_k: int,
        weight_low_high: float,
        weight_high_low: float,
        lambda_contrastive: float,
        lambda_wass: float,
    ) -> None:
        self.tau, self.k, self.wlh, self.whl = temperature, score_top_k, weight_low_high, weight_high_low
        self.lc, self.lw = lambda_contrastive, lambda_wass

    def skip_reason(self, groups: Tensor) -> str | None:
        return "batch smaller than 4 images" if len(groups) < 4 else None

    def __call__(self, x: LossInputs) -> LossOutput:
        d, a = x.index(0), x.index(1)
        z = x.head(x.features.float())  # type: ignore[misc]
        s = image_scores(x.logits, self.k)
        con = score_split_contrastive(z, s, self.tau, self.wlh, self.whl)
        wass = wasserstein_1d_asymmetric(
            matched_scores(x.logits, x.targets, x.indices, d), matched_scores(x.logits, x.targets, x.indices, a)
        )
        total = self.lc * con + self.lw * wass + x.weights["beta"] * x.detection
        low, high = rank_split(s)
        return LossOutput(
            total,
            {
                "loss_contrastive": con,
                "loss_wasserstein": wass,
                "split_score_gap": s[high].mean().detach() - s[low].mean().detach(),
                **score_terms(s, d, a),
            },
        )
