"""The 3rd version's loss: group-aware InfoNCE whose logits are weighted by the image scores
(adaptive weights), plus one-way Wasserstein alignment of image scores, detection."""

from __future__ import annotations

import torch
from torch import Tensor

from faapkit.plugin_api import (
    LossInputs,
    LossOutput,
    LossStrategy,
    image_scores,
    info_nce,
    need_anchors_and_targets,
    score_terms,
    self_similarity,
    wasserstein_1d_asymmetric,
)


def group_aware_contrastive(
    z_d: Tensor, z_a: Tensor, s_d: Tensor, s_a: Tensor, tau: float, alpha: float, w_forward: float, w_backward: float
) -> Tensor:
    """d->a InfoNCE whose logits get ``alpha * log(0.5 + sigmoid(5 (s_a_j - s_d_i)))`` (scores
    detached), plus the unweighted a->d direction when there are at least two advantaged images."""
    sim = z_d @ z_a.t() / tau
    weight = 0.5 + torch.sigmoid(5 * (s_a.detach()[None, :] - s_d.detach()[:, None]))
    forward = info_nce(sim + alpha * torch.log(weight + 1e-8), self_similarity(z_d, tau))
    backward = info_nce(sim.t(), self_similarity(z_a, tau)) if len(z_a) >= 2 else sim.sum() * 0.0
    return w_forward * forward + w_backward * backward


class GroupAwareInfoNCE(LossStrategy):
    """Adaptive-weight d->a InfoNCE (+ a->d) + W(image scores) + beta * L_det."""

    def __init__(
        self,
        temperature: float,
        alpha: float,
        score_top_k: int,
        weight_forward: float,
        weight_backward: float,
        lambda_contrastive: float,
        lambda_wass: float,
    ) -> None:
        self.tau, self.alpha, self.k, self.wf, self.wb = (
            temperature,
            alpha,
            score_top_k,
            weight_forward,
            weight_backward,
        )
        self.lc, self.lw = lambda_contrastive, lambda_wass

    def skip_reason(self, groups: Tensor) -> str | None:
        return need_anchors_and_targets(groups)

    def __call__(self, x: LossInputs) -> LossOutput:
        d, a = x.index(0), x.index(1)
        z = x.head(x.features.float())  # type: ignore[misc]
        s = image_scores(x.logits, self.k)
        con = group_aware_contrastive(z[d], z[a], s[d], s[a], self.tau, self.alpha, self.wf, self.wb)
        wass = wasserstein_1d_asymmetric(s[d], s[a])
        total = self.lc * con + self.lw * wass + x.weights["beta"] * x.detection
        return LossOutput(total, {"loss_contrastive": con, "loss_wasserstein": wass, **score_terms(s, d, a)})
