"""The 4th version's loss: disadvantaged->advantaged InfoNCE with the advantaged projections
detached (targets, not learners), feature-mean alignment, one-way Wasserstein of image scores,
detection; the contrastive term is scaled by the ``contrastive_weight`` schedule (warm-up)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def anchor_infonce(z_d: Tensor, z_a: Tensor, tau: float) -> Tensor:
    """d->a InfoNCE with the advantaged projections detached (targets, not learners)."""
    return info_nce(z_d @ z_a.detach().t() / tau, self_similarity(z_d, tau))


def feature_mean_alignment(h_d: Tensor, h_a: Tensor) -> Tensor:
    """MSE between the mean decoder feature of each group ``(N, Q, D)``; advantaged detached."""
    if len(h_d) == 0 or len(h_a) == 0:
        return h_d.sum() * 0.0
    return F.mse_loss(h_d.float().mean(dim=(0, 1)), h_a.detach().float().mean(dim=(0, 1)))


class AnchorAlignedInfoNCE(LossStrategy):
    """``l_c * w_c(e) * NCE(d->sg(a)) + l_align * align + l_w * W(image scores) + beta * L_det``."""

    def __init__(
        self, temperature: float, score_top_k: int, lambda_contrastive: float, lambda_align: float, lambda_wass: float
    ) -> None:
        self.tau, self.k = temperature, score_top_k
        self.lc, self.la, self.lw = lambda_contrastive, lambda_align, lambda_wass

    def skip_reason(self, groups: Tensor) -> str | None:
        return need_anchors_and_targets(groups)

    def __call__(self, x: LossInputs) -> LossOutput:
        d, a = x.index(0), x.index(1)
        z = x.head(x.features.float())  # type: ignore[misc]
        s = image_scores(x.logits, self.k)
        con = anchor_infonce(z[d], z[a], self.tau)
        align = feature_mean_alignment(x.features[d], x.features[a])
        wass = wasserstein_1d_asymmetric(s[d], s[a])
        w_c = x.weights.get("contrastive_weight", 1.0)
        total = self.lc * w_c * con + self.la * align + self.lw * wass + x.weights["beta"] * x.detection
        with torch.no_grad():
            zd, za = z[d].detach(), z[a].detach()
            sim_da = (zd @ za.t()).mean()
            off = ~torch.eye(len(zd), dtype=torch.bool, device=zd.device)
            sim_dd = (zd @ zd.t())[off].mean()
        return LossOutput(
            total,
            {
                "loss_contrastive": con,
                "loss_align": align,
                "loss_wasserstein": wass,
                "sim_dis_adv": sim_da,
                "sim_dis_dis": sim_dd,
                **score_terms(s, d, a),
            },
        )
