"""Loss pieces shared by several versions (pinned to the research code by golden tests); each
version's own loss is in its plugin (`plugins/faap_plugins/v*/loss.py`), built on these."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from faapkit.detr.matcher import Indices
from faapkit.detr.views import query_confidence
from faapkit.losses.base import count_groups


def image_scores(pred_logits: Tensor, top_k: int) -> Tensor:
    """``(B, Q, C+1) -> (B,)``: mean of the ``top_k`` highest per-query max class probabilities
    (no-object excluded); all queries when ``top_k <= 0`` or ``top_k >= Q``."""
    probs = query_confidence(pred_logits)
    q = probs.shape[-1]
    if top_k <= 0 or top_k >= q:
        return probs.mean(-1)
    return probs.topk(top_k, dim=-1).values.mean(-1)


def matched_scores(pred_logits: Tensor, targets: list[dict[str, Tensor]], indices: Indices, images: Tensor) -> Tensor:
    """Probability of the ground-truth class for every matched (query, box) pair of ``images``:
    1-D, one entry per box. Reuses the criterion's matching (research P14)."""
    probs = pred_logits.float().softmax(-1)
    parts = []
    for b in images.tolist():
        q, t = indices[b]
        if len(q):
            labels = targets[b]["labels"][t.to(targets[b]["labels"].device)]
            parts.append(probs[b, q.to(probs.device), labels])
    return torch.cat(parts) if parts else probs.new_zeros(0)


def _resample_sorted(v: Tensor, k: int) -> Tensor:
    n = v.numel()
    if n == k:
        return v
    pos = torch.linspace(0, n - 1, k, device=v.device, dtype=v.dtype)
    lo = pos.floor().long()
    hi = pos.ceil().long()
    w = pos - lo.to(v.dtype)
    return v[lo] * (1 - w) + v[hi] * w


def wasserstein_1d_asymmetric(scores_disadv: Tensor, scores_adv: Tensor) -> Tensor:
    """One-way 1-D Wasserstein: ``mean_k relu(sorted(adv)_k - sorted(disadv)_k)`` after resampling
    both sorted vectors to the longer length. The advantaged side is detached; 0 if either is empty."""
    if scores_disadv.numel() == 0 or scores_adv.numel() == 0:
        return scores_disadv.sum() * 0.0
    a = scores_disadv.sort().values
    b = scores_adv.detach().sort().values
    k = max(a.numel(), b.numel())
    return F.relu(_resample_sorted(b, k) - _resample_sorted(a, k)).mean()


def self_similarity(z: Tensor, tau: float) -> Tensor:
    """``z z^T / tau`` with the diagonal at -inf (an anchor is never its own negative)."""
    sim = z @ z.t() / tau
    return sim.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))


def info_nce(positives: Tensor, negatives: Tensor) -> Tensor:
    """Multi-positive InfoNCE per anchor row: ``-(LSE(pos) - LSE(pos ++ neg))``, averaged over rows.
    ``positives (N, P)``, ``negatives (N, K)`` (rows may hold -inf)."""
    return -(torch.logsumexp(positives, 1) - torch.logsumexp(torch.cat([positives, negatives], 1), 1)).mean()


def score_terms(s: Tensor, d: Tensor, a: Tensor) -> dict[str, Tensor]:
    """Logged terms of image scores ``s (B,)`` (detached): each group's mean and their gap (nan
    for a group absent from the batch); ``d``/``a`` index the disadvantaged/advantaged images."""
    s = s.detach()
    s_d = s[d].mean() if len(d) else s.new_tensor(float("nan"))
    s_a = s[a].mean() if len(a) else s.new_tensor(float("nan"))
    return {"score_dis": s_d, "score_adv": s_a, "score_gap": s_a - s_d}


def need_anchors_and_targets(groups: Tensor) -> str | None:
    """Skip rule of an InfoNCE with disadvantaged anchors and advantaged targets (3rd, 4th): it
    needs two disadvantaged anchors and one advantaged target."""
    n_d, n_a = count_groups(groups)
    return "fewer than 2 disadvantaged or no advantaged image" if n_d < 2 or n_a < 1 else None
