"""Top-level commands ``train``, ``eval`` and ``compare``: thin wrappers over faapkit.core."""

from __future__ import annotations

import typer

from faapkit.errors import FaapError


def _missing(what: str, issue: int) -> FaapError:
    return FaapError(f"'{what}' is not available in this build yet (tracked in issue #{issue})")


def train(ctx: typer.Context) -> None:
    """Train a perturbation generator with a method version (not yet available)."""
    raise _missing("faap train", 5)


def evaluate(ctx: typer.Context) -> None:
    """Per-group COCO AP/AR of baseline and perturbed inputs (not yet available)."""
    raise _missing("faap eval", 6)


def compare(ctx: typer.Context) -> None:
    """Put many runs side by side (not yet available)."""
    raise _missing("faap compare", 6)
