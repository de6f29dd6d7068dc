"""Which columns a ``faap compare`` table shows at a width (``faapkit.compare.layout``), without Rich."""

from __future__ import annotations

from faapkit.compare.columns import columns
from faapkit.compare.layout import RUN_MIN, column_widths, fit, needed_width

ROWS = [
    {"run": f"run-{i}", "version": "v", "epoch": i, "split": "test", "setting": "perturbed", "AP_female": 0.5,
     "AP_male": 0.7, "AR_female": 0.6, "AR_male": 0.8, "AP_gap": 0.2, "AP_gap_change": -0.01}
    for i in range(2)
]  # fmt: skip


def test_a_wide_terminal_shows_every_column_and_shared_values_go_to_the_title():
    title, cols, dropped = fit(ROWS, "runs", 500)
    assert title == "runs (2 rows; version v, split test, setting perturbed)" and not dropped
    assert [c.key for c in cols] == [
        "run",
        "epoch",
        "AP_female",
        "AP_male",
        "AR_female",
        "AR_male",
        "AP_gap",
        "AP_gap_change",
    ]


def test_a_narrow_terminal_leaves_out_the_least_needed_columns_a_priority_at_once():
    _, cols, dropped = fit(ROWS, "runs", 40)
    assert dropped == ["AR female", "AR male", "AP female", "AP male"]  # priority 4, then 1
    assert needed_width(column_widths(ROWS, cols)) <= 40 or not any(c.priority for c in cols)
    _, essential, _ = fit(ROWS, "runs", 1)  # too narrow even for these: kept, never cut
    assert [c.key for c in essential] == ["run", "epoch", "AP_gap", "AP_gap_change"]


def test_numbers_have_fixed_widths_and_only_the_run_name_wraps():
    rows = [{"run": "r" * 50, "AP_gap": 0.25}]
    spans = dict(zip([c.key for c in columns(rows)], column_widths(rows, columns(rows)), strict=True))
    assert spans["run"] == (RUN_MIN, 50) and spans["AP_gap"] == (7, 7)  # "+0.2500"
