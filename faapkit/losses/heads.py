"""Trainable heads on decoder features ``h (B, Q, D)``."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SimCLRProjectionHead(nn.Module):
    """``mean_q h -> Linear(D, hidden) -> ReLU -> Linear(hidden, out) -> L2 norm``: ``(B, out)``.
    Keys ``net.0``, ``net.2`` (research 1st-3rd); 98,688 parameters at D=256."""

    def __init__(self, feature_dim: int, hidden_dim: int = 256, out_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(feature_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, h: Tensor) -> Tensor:
        return F.normalize(self.net(h.mean(dim=1)), p=2, dim=-1)


class StabilizedProjectionHead(nn.Module):
    """``mean_q h -> LayerNorm -> Linear -> ReLU -> Dropout -> Linear -> L2 norm``: ``(B, out)``.
    Keys ``net.0`` (LN), ``net.1``, ``net.4`` (research 4th); 99,200 parameters at D=256."""

    def __init__(self, feature_dim: int, hidden_dim: int = 256, out_dim: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(feature_dim),
            nn.Linear(feature_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, h: Tensor) -> Tensor:
        return F.normalize(self.net(h.mean(dim=1)), p=2, dim=-1)


class GroupDiscriminator(nn.Module):
    """``mean_q h -> LN -> Linear -> ReLU -> Linear -> ReLU -> Linear(num_groups)``: logits ``(B, G)``.
    Keys ``net.0, net.1, net.3, net.5`` (research ``GenderDiscriminator``; 132,610 parameters)."""

    def __init__(self, feature_dim: int, hidden_dim: int = 256, num_groups: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(feature_dim),
            nn.Linear(feature_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, num_groups),
        )

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h.mean(dim=1))
