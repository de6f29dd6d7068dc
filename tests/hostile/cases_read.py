"""Hostile cases of the commands that read results or look inside: ``compare``, ``report``,
``inspect``, ``probe``, ``data synth``, ``detector pretrain`` and ``config show``."""

from __future__ import annotations

import json
import shutil
import tomllib

from tests.hostile.kit import (
    Case,
    Ctx,
    Refused,
    Works,
    cli,
    edit_json,
    ok,
    record_detections_sha,
    rehash,
    scale_scores,
    truncate,
)


def _cmp_json(ctx: Ctx, *paths: object) -> list[str]:
    return cli("compare", *paths, "--json")


def _rows(out: str) -> list[dict]:
    return json.loads(out)["rows"]


def _some_rows(ctx: Ctx, out: str, err: str) -> None:
    assert _rows(out), err


def _nan_ap(ctx: Ctx) -> list[str]:
    def nan(m: dict) -> None:
        group = next(iter(m["metrics"]["perturbed"]))
        m["metrics"]["perturbed"][group]["AP"] = float("nan")

    edit_json(ctx.metrics(), nan)
    return _cmp_json(ctx, ctx.run())


def _left_out(name: str):
    def check(ctx: Ctx, out: str, err: str) -> None:
        assert name in err, err
        assert not any(name in json.dumps(r) for r in _rows(out)), "the file is still a row"

    return check


def _flagged(flag: str):
    def check(ctx: Ctx, out: str, err: str) -> None:
        assert any(flag in json.dumps(r.get("flags", "")) for r in _rows(out)), err

    return check


def _edit_ap(ctx: Ctx) -> list[str]:
    def lift(m: dict) -> None:
        group = next(iter(m["metrics"]["perturbed"]))
        m["metrics"]["perturbed"][group]["AP"] += 0.1

    edit_json(ctx.metrics(), lift)
    return _cmp_json(ctx, ctx.run())


def _foreign_metrics(ctx: Ctx) -> list[str]:
    shutil.copy(ctx.seed_metrics(0), ctx.run() / "eval" / "test_gender_epoch_0009.json")
    return _cmp_json(ctx, ctx.run())


def _exported_row(ctx: Ctx) -> list[str]:
    ok("eval", ctx.run(), "--exported", ctx.exported("onnx"), "--bootstrap", "0", "--quiet")
    return _cmp_json(ctx, ctx.run())


def _marks_exported(ctx: Ctx, out: str, err: str) -> None:
    rows = _rows(out)
    assert len(rows) >= 2, rows
    # paths are left out: the case's own folder names say "export" already
    marked = [r for r in rows for k, v in r.items() if "export" in k.lower() or _says_export(v)]
    assert marked, "no row says it scored an exported file"


def _says_export(value) -> bool:
    if isinstance(value, str):
        return "export" in value.lower() and "/" not in value
    if isinstance(value, list):
        return any(_says_export(v) for v in value)
    return isinstance(value, dict) and any("export" in k.lower() or _says_export(v) for k, v in value.items())


def _codec_row(ctx: Ctx) -> list[str]:
    ok("eval", ctx.run(), "--codec", "jpeg:90", "--bootstrap", "0", "--quiet")
    return _cmp_json(ctx, ctx.run())


def _has_codec(ctx: Ctx, out: str, err: str) -> None:
    assert any("jpeg" in json.dumps(r).lower() for r in _rows(out)), out[:500]


def _edited_seed(ctx: Ctx) -> list[str]:
    def lift(m: dict) -> None:
        for group in m["metrics"]["perturbed"]:
            m["metrics"]["perturbed"][group]["AP"] += 0.2

    edit_json(ctx.seed_metrics(1), lift)
    return cli("compare", ctx.seedset(), "--json")


def _edited_seed_kept_out(ctx: Ctx, out: str, err: str) -> None:
    groups = json.loads(out)["across_seeds"]
    assert all(g.get("flags") or len(g.get("seeds", [])) < 2 for g in groups), (
        "an edited seed's metrics entered the across-seed row unflagged"
    )


