"""Across-seed aggregation (``faapkit.evaluate.across_seeds``): spreads, t-CIs, significant seeds,
and compare's grouping of runs that differ only in ``train.seed``."""

from __future__ import annotations

import pytest
from scipy import stats

from faapkit.compare.columns import seed_cells
from faapkit.evaluate.across_seeds import aggregate, seed_groups, spread


def test_spread_gives_median_range_and_the_t_interval_of_the_mean():
    s = spread([0.2, 0.5, 0.3, 0.4, 0.6])
    assert (s["n"], s["median"], s["min"], s["max"]) == (5, 0.4, 0.2, 0.6)
    lo, hi = stats.t.interval(0.95, 4, loc=0.4, scale=stats.sem([0.2, 0.5, 0.3, 0.4, 0.6]))
    assert s["ci"] == pytest.approx([lo, hi])
    assert spread([0.3])["ci"] is None and spread([])["median"] is None
    assert spread([0.1, float("nan"), 0.3])["n"] == 2  # a non-finite value is no seed's result


def test_the_prediction_interval_covers_one_more_run_and_is_wider_than_the_ci():
    values = [0.2, 0.5, 0.3, 0.4, 0.6]
    s = spread(values)
    sd = stats.tstd(values)
    lo, hi = stats.t.interval(0.95, 4, loc=0.4, scale=sd * (1 + 1 / 5) ** 0.5)
    assert s["predict"] == pytest.approx([lo, hi])
    assert s["predict"][0] < s["ci"][0] and s["predict"][1] > s["ci"][1]
    assert spread([0.3])["predict"] is None
    # coverage: of many new draws from the seeds' distribution, about 95% land inside
    rng = __import__("random").Random(0)
    inside = 0
    for _ in range(2000):
        xs = [rng.gauss(0.1, 0.03) for _ in range(6)]
        p = spread(xs[:5])["predict"]
        inside += p[0] <= xs[5] <= p[1]
    assert 0.93 <= inside / 2000 <= 0.97


def _seed(seed, change, ci, before=0.15, adv=0.001):
    after = before + change
    return {
        "seed": seed,
        "change": change,
        "change_ci": ci,
        "significant": ci[0] > 0 or ci[1] < 0,
        "gap_before": before,
        "share_closed": 1 - abs(after) / before,
        "overshoot": after < 0,
        "advantaged_change": adv,
    }


def test_aggregate_counts_only_seeds_whose_own_ci_says_the_gap_closed():
    rows = [
        _seed(0, -0.06, [-0.08, -0.04]),
        _seed(1, -0.02, [-0.05, 0.01]),  # not significant
        _seed(2, 0.03, [0.01, 0.05]),  # significant, but the gap widened
        _seed(3, -0.18, [-0.2, -0.16]),  # overshoot
    ]
    a = aggregate(rows)
    assert a["significant"] == 3 and a["significant_closing"] == 2 and a["overshoot"] == 1
    # shares 0.4, 0.133, -0.2 and 0.8 (the overshoot counts by its size, never as 1.2)
    assert a["share_closed"]["median"] == pytest.approx((0.4 + 0.02 / 0.15) / 2)
    assert a["change"]["min"] == -0.18 and a["change"]["max"] == 0.03


def _row(run, seed, change, key="k", epoch=10, selected=10):
    return {
        "run": run,
        "run_path": f"/x/set/{run}",
        "seed": seed,
        "config_key": key,
        "setting": "perturbed",
        "split": "test",
        "dataset": "d",
        "epoch": epoch,
        "selected_epoch": selected,
        "version": "level-up",
        "AP_gap_baseline": 0.15,
        "AP_gap_change": change,
        "AP_change_ci": [change - 0.02, change + 0.02],
        "AP_significant": abs(change) > 0.02,
        "AP_share_closed": -change / 0.15,
        "AP_overshoot": False,
        "AP_advantaged_change": 0.0,
    }


def test_compare_groups_runs_that_differ_only_in_seed():
    rows = [_row("seed-0", 0, -0.06), _row("seed-1", 1, -0.03, epoch=7, selected=7), _row("seed-2", 2, -0.01)]
    rows += [_row("other", 0, -0.09, key="k2")]  # another configuration, one seed: no aggregate
    rows += [_row("seed-0-e3", 0, -0.01, epoch=3)]  # another checkpoint choice of seed 0: its own group
    (agg,) = seed_groups(rows)
    assert agg["seeds"] == [0, 1, 2] and agg["checkpoint"] == "chosen on val"
    assert agg["change"]["median"] == -0.03 and agg["significant_closing"] == 2
    assert agg["share_closed"]["median"] == pytest.approx(0.2)


