"""The 1st version's loss: bidirectional cross-group InfoNCE on projections ``z (N, P)`` of the
mean decoder feature, one-way Wasserstein alignment of Hungarian-matched scores, detection."""

from __future__ import annotations

from torch import Tensor

from faapkit.plugin_api import (
    LossInputs,
    LossOutput,
    LossStrategy,
    count_groups,
    image_scores,
    info_nce,
    matched_scores,
    score_terms,
    self_similarity,
    wasserstein_1d_asymmetric,
)


def cross_group_infonce(z_d: Tensor, z_a: Tensor, tau: float, w_forward: float, w_backward: float) -> Tensor:
    """Anchors of each group take the other group as positives and their own group as negatives,
    ``w_forward * l(d->a) + w_backward * l(a->d)``; nothing is detached."""
    forward = info_nce(z_d @ z_a.t() / tau, self_similarity(z_d, tau))
    backward = info_nce(z_a @ z_d.t() / tau, self_similarity(z_a, tau))
    return w_forward * forward + w_backward * backward


class CrossGroupInfoNCE(LossStrategy):
    """``L = l_c * NCE + l_w * W(matched scores) + beta * L_det``."""

    def __init__(
        self,
        temperature: float,
        weight_forward: float,
        weight_backward: float,
        lambda_contrastive: float,
        lambda_wass: float,
    ) -> None:
        self.tau, self.wf, self.wb = temperature, weight_forward, weight_backward
        self.lc, self.lw = lambda_contrastive, lambda_wass

    def skip_reason(self, groups: Tensor) -> str | None:
        n_d, n_a = count_groups(groups)
        return "a group is absent from the batch" if n_d == 0 or n_a == 0 else None

    def __call__(self, x: LossInputs) -> LossOutput:
        d, a = x.index(0), x.index(1)
        z = x.head(x.features.float())  # type: ignore[misc]
        nce = cross_group_infonce(z[d], z[a], self.tau, self.wf, self.wb)
        wass = wasserstein_1d_asymmetric(
            matched_scores(x.logits, x.targets, x.indices, d), matched_scores(x.logits, x.targets, x.indices, a)
        )
        total = self.lc * nce + self.lw * wass + x.weights["beta"] * x.detection
        s = image_scores(x.logits, 10)
        return LossOutput(total, {"loss_contrastive": nce, "loss_wasserstein": wass, **score_terms(s, d, a)})
