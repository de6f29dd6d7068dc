"""``faap report``'s Markdown page: what was evaluated, the per-group table with CIs, the gap and
the share of it closed, the figures, and for a seed set each seed's line and the spread across
seeds. Every number is printed with :func:`num` from the run's eval result. Torch-free."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faapkit.report.figures import METRICS, SETTINGS, groups_of
from faapkit.report.inputs import RunInputs, unevaluated_seeds


def num(value: Any, signed: bool = False) -> str:
    """A number as the page prints it (4 decimals); ``n/a`` for a missing one."""
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def ci(bounds: Any, signed: bool = False) -> str:
    return f"[{num(bounds[0], signed)}, {num(bounds[1], signed)}]" if bounds else ""


def page(runs: list[RunInputs], title: str, figures: dict[str, str], panel_note: str | None) -> str:
    """The whole page; ``figures`` maps ``forest``/``curves``/``panel`` to the PNG's file name. A
    seed set's page names the seeds it does not show, each with why and what to run."""
    first = runs[0].result
    lines = [f"# {title}", "", *_about(runs), ""]
    several = any(r.seed is not None for r in runs)
    missing = unevaluated_seeds(runs[0].run.parent) if several else []
    if missing:
        lines += [f"Not shown: {'; '.join(missing)}.", ""]
    if several:
        lines += _seed_section(runs, missing)
    for r in runs:
        lines += _run_section(r, several)
    lines += [
        "## Figures",
        "",
        "Per-group AP and AR before (grey) and after (red) the perturbation, the gap and the "
        f"share of the gap closed, with {_level(first)} paired bootstrap CIs:",
        "",
        f"![forest plot]({figures['forest']})",
        "",
        "Training: losses per epoch, the val AP gap at each validation (dashed: unperturbed), the epoch "
        "chosen on val (dotted):",
        "",
        f"![training curves]({figures['curves']})",
        "",
    ]
    if "panel" in figures:
        lines += [str(panel_note), "", f"![perturbation panel]({figures['panel']})", ""]
    elif panel_note:
        lines += [panel_note, ""]
    lines += ["PDF versions of each figure lie beside the PNGs.", ""]
    return "\n".join(lines)


def _level(result: dict[str, Any]) -> str:
    conf = (result.get("bootstrap") or {}).get("confidence")
    return f"{conf:.0%}" if conf else "no"


def _about(runs: list[RunInputs]) -> list[str]:
    res = runs[0].result
    ref = res.get("reference") or {}
    boot = res.get("bootstrap") or {}
    return [
        f"- version `{res.get('version')}`, split `{res.get('split')}`, attribute `{res.get('split_by')}` "
        f"(disadvantaged `{ref.get('disadvantaged')}`, advantaged `{ref.get('advantaged')}`)",
        f"- epsilon {res.get('epsilon')}, detector `{(res.get('detector') or {}).get('name')}`, input size "
        f"{(res.get('input_size') or {}).get('min_size')} / {(res.get('input_size') or {}).get('max_size')}",
        f"- bootstrap: {boot.get('resamples', 0)} resamples, {boot.get('method', 'none')}",
        *(
            f"- {_who(r)}: `{r.result_path}` ({r.result.get('checkpoint_choice') or r.result.get('checkpoint')}, "
            f"epoch {r.result.get('epoch')})"
            for r in runs
        ),
    ]


def _who(r: RunInputs) -> str:
    return "result" if r.seed is None else f"seed {r.seed}"


def _run_section(r: RunInputs, several: bool) -> list[str]:
    res, boot = r.result, r.result.get("bootstrap") or {}
    lines = [
        f"## {'Seed ' + str(r.seed) if several else 'Result'}",
        "",
        "| row | baseline | perturbed | change |",
        "|---|---|---|---|",
    ]
    for m in (m for m in METRICS if m in (res.get("gaps") or {})):
        for g in groups_of(res):
            cells = [_cell(res["metrics"][s][g][m], _get(boot, "groups", s, g, m)) for s in SETTINGS]
            change = _cell((res.get("deltas") or {}).get(g, {}).get(m), _get(boot, "deltas", g, m), True)
            lines.append(f"| {g} {m} | {cells[0]} | {cells[1]} | {change} |")
        gap, gci = res["gaps"][m], _get(boot, "gaps", m) or {}
        sig = (
            "" if gci.get("significant") is None else (" (significant)" if gci["significant"] else " (not significant)")
        )
        lines.append(
            f"| {m} gap | {_cell(gap['baseline'], gci.get('baseline'), True)} | "
            f"{_cell(gap['perturbed'], gci.get('perturbed'), True)} | "
            f"{_cell(gap['change'], gci.get('change'), True)}{sig} |"
        )
        over = " (overshoot: the gap reversed)" if gap.get("overshoot") else ""
        lines.append(
            f"| {m} share closed | | | {_cell(gap.get('share_closed'), gci.get('share_closed'), True)}{over} |"
        )
    return [*lines, ""]


def _cell(value: Any, bounds: Any, signed: bool = False) -> str:
    return f"{num(value, signed)} {ci(bounds, signed)}".strip()


def _get(node: Any, *keys: str) -> Any:
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node


def _seed_section(runs: list[RunInputs], missing: Sequence[str]) -> list[str]:
    """Across seeds: the spread lines of ``faap eval SEEDSET`` over the seeds' AP gaps, over n of
    the set's N seeds (``missing``: the others)."""
    from faapkit.evaluate.across_seeds import aggregate, seed_row
    from faapkit.evaluate.command.result_rows import seeds_summary

    conf = float((runs[0].result.get("bootstrap") or {}).get("confidence") or 0.95)
    summary = aggregate([seed_row(int(r.seed or 0), r.result) for r in runs], conf, missing)
    return ["## Across seeds", "", *(f"- {line.strip()}" for line in seeds_summary(summary)), ""]