def test_seeds_evaluated_at_another_epsilon_or_on_other_groups_are_not_one_configuration():
    """``faap eval seed-0 --epsilon 0.1`` beside seed-1's default evaluation was aggregated as if the
    two were seeds of one configuration; so were evaluations on other groups."""
    base = {"epsilon": 0.05, "gap_groups": ["gender", "female", "male"]}
    rows = [{**_row("seed-0", 0, -0.06), **base, "epsilon": 0.1}, {**_row("seed-1", 1, -0.03), **base}]
    assert seed_groups(rows) == []
    rows = [{**_row("seed-0", 0, -0.06), **base, "gap_groups": ["age", "old", "young"]}]
    assert seed_groups([*rows, {**_row("seed-1", 1, -0.03), **base}]) == []
    (agg,) = seed_groups([{**_row("seed-0", 0, -0.06), **base}, {**_row("seed-1", 1, -0.03), **base}])
    assert agg["seeds"] == [0, 1]


def test_evaluations_through_a_codec_are_another_row_never_more_seeds():
    """Each seed evaluated on floats and through JPEG 95 (``faap eval --codec``) was pooled as four
    seeds of one configuration, mixing a closing effect with a widening one."""
    base = {"epsilon": 0.05, "gap_groups": ["gender", "female", "male"]}
    rows = [
        {**_row(f"seed-{s}", s, change), **base, **codec}
        for s in (0, 1)
        for change, codec in ((-0.06, {}), (+0.05, {"codec": "jpeg:95"}))
    ]
    sets = seed_groups(rows)
    assert len(sets) == 2 and all(agg["seeds"] == [0, 1] for agg in sets)
    assert sorted(agg["change"]["median"] for agg in sets) == [-0.06, 0.05]
    assert sorted(seed_cells(agg)["checkpoint"] for agg in sets) == ["chosen on val", "chosen on val, codec jpeg:95"]


def test_evaluations_at_two_epsilons_with_equal_numbers_are_two_rows():
    """A larger --epsilon the generator never reaches gives the same numbers; it was merged away
    as 'the same evaluation' of the other epsilon."""
    from faapkit.compare import merge_copies
    from faapkit.compare.records import RunRecord

    m = {"female": {"AP": 0.5}, "male": {"AP": 0.8}}
    a = RunRecord(run="r", path="a.json", split="test", epoch=0, epsilon=0.05, perturbed=m, baseline=m)
    kept, notes = merge_copies([a, a.model_copy(update={"path": "b.json", "epsilon": 0.1})])
    assert len(kept) == 2 and not notes
    kept, notes = merge_copies([a, a.model_copy(update={"path": "c.json"})])
    assert len(kept) == 1 and notes  # a copy is still one row
    from faapkit.compare.columns import tsv

    assert "epsilon" not in tsv([{"run": "r", "epsilon": 0.05}, {"run": "r", "setting": "train only"}], False)
    table = tsv([{"run": "r", "epsilon": 0.05}, {"run": "r", "epsilon": 0.1}], False).splitlines()
    assert "epsilon" in table[0].split("\t") and "0.1000" in table[2]


def test_two_runs_of_one_seed_both_count():
    """The same command run twice is two samples (CPU float trajectories differ), never one dropped."""
    rows = [_row("a/seed-0", 0, -0.06), _row("b/seed-0", 0, -0.02), _row("a/seed-1", 1, -0.04)]
    (agg,) = seed_groups(rows)
    assert agg["seeds"] == [0, 0, 1] and agg["change"]["n"] == 3 and agg["change"]["median"] == -0.04