def _two_configs(ctx: Ctx) -> list[str]:
    edit_json(ctx.seedset() / "seed-1" / "run.json", lambda m: m["config"]["train"].__setitem__("lr", 0.5))
    return cli("compare", ctx.seedset(), "--json")


def _kept_apart(ctx: Ctx, out: str, err: str) -> None:
    assert all(len(g.get("seeds", [])) < 2 for g in json.loads(out)["across_seeds"]), out[:800]


def _rescore_chain_parent_gone(ctx: Ctx) -> list[str]:
    m = ctx.metrics()
    ok("eval", "--rescore", m, "--bootstrap", "10", "--seed", "1", "--quiet")
    (first,) = [p for p in (ctx.run() / "eval").glob("*.json") if p != m]
    ok("eval", "--rescore", first, "--bootstrap", "11", "--seed", "2", "--quiet")
    first.unlink()
    return _cmp_json(ctx, ctx.run())


def _one_test_row(ctx: Ctx, out: str, err: str) -> None:
    tests = [r for r in _rows(out) if r.get("split") == "test" and not r.get("summary")]
    assert len(tests) == 1, f"{len(tests)} rows of one evaluation: {[r.get('file') or r.get('path') for r in tests]}"


def _report(ctx: Ctx, *extra: object, run=None) -> list[str]:
    return cli("report", run if run is not None else ctx.run(), "--no-panel", *extra)


def _report_written(ctx: Ctx, out: str, err: str) -> None:
    assert (ctx.run() / "report" / "report.md").is_file(), err


def _report_force_no_panel(ctx: Ctx) -> list[str]:
    ok(*_report(ctx))
    (ctx.run() / "report" / "panel.png").write_bytes(b"an old panel")
    return _report(ctx, "--force")


def _old_panel_gone(ctx: Ctx, out: str, err: str) -> None:
    assert not (ctx.run() / "report" / "panel.png").exists(), "--force --no-panel left the old panel"


def _report_panel_other_checkpoint(ctx: Ctx) -> list[str]:
    """best.pt gone, the metrics file's checkpoint path another run's: the panel must not draw it."""
    run = ctx.run()
    other = ctx.seedset() / "seed-0" / "checkpoints" / "last.pt"
    for own in ("best.pt", other.name):  # no own file of the recorded name to fall back on
        (run / "checkpoints" / own).unlink(missing_ok=True)
    edit_json(ctx.metrics(), lambda m: m.__setitem__("checkpoint", str(other)))
    return cli("report", run, "--images", "1")


def _ci_inverted(ctx: Ctx) -> list[str]:
    """Every bootstrap interval turned inside out and the numbers re-hashed: a hand-edited file."""
    edit_json(ctx.metrics(), lambda m: _swap_cis(m["bootstrap"]))
    rehash(ctx.metrics())
    return _report(ctx)


def _swap_cis(node) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, list) and len(value) == 2 and all(isinstance(v, float) for v in value):
                node[key] = [value[1] + 0.5, value[0] - 0.5]
            else:
                _swap_cis(value)


def _report_nan(ctx: Ctx) -> list[str]:
    def nan(m: dict) -> None:
        for group in m["metrics"]["perturbed"]:
            m["metrics"]["perturbed"][group]["AP"] = float("nan")

    edit_json(ctx.metrics(), nan)
    return _report(ctx)


def _set_one_unevaluated(ctx: Ctx) -> list[str]:
    shutil.rmtree(ctx.seedset() / "seed-1" / "eval")
    return cli("report", ctx.seedset(), "--no-panel")


