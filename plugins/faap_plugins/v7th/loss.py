"""The 7th version's loss (baseline): an adversarial game against a group discriminator on decoder
features ``(B, Q, D)``, plus one-way Wasserstein alignment of matched scores and detection."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faapkit.plugin_api import (
    DistInfo,
    LossInputs,
    LossOutput,
    LossStrategy,
    average_gradients,
    matched_scores,
    wasserstein_1d_asymmetric,
)


def discriminator_labels(groups: Tensor) -> Tensor:
    """Disadvantaged -> 1, advantaged -> 0 (the research labels: female = 1, male = 0)."""
    return (groups == 0).long()


def fairness_term(logits: Tensor, labels: Tensor, entropy_alpha: float) -> Tensor:
    """``-(CE(logits, y) + alpha * H(softmax(logits)))`` for one group's images ``(N, 2)``."""
    p = logits.float().softmax(-1)
    entropy = -(p * torch.log(p + 1e-8)).sum(-1).mean()
    return -(F.cross_entropy(logits.float(), labels) + entropy_alpha * entropy)


class AdversarialGroupLoss(LossStrategy):
    """The discriminator (the version's head) is trained ``k_d`` times per step on detached features
    computed once (P13), with its own Adam; during the generator loss its parameters are frozen so
    the generator's backward leaves them untouched."""

    head_in_generator_optimizer = False

    def __init__(
        self,
        lambda_fair: float,
        fair_disadvantaged_scale: float,
        fair_advantaged_scale: float,
        entropy_alpha: float,
        lambda_wass: float,
        k_d: int,
        lr_d: float,
    ) -> None:
        self.lf, self.fd, self.fa = lambda_fair, fair_disadvantaged_scale, fair_advantaged_scale
        self.alpha, self.lw, self.k_d, self.lr_d = entropy_alpha, lambda_wass, k_d, lr_d
        self.head: nn.Module | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.dist = DistInfo()

    def attach(self, head: nn.Module | None, device: torch.device, dist_info: DistInfo | None = None) -> None:
        if head is None:
            raise ValueError("the adversarial loss needs a discriminator head")
        self.head = head
        self.dist = dist_info or DistInfo()
        self.opt = torch.optim.Adam(head.parameters(), lr=self.lr_d)

    def _set_trainable(self, flag: bool) -> None:
        assert self.head is not None
        for p in self.head.parameters():
            p.requires_grad_(flag)

    def before_generator_step(self, x: LossInputs) -> dict[str, float]:
        assert self.head is not None and self.opt is not None
        mask = x.groups >= 0
        if not bool(mask.any()):
            return {}
        feats = x.features.detach().float()[mask]
        labels = discriminator_labels(x.groups[mask])
        present = [g for g in (0, 1) if bool((x.groups[mask] == g).any())]
        self._set_trainable(True)
        loss = feats.new_zeros(())
        for _ in range(self.k_d):
            logits = self.head(feats)
            # mean over the groups present of each group's CE, as the research code did
            loss = torch.stack(
                [F.cross_entropy(logits[labels == (1 - g)], labels[labels == (1 - g)]) for g in present]
            ).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            # each rank trains on its own batch; averaging keeps the replicas identical under DDP
            average_gradients(self.head.parameters(), self.dist)
            self.opt.step()
        return {"d_loss": float(loss.detach())}

    def __call__(self, x: LossInputs) -> LossOutput:
        assert self.head is not None
        self._set_trainable(False)
        d, a = x.index(0), x.index(1)
        fair = x.detection.new_zeros(())
        terms: dict[str, Any] = {}
        for idx, scale, name in ((d, self.fd, "fair_dis"), (a, self.fa, "fair_adv")):
            if len(idx):
                logits = self.head(x.features[idx].float())
                term = fairness_term(logits, discriminator_labels(x.groups[idx]), self.alpha)
                fair = fair + scale * term
                terms[name] = term
        wass = wasserstein_1d_asymmetric(
            matched_scores(x.logits, x.targets, x.indices, d), matched_scores(x.logits, x.targets, x.indices, a)
        )
        total = self.lf * fair + x.weights["beta"] * x.detection + self.lw * wass
        return LossOutput(total, {"loss_fair": fair, "loss_wasserstein": wass, **terms})

    def state_dict(self) -> dict[str, Any]:
        return {"opt_d": self.opt.state_dict()} if self.opt is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.opt is not None and "opt_d" in state:
            self.opt.load_state_dict(state["opt_d"])