@pytest.mark.parametrize(
    ("ids", "rows"),
    [
        ((("run-1", None), ("run-2", None)), 2),  # two seeds' run folders with equal numbers
        (((None, "run-1"), (None, "run-2")), 2),  # two loose files of two runs
        ((("run-1", None), (None, "run-2")), 2),  # a run folder and a loose file of another run
        ((("run-1", None), ("run-1", None)), 1),  # a copied run folder: one evaluation
        ((("run-1", None), (None, "run-1")), 1),  # a file copied out of its run's eval/
        (((None, None), ("run-2", None)), 1),  # an older file that names no run: a copy, as before
    ],
)
def test_equal_numbers_of_two_runs_are_two_evaluations(ids, rows):
    """Two seeds whose evaluations gave equal numbers (a generator that changed nothing on these
    images) were merged as 'the same evaluation', so compare's across-seeds row counted 2 of 3
    seeds while faap eval SEEDSET counted 3. Records of two run ids are two samples."""
    from faapkit.compare.merging import merge_copies
    from faapkit.compare.records import RunRecord

    m = {"female": {"AP": 0.5}, "male": {"AP": 0.8}}
    records = [
        RunRecord(
            run=f"seed-{i}",
            path=f"s{i}/eval/x.json",
            run_path=f"s{i}",
            split="test",
            epoch=0,
            perturbed=m,
            baseline=m,
            run_id=run_id,
            evaluated_run_id=evaluated,
        )
        for i, (run_id, evaluated) in enumerate(ids)
    ]
    kept, notes = merge_copies(records)
    assert len([r for r in kept if r.perturbed]) == rows
    assert bool(notes) == (rows == 1)


def test_of_two_copies_the_one_whose_numbers_pass_the_checks_is_kept():
    """A run copied, one copy's gaps then edited by hand: the row shown was the edited copy's."""
    from faapkit.compare.merging import merge_copies
    from faapkit.compare.records import RunRecord

    m = {"female": {"AP": 0.5}, "male": {"AP": 0.8}}
    clean = RunRecord(run="b", path="b/eval/x.json", run_path="b", split="test", epoch=0, perturbed=m, run_id="r")
    edited = clean.model_copy(update={"run": "a", "path": "a/eval/x.json", "run_path": "a", "flags": ["edited"]})
    kept, _ = merge_copies([edited, clean])
    assert [r.path for r in kept if r.perturbed] == ["b/eval/x.json"] and kept[0].flags is None


@pytest.mark.parametrize("n_seeds", [2, 3])
def test_eval_of_a_seed_set_in_a_pipe_still_says_the_spread(capsys, n_seeds):
    """Off a terminal, faap eval SEEDSET printed the per-seed TSV only: the median, the t-CI across
    seeds and the prediction interval of one more run were nowhere but in --json."""
    import io

    from rich.console import Console

    from faapkit.cli.eval_table import show_seeds
    from faapkit.evaluate.command.result_rows import SEED_COLUMNS

    rows = [_seed(s, -0.02 * (s + 1), [-0.05, 0.01]) for s in range(n_seeds)]
    show_seeds(rows, aggregate(rows), Console(file=io.StringIO(), force_terminal=False))
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split("\t")[: len(SEED_COLUMNS)] == list(SEED_COLUMNS) and len(lines) == 1 + n_seeds
    assert "prediction interval" in err and "t-CI across seeds" in err and f"of {n_seeds} seeds" in err


def test_a_seed_whose_numbers_fail_compare_s_checks_is_left_out_of_the_spread_and_said():
    """An edited seed's metrics entered the across-seed row; the flag was only on stderr."""
    from faapkit.compare.columns import seed_cells

    rows = [_row("seed-0", 0, -0.06), {**_row("seed-1", 1, -0.90), "flags": ["edited"]}, _row("seed-2", 2, -0.02)]
    rows[0]["flags"] = ["unverified"]  # written before the hash: not checked, still counted
    (agg,) = seed_groups(rows)
    assert agg["seeds"] == [0, 2] and agg["of"] == 3 and agg["change"]["n"] == 2
    assert agg["change"]["median"] == pytest.approx(-0.04)
    assert agg["left_out"] == ["seed 1 (edited: seed-1)"]
    assert seed_cells(agg)["seeds"] == "2 of 3 (0,2); left out: seed 1 (edited: seed-1)"


def test_the_spread_lines_say_n_of_n_and_each_seed_left_out():
    from faapkit.evaluate.command.result_rows import seeds_summary

    summary = aggregate([{"seed": 0, "change": -0.05}, {"seed": 2, "change": -0.03}], 0.95, ["seed 1 (no evaluation)"])
    assert seeds_summary(summary)[0] == "over 2 of 3 seeds; left out: seed 1 (no evaluation)"
