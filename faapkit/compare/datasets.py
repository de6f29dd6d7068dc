"""Which records of ``faap compare`` were measured on the same dataset (research pitfall P1).

A faapkit fingerprint is one *split*'s (annotations and image bytes), so an ordinary run carries
several: its train split's in ``run.json`` and one per evaluated split. Splits are joined into one
dataset when one run evaluated them under the same dataset root; runs are joined when they share
an evaluated split's fingerprint. A dataset in which one split has two fingerprints (the data
changed, or a ``--limit-images`` subset) is not one dataset: each of its splits' versions is kept
apart. Train-log rows never decide: they go with their run's evaluations (a run trained on other
data is still measured on the same test set). Research records keep the label their reader gave.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from faapkit.compare.records import RunRecord

Node = tuple[str, str]  # (split, fingerprint)


def assign_datasets(records: list[RunRecord]) -> list[str]:
    """Set ``record.dataset`` to a readable dataset label for every faapkit record; returns
    notes for the user (a split whose data changed between evaluations)."""
    parent: dict[Node, Node] = {}

    def find(n: Node) -> Node:
        while parent.setdefault(n, n) != n:
            parent[n] = parent[parent[n]]  # path halving keeps chains short
            n = parent[n]
        return n

    evaluated = [r for r in records if r.dataset_fingerprint and (r.perturbed or r.baseline)]
    anchor: dict[tuple[str, str], Node] = {}  # (run, root) -> a node of that run's evaluations there
    for r in evaluated:
        node = _node(r)
        find(node)
        key = (str(r.run_path or r.run), str(r.dataset_root))
        if key in anchor:
            parent[find(node)] = find(anchor[key])
        else:
            anchor[key] = node
    members: dict[Node, set[Node]] = {}
    for n in list(parent):
        members.setdefault(find(n), set()).add(n)
    roots: dict[Node, set[str]] = {}
    for r in evaluated:  # one split's bytes may be evaluated under several roots (v3's test in v4's folder)
        roots.setdefault(_node(r), set()).add(str(r.dataset_root or ""))
    images = {_node(r): r.dataset_images for r in evaluated if r.dataset_images is not None}
    label: dict[Node, str] = {}
    notes: list[str] = []
    tails = _names(members, roots, images)
    for key, nodes in members.items():
        splits: dict[str, set[str]] = {}
        for split, fp in nodes:
            splits.setdefault(split, set()).add(fp)
        tail = tails[key]
        changed = sorted(s for s, fps in splits.items() if len(fps) > 1)
        if changed:
            notes.append(
                f"dataset {tail}: split {', '.join(changed)} has several fingerprints (the data changed, or "
                "a --limit-images subset); each version gets its own table"
            )
        for n in nodes:
            label[n] = f"{tail} {n[0]} {n[1][:8]}" if changed else tail
    by_run: dict[str, str] = {}
    at_root: dict[str, set[str]] = {}
    done = set()
    for r in evaluated:
        r.dataset = label[_node(r)]
        by_run.setdefault(str(r.run_path or r.run), r.dataset)
        at_root.setdefault(str(r.dataset_root), set()).add(r.dataset)
        done.add(id(r))
    for r in records:
        if r.dataset_fingerprint and id(r) not in done:
            # a log row goes with its run's (first) evaluated dataset, else with the one dataset
            # evaluated at the root it trained on, else with that root's own label
            root = str(r.dataset_root)
            near = at_root.get(root, set())
            own = next(iter(near)) if len(near) == 1 else _tail(root if r.dataset_root else "")
            r.dataset = by_run.get(str(r.run_path or r.run), own)
    for r in evaluated:  # AP over other IoU thresholds is another metric: never one table with COCO's
        if r.iou_thresholds:
            r.dataset = f"{r.dataset}, IoU " + "-".join(f"{t:g}" for t in r.iou_thresholds)
    return notes


def _names(members: dict[Node, set[Node]], roots: dict[Node, set[str]], images: dict[Node, int]) -> dict[Node, str]:
    """Each dataset's label: its roots' folder names (every one it was evaluated under, so that no
    run's numbers are shown under another run's data alone); where two share it, the image count of each
    evaluated split (a ``--limit-images`` subset beside the whole split), and only where that is
    the same too a short hash of the fingerprints."""
    tails = {
        key: ", ".join(sorted({_tail(root) for n in nodes for root in roots[n]})) for key, nodes in members.items()
    }
    named: dict[Node, str] = {}
    for key, nodes in members.items():
        name = tails[key]
        if list(tails.values()).count(name) > 1:
            counts = sorted({f"{split} {images[(split, fp)]} images" for split, fp in nodes if (split, fp) in images})
            name = f"{name} ({', '.join(counts)})" if counts else name
        named[key] = name
    for key, nodes in members.items():
        if list(named.values()).count(named[key]) > 1:  # the same name and counts: other data
            named[key] = f"{named[key]} #{_digest(nodes)}"
    return named


def _node(r: RunRecord) -> Node:
    return (str(r.dataset_split), str(r.dataset_fingerprint))


def _digest(nodes: set[Node]) -> str:
    """A short stable id of a dataset's split fingerprints: two datasets at same-named roots differ."""
    return hashlib.sha256(repr(sorted(nodes)).encode()).hexdigest()[:6]


def _tail(root: str) -> str:
    """The last two parts of a dataset root (``synth-v1-seed0/coco``): readable, mostly unique."""
    parts = Path(root).parts[-2:] if root else ()
    return "/".join(parts) or "dataset"
