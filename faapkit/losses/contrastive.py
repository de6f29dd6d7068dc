"""Contrastive versions 1st-4th. ``z`` are L2-normalised projections ``(N, P)`` of the mean decoder
feature; ``d``/``a`` index the disadvantaged and advantaged images of the batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from faapkit.losses.base import LossInputs, LossOutput, LossStrategy, count_groups
from faapkit.losses.common import (
    image_scores,
    info_nce,
    matched_scores,
    self_similarity,
    wasserstein_1d_asymmetric,
)

# ----------------------------------------------------------------------------- pure loss functions


def cross_group_infonce(z_d: Tensor, z_a: Tensor, tau: float, w_forward: float, w_backward: float) -> Tensor:
    """1st: anchors of each group take the other group as positives and their own group as
    negatives, ``w_forward * l(d->a) + w_backward * l(a->d)``; nothing is detached."""
    forward = info_nce(z_d @ z_a.t() / tau, self_similarity(z_d, tau))
    backward = info_nce(z_a @ z_d.t() / tau, self_similarity(z_a, tau))
    return w_forward * forward + w_backward * backward


def rank_split(scores: Tensor) -> tuple[Tensor, Tensor]:
    """2nd (P10 fixed): indices of the lower floor(N/2) and upper ceil(N/2) scores, ties broken by
    batch position, so the two sets are disjoint."""
    order = torch.sort(scores.detach(), stable=True).indices
    half = len(order) // 2
    return order[:half], order[half:]


def score_split_contrastive(z: Tensor, scores: Tensor, tau: float, w_low_high: float, w_high_low: float) -> Tensor:
    low, high = rank_split(scores)
    if len(low) < 2 or len(high) < 2:
        return z.sum() * 0.0
    z_l, z_h = z[low], z[high]
    lh = z_l @ z_h.t() / tau
    return w_low_high * info_nce(lh, self_similarity(z_l, tau)) + w_high_low * info_nce(
        lh.t(), self_similarity(z_h, tau)
    )


def group_aware_contrastive(
    z_d: Tensor, z_a: Tensor, s_d: Tensor, s_a: Tensor, tau: float, alpha: float, w_forward: float, w_backward: float
) -> Tensor:
    """3rd: d->a InfoNCE whose logits get ``alpha * log(0.5 + sigmoid(5 (s_a_j - s_d_i)))`` (scores
    detached), plus the unweighted a->d direction when there are at least two advantaged images."""
    sim = z_d @ z_a.t() / tau
    weight = 0.5 + torch.sigmoid(5 * (s_a.detach()[None, :] - s_d.detach()[:, None]))
    forward = info_nce(sim + alpha * torch.log(weight + 1e-8), self_similarity(z_d, tau))
    backward = info_nce(sim.t(), self_similarity(z_a, tau)) if len(z_a) >= 2 else sim.sum() * 0.0
    return w_forward * forward + w_backward * backward


def anchor_infonce(z_d: Tensor, z_a: Tensor, tau: float) -> Tensor:
    """4th: d->a InfoNCE with the advantaged projections detached (targets, not learners)."""
    return info_nce(z_d @ z_a.detach().t() / tau, self_similarity(z_d, tau))


def feature_mean_alignment(h_d: Tensor, h_a: Tensor) -> Tensor:
    """4th: MSE between the mean decoder feature of each group ``(N, Q, D)``; advantaged detached."""
    if len(h_d) == 0 or len(h_a) == 0:
        return h_d.sum() * 0.0
    return F.mse_loss(h_d.float().mean(dim=(0, 1)), h_a.detach().float().mean(dim=(0, 1)))


# ----------------------------------------------------------------------------- strategies


def need_anchors_and_targets(groups: Tensor) -> str | None:
    """3rd/4th skip rule: InfoNCE needs two disadvantaged anchors and one advantaged target."""
    n_d, n_a = count_groups(groups)
    return "fewer than 2 disadvantaged or no advantaged image" if n_d < 2 or n_a < 1 else None


def _score_terms(s: Tensor, d: Tensor, a: Tensor) -> dict[str, Tensor]:
    s = s.detach()
    s_d = s[d].mean() if len(d) else s.new_tensor(float("nan"))
    s_a = s[a].mean() if len(a) else s.new_tensor(float("nan"))
    return {"score_dis": s_d, "score_adv": s_a, "score_gap": s_a - s_d}


class CrossGroupInfoNCE(LossStrategy):
    """1st. ``L = l_c * NCE + l_w * W(matched scores) + beta * L_det``."""

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
        return LossOutput(total, {"loss_contrastive": nce, "loss_wasserstein": wass, **_score_terms(s, d, a)})


class ScoreSplitInfoNCE(LossStrategy):
    """2nd. Group-blind low/high InfoNCE on image scores + W(matched) when both groups are present."""

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
                **_score_terms(s, d, a),
            },
        )


class GroupAwareInfoNCE(LossStrategy):
    """3rd. Adaptive-weight d->a InfoNCE (+ a->d) + W(image scores) + beta * L_det."""

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
        return LossOutput(total, {"loss_contrastive": con, "loss_wasserstein": wass, **_score_terms(s, d, a)})


class AnchorAlignedInfoNCE(LossStrategy):
    """4th. ``l_c * w_c(e) * NCE(d->sg(a)) + l_align * align + l_w * W(image scores) + beta * L_det``."""

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
                **_score_terms(s, d, a),
            },
        )