def _inspect_run_stale(ctx: Ctx) -> list[str]:
    """A rescore whose parent's detections were edited since (and their sha256 re-recorded)."""
    m = ctx.metrics()
    ok("eval", "--rescore", m, "--bootstrap", "10", "--quiet")
    scale_scores(m.parent / "test_gender_best.perturbed.dets.json.gz", 0.5)
    record_detections_sha(m)
    return cli("inspect", "run", ctx.run(), "--json")


def _stale_lists(node) -> list:
    if isinstance(node, dict):
        return [v for k, v in node.items() if "stale" in k and v] + [x for v in node.values() for x in _stale_lists(v)]
    if isinstance(node, list):
        return [x for v in node for x in _stale_lists(v)]
    return []


def _lists_stale(ctx: Ctx, out: str, err: str) -> None:
    assert _stale_lists(json.loads(out)), out[:600]


def _toml(ctx: Ctx, out: str, err: str) -> None:
    assert tomllib.loads(out)["train"], out[:300]


def _config_file(ctx: Ctx, name: str, text: str, *extra: object) -> list[str]:
    f = ctx.tmp / name
    f.write_bytes(text.encode("utf-8-sig") if name.startswith("bom") else text.encode())
    return cli("config", "show", "--config", f, *extra)


def _probe(ctx: Ctx, *extra: object) -> list[str]:
    base = ["probe", "headroom", "--data", ctx.world["data"], "--limit-images", "4", "--steps", "1"]
    return cli(*base, "--bootstrap", "0", "--device", "cpu", *extra)


def _probed(ctx: Ctx, out: str, err: str) -> None:
    assert (ctx.o / "h.json").is_file(), err


def _synth(ctx: Ctx, *extra: object) -> list[str]:
    return cli("data", "synth", ctx.o / "s", *extra)


def _pretrain(ctx: Ctx, *extra: object) -> list[str]:
    return cli("detector", "pretrain", "--device", "cpu", "--workers", "0", *extra)


def _perturbation(ctx: Ctx, *extra: object) -> list[str]:
    best = ctx.run() / "checkpoints" / "best.pt"
    return cli("inspect", "perturbation", best, "--data", ctx.world["data"], "--images", "2", *extra)


def _drawn(ctx: Ctx, out: str, err: str) -> None:
    assert (ctx.o / "p.png").stat().st_size > 1000, err



def _no_panel_said(ctx: Ctx, out: str, err: str) -> None:
    """The report is written without the other run's panel, and says why on stderr and the page."""
    page = (ctx.run() / "report" / "report.md").read_text()
    assert err.startswith("warning: no perturbation panel") and "No perturbation panel:" in page, err
    assert not (ctx.run() / "report" / "panel.png").exists()


def _unevaluated_said(ctx: Ctx, out: str, err: str) -> None:
    """The evaluated seeds are shown, the unevaluated one named with the command that evaluates it."""
    page = (ctx.seedset() / "report" / "report.md").read_text()
    assert "seed 1" in err and "faap eval" in err, err
    assert "Not shown: seed 1" in page, page[:400]

