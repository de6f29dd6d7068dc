"""The benchmarks' ``effect`` section at a tiny budget: the real engine trains level-up with each
generator, the final generators are scored on val, and the tables hold real numbers (no timing
is asserted: the machine is shared)."""

from __future__ import annotations

import math

import pytest

from benchmarks.effect import LABELS, section_effect
from benchmarks.run import REG, print_table
from benchmarks.spread import Spread


def test_spread_is_min_median_max():
    assert Spread.of([3.0, 1.0, 2.0]) == Spread(1.0, 2.0, 3.0)
    assert str(Spread.of([0.5, 0.5])) == "0.5"
    with pytest.raises(ValueError):
        Spread.of([])


def test_effect_section_trains_through_the_engine_and_scores_on_val(capsys):
    import torch

    generators = ("subpixel", "unet16")
    rows, ratios = section_effect(
        REG, torch.device("cpu"), seconds=1e9, repeats=1, generators=generators, max_steps=2, val_images=8
    )
    by = {(r["generator"], r["measure"]): r for r in rows}
    for row in rows:
        values = [row["min"], row["median"], row["max"]]
        assert all(isinstance(v, float) and math.isfinite(v) for v in values), row
        assert row["min"] == row["median"] == row["max"], row  # one repeat (Spread's order: the test above)
    base = {m: by[("none (unperturbed)", f"{m} (val, 8 images)")]["median"] for m in ("female AP", "male AP")}
    assert all(0.0 <= v <= 1.0 for v in base.values())
    for g in generators:
        label = LABELS[g]
        assert by[(label, "steps")]["min"] == by[(label, "steps")]["max"] == 2.0  # train.max_steps ends it
        assert by[(label, "train seconds")]["min"] > 0
        assert by[(label, "train img/s")]["min"] > 0
        for group in ("female", "male"):
            ap = by[(label, f"{group} AP")]
            assert 0.0 <= ap["min"] <= ap["max"] <= 1.0
            change = by[(label, f"{group} AP change")]
            assert change["median"] == pytest.approx(ap["median"] - base[f"{group} AP"], abs=1e-12)
        expected = {
            "train img/s",
            "steps",
            "train seconds",
            "female AP",
            "male AP",
            "female AP change",
            "male AP change",
            "gap AP change (negative: fairer)",
            "female AP lift per 100 s",
        }
        assert {m for (g_, m) in by if g_ == label} == expected
    # each generator trained for real: the 2 steps moved the perturbation off the clean image
    assert any(by[(LABELS[g], "female AP change")]["max"] != 0.0 for g in generators)
    assert [r["ratio"] for r in ratios] == [
        f"train img/s: {LABELS['subpixel']} / {LABELS['unet16']}",
        f"female AP lift per 100 s: {LABELS['subpixel']} / {LABELS['unet16']}",
    ]
    assert ratios[0]["min"] is not None and ratios[0]["min"] > 0
    print_table("effect", rows)
    out = capsys.readouterr().out
    assert "min" in out and "median" in out and "max" in out and LABELS["unet16"] in out
