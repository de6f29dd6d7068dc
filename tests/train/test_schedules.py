"""Schedules against the research code's per-epoch tables (docs/research-defaults.md)."""

import pytest
import torch

from faapkit.train import schedules as S
from tests.conftest import fixture_path


def test_tables_T24():
    table = torch.load(fixture_path("losses", "losses_expected.pt"), weights_only=True)["schedules_T24"]
    T = 24
    for e in range(T):
        assert S.three_phase_to_end(e, T, start=0.05, peak=0.10, final=0.09, warmup=6, hold=6) == pytest.approx(
            table["v4_epsilon"][e]
        )
        assert S.linear_warmup(e, T, epochs=3) == pytest.approx(table["v4_contrastive_warmup"][e])
        assert S.linear(e, T, start=0.5, end=0.6) == pytest.approx(table["beta"][e])
        assert S.three_phase(e, T, start=0.05, peak=0.10, final=0.09, warmup=8, hold=6, cooldown=10) == pytest.approx(
            table["v1_epsilon"][e]
        )
        assert 1e-4 * S.warmup_cosine(e, T, warmup=2, min_factor=0.01) == pytest.approx(table["v4_cosine_lr"][e])


def test_spec_quirks_and_fixed_variants():
    assert S.three_phase(7, 24, start=0.05, peak=0.1, final=0.09, warmup=8, hold=6, cooldown=10) == pytest.approx(0.1)
    assert S.three_phase_to_end(23, 24, start=0.05, peak=0.1, final=0.09, warmup=6, hold=6) == pytest.approx(
        0.090833, abs=1e-6
    )
    assert S.three_phase_to_end(
        23, 24, start=0.05, peak=0.1, final=0.09, warmup=6, hold=6, legacy=False
    ) == pytest.approx(0.09)
    assert S.three_phase(
        8, 24, start=0.05, peak=0.1, final=0.09, warmup=8, hold=6, cooldown=10, legacy=False
    ) == pytest.approx(0.1)
    assert S.linear(0, 1, start=0.5, end=0.6) == 0.5


def test_version_schedules_resolve(registries):
    from faapkit.config import resolve_config

    cfg = resolve_config(registries, version="4th")
    eps = registries.schedules.get(cfg.schedules["epsilon"]["name"])
    opts = {k: v for k, v in cfg.schedules["epsilon"].items() if k != "name"}
    assert [round(eps.value(e, 24, opts), 6) for e in (0, 6, 23)] == [0.05, 0.1, 0.090833]
    cfg3 = resolve_config(registries, version="3rd")
    assert cfg3.schedules["epsilon"] == {"name": "constant", "value": 0.1}