CASES = [
    Case("compare-ok", lambda c: _cmp_json(c, c.run()), Works(_some_rows)),
    Case("compare-missing-path", lambda c: cli("compare", c.tmp / "gone"), Refused(r"gone")),
    Case("compare-empty-folder", lambda c: cli("compare", c.o), Refused(r"/o\b|no run|nothing")),
    Case("compare-nan-metrics-left-out", _nan_ap, Works(_left_out("test_gender_best.json"))),
    Case("compare-edited-metrics-flagged", _edit_ap, Works(_flagged("edited"))),
    Case("compare-other-runs-metrics-left-out", _foreign_metrics, Works(_left_out("test_gender_epoch_0009.json"))),
    Case("compare-sort-bogus", lambda c: cli("compare", c.run(), "--sort", "height"), Refused(r"height|--sort")),
    Case("compare-metric-bogus", lambda c: cli("compare", c.run(), "--best-per-run", "--metric", "f1"),
         Refused(r"f1|--metric")),
    Case("compare-select-rule-bogus", lambda c: cli("compare", c.run(), "--best-per-run", "--select-rule", "x"),
         Refused(r"select-rule|'x'")),
    Case("compare-format-bogus", lambda c: cli("compare", c.run(), "--format", "xml"), Refused(r"xml|--format")),
    Case("compare-csv-existing", lambda c: ((c.o / "t.csv").write_text("mine"), cli("compare", c.run(), "--csv",
         c.o / "t.csv"))[1], Refused(r"t\.csv.*--force|--force")),
    Case("compare-csv-onto-run-json", lambda c: cli("compare", c.run(), "--csv", c.run() / "run.json", "--force"),
         Refused(r"run\.json")),
    Case("compare-plot-bad-suffix", lambda c: cli("compare", c.run(), "--plot", c.o / "p.xyz"), Refused(r"xyz")),
    Case("compare-best-per-run", lambda c: cli("compare", c.run(), "--best-per-run", "--json"), Works()),
    Case("compare-codec-column", _codec_row, Works(_has_codec)),
    Case("compare-exported-row-marked", _exported_row, Works(_marks_exported),
         tag="deploy WEAK: compare does not mark --exported rows"),
    Case("compare-across-seeds-edited-seed", _edited_seed, Works(_edited_seed_kept_out),
         tag="WEAK compare: an edited seed enters the across-seed row"),
    Case("compare-across-seeds-two-configs-apart", _two_configs, Works(_kept_apart)),
    Case("compare-rescore-of-rescore-parent-gone", _rescore_chain_parent_gone, Works(_one_test_row),
         tag="WEAK rescore: a rescore-of-rescore whose parent is gone is a second row"),
    Case("report-ok", lambda c: _report(c), Works(_report_written)),
    Case("report-not-evaluated", lambda c: (shutil.rmtree(c.run() / "eval"), _report(c))[1],
         Refused(r"faap eval")),
    Case("report-existing-without-force", lambda c: (ok(*_report(c)), _report(c))[1], Refused(r"--force")),
    Case("report-result-of-another-run", lambda c: _report(c, "--result", c.seed_metrics(0)),
         Refused(r"run id|another run|test_gender_epoch_0000\.json"), tag="FAIL 2: report --result of another run"),
    Case("report-panel-from-another-runs-checkpoint", _report_panel_other_checkpoint,
         Works(_no_panel_said), tag="FAIL 3: the panel drawn from another folder's checkpoint"),
    Case("report-force-no-panel-leaves-old-panel", _report_force_no_panel, Works(_old_panel_gone),
         tag="WEAK report: --force --no-panel leaves the old panel"),
    Case("report-inverted-ci", _ci_inverted, Refused(r"test_gender_best\.json"),
         tag="WEAK report: an edited metrics file crashes in matplotlib"),
    Case("report-metrics-truncated", lambda c: (truncate(c.metrics()), _report(c))[1],
         Refused(r"test_gender_best\.json.*(JSON|read)"), tag="WEAK report: unreadable metrics called no evaluation"),
    Case("report-not-a-run", lambda c: cli("report", c.o, "--no-panel"), Refused(r"not a run|run\.json"),
         tag="WEAK report: a folder that is not a run called no evaluation"),
    Case("report-nan-ap", _report_nan, Refused(r"test_gender_best\.json"), tag="WEAK report: a NaN AP drawn as nan"),
    Case("report-bad-option-values", lambda c: cli("report", c.run(), "--images", "0", "--score", "2"),
         Refused(r"--images|--score"), tag="WEAK report: several bad options share one line naming none"),
    Case("report-images-0", lambda c: cli("report", c.run(), "--images", "0"), Refused(r"--images")),
    Case("report-out-run-json", lambda c: _report(c, "--out", c.run() / "run.json"), Refused(r"run\.json")),
    Case("report-seedset-one-unevaluated", _set_one_unevaluated, Works(_unevaluated_said),
         tag="WEAK seeds: a set's report with some seeds unevaluated"),
    Case("report-seedset-ok", lambda c: cli("report", c.seedset(), "--no-panel"), Works()),
    Case("inspect-plugins", lambda c: cli("inspect", "plugins"), Works()),
    Case("inspect-detector-ok", lambda c: cli("inspect", "detector", "detr-synth-tiny-v3"), Works()),
    Case("inspect-detector-unknown", lambda c: cli("inspect", "detector", "yolo"), Refused(r"yolo")),
    Case("inspect-dataset-ok", lambda c: cli("inspect", "dataset", c.world["data"], "--json"), Works()),
    Case("inspect-dataset-missing", lambda c: cli("inspect", "dataset", c.tmp / "gone"), Refused(r"gone")),
    Case("inspect-dataset-json-truncated", lambda c: (truncate(c.ann("val")), cli("inspect", "dataset", c.data()))[1],
         Refused(r"instances_val\.json")),
    Case("inspect-dataset-split-by-unknown", lambda c: cli("inspect", "dataset", c.world["data"], "--split-by", "hair"),
         Refused(r"hair")),
    Case("inspect-checkpoint-ok", lambda c: cli("inspect", "checkpoint", c.run() / "checkpoints" / "best.pt"), Works()),
    Case("inspect-checkpoint-truncated", lambda c: cli("inspect", "checkpoint",
         truncate(c.run() / "checkpoints" / "last.pt")), Refused(r"last\.pt")),
    Case("inspect-checkpoint-text", lambda c: ((c.o / "x.pt").write_text("hi"), cli("inspect", "checkpoint",
         c.o / "x.pt"))[1], Refused(r"x\.pt")),
    Case("inspect-checkpoint-missing", lambda c: cli("inspect", "checkpoint", c.tmp / "no.pt"), Refused(r"no\.pt")),
    Case("inspect-run-ok", lambda c: cli("inspect", "run", c.run(), "--json"), Works()),
    Case("inspect-run-seedset", lambda c: cli("inspect", "run", c.seedset(), "--json"), Works()),
    Case("inspect-run-not-a-run", lambda c: cli("inspect", "run", c.o), Refused(r"run")),
    Case("inspect-run-json-truncated", lambda c: (truncate(c.run() / "run.json"), cli("inspect", "run", c.run()))[1],
         Refused(r"run\.json")),
    Case("inspect-run-stale-rescore", _inspect_run_stale, Works(_lists_stale),
         tag="WEAK rescore: inspect shows no stale rescore"),
    Case("inspect-perturbation-ok", lambda c: _perturbation(c, "--out", c.o / "p.png"), Works(_drawn)),
    Case("inspect-perturbation-images-0", lambda c: _perturbation(c, "--images", "0", "--out", c.o / "p.png"),
         Refused(r"--images")),
    Case("inspect-perturbation-epsilon-2", lambda c: _perturbation(c, "--epsilon", "2", "--out", c.o / "p.png"),
         Refused(r"epsilon")),
    Case("inspect-perturbation-out-exists", lambda c: ((c.o / "p.png").write_bytes(b"x"), _perturbation(
         c, "--out", c.o / "p.png"))[1], Refused(r"--force")),
    Case("inspect-perturbation-out-run-json", lambda c: _perturbation(c, "--out", c.run() / "run.json", "--force"),
         Refused(r"run\.json")),
    Case("inspect-perturbation-image-folder", lambda c: cli("inspect", "perturbation", c.src(), "--out",
         c.o / "p.png"), Refused(r"src")),
    Case("probe-ok", lambda c: _probe(c, "--out", c.o / "h.json"), Works(_probed)),
    Case("probe-epsilon-0", lambda c: _probe(c, "--epsilon", "0"), Refused(r"epsilon")),
    Case("probe-steps-0", lambda c: _probe(c, "--steps", "0"), Refused(r"steps")),
    Case("probe-step-size-negative", lambda c: _probe(c, "--step-size", "-0.1"), Refused(r"step-size|step_size")),
    Case("probe-data-missing", lambda c: cli("probe", "headroom", "--data", c.tmp / "gone"), Refused(r"gone")),
    Case("probe-group-unknown", lambda c: _probe(c, "--disadvantaged", "robot"), Refused(r"robot")),
    Case("probe-out-run-json", lambda c: _probe(c, "--out", c.run() / "run.json", "--force"), Refused(r"run\.json")),
    Case("probe-out-existing-other-file", lambda c: ((c.o / "h.json").write_text("{}"), _probe(
         c, "--out", c.o / "h.json", "--force"))[1], Refused(r"h\.json")),
    Case("synth-bias-bogus", lambda c: _synth(c, "--bias", "v9"), Refused(r"v9")),
    Case("synth-out-is-file", lambda c: ((c.o / "s").write_text("x"), _synth(c))[1], Refused(r"/s\b|s:")),
    Case("synth-images-without-mixed", lambda c: _synth(c, "--images", "4"), Refused(r"--mixed|--images")),
    Case("synth-images-0-mixed", lambda c: _synth(c, "--mixed", "--images", "0"), Refused(r"--images")),
    Case("synth-into-foreign-folder", lambda c: ((c.o / "s").mkdir(), (c.o / "s" / "mine.txt").write_text("x"),
         _synth(c))[2], Refused(r"/s\b|s:|holds|empty")),
    Case("synth-mixed-small", lambda c: _synth(c, "--mixed", "--images", "4"), Works()),
    Case("pretrain-preset-bogus", lambda c: _pretrain(c, "--preset", "big", "--out", c.o / "d.pth"), Refused(r"big")),
    Case("pretrain-epochs-0", lambda c: _pretrain(c, "--epochs", "0", "--out", c.o / "d.pth"), Refused(r"epochs")),
    Case("pretrain-stop-after-past-end", lambda c: _pretrain(c, "--epochs", "2", "--stop-after", "5", "--out",
         c.o / "d.pth"), Refused(r"stop-after")),
    Case("pretrain-out-suffix", lambda c: _pretrain(c, "--out", c.o / "d.txt"), Refused(r"d\.txt|\.pth")),
    Case("pretrain-workers-negative", lambda c: _pretrain(c, "--workers", "-1", "--out", c.o / "d.pth"),
         Refused(r"workers")),
    Case("pretrain-out-existing", lambda c: ((c.o / "d.pth").write_bytes(b"x"), _pretrain(c, "--out",
         c.o / "d.pth"))[1], Refused(r"d\.pth")),
    Case("pretrain-out-checkpoint-of-run", lambda c: _pretrain(c, "--out", c.run() / "checkpoints" / "best.pt",
         "--force"), Refused(r"best\.pt")),
    Case("config-show-ok", lambda c: cli("config", "show", "--version", "4th"), Works(_toml)),
    Case("config-show-unknown-version", lambda c: cli("config", "show", "--version", "9th"), Refused(r"9th")),
    Case("config-show-bad-set", lambda c: cli("config", "show", "--set", "train.lr=abc"), Refused(r"train\.lr")),
    Case("config-show-inf", lambda c: cli("config", "show", "--set", "train.lr=inf"), Refused(r"train\.lr")),
    Case("config-show-bom-toml", lambda c: _config_file(c, "bom.toml", "[train]\nlr = 0.001\n"), Works(_toml)),
    Case("config-show-yaml-on", lambda c: _config_file(c, "c.yaml", "data:\n  advantaged: on\n"),
         Refused(r"advantaged.*line|line.*advantaged")),
    Case("config-show-json-broken", lambda c: _config_file(c, "c.json", "{"), Refused(r"c\.json")),
    Case("config-show-unknown-suffix", lambda c: _config_file(c, "c.ini", "[train]\n"), Refused(r"c\.ini")),
]
