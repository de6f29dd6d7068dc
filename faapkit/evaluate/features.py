"""What the frozen detector's decoder makes of each person before and after a perturbation
(``faap inspect features``), measured as the research measured it (its ``tsne_compare_epochNN.json``).

A *sample* is one ground-truth person: its feature is the last decoder layer's output ``(D,)`` of
the query the DETR matcher (Hungarian, the set loss's costs) assigns to that person, matched in
the clean pass and again in the perturbed pass (the query that stands for the person in each).
For the two groups ``(disadvantaged, advantaged)`` with features ``c_g (N_g, D)`` clean and
``p_g (N_g, D)`` perturbed, row for row the same people:

* ``disp_<g>``: the mean over the group's people of ``|p_g[i] - c_g[i]|_2``, how far the
  perturbation moves a person's feature; ``disp_ratio = disp_<dis> / max(disp_<adv>, 1e-8)``;
* ``center_dist_before`` / ``_after``: ``|mean(c_dis) - mean(c_adv)|_2`` and the same of ``p``;
  ``center_dist_delta = after - before``;
* ``cos_sim_before`` / ``_after``: the cosine similarity of the two group centres, clean and
  perturbed; ``cos_sim_delta = after - before``;
* ``n_<g>``: the group's people.

With gender groups these are exactly the research's field names (``disp_female``, ``n_male``, ...).
The research took the projection head's output of each image's mean feature; faapkit's default
version has no head, so the decoder's own features of the people are used: what the detector
itself sees, for every version alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from faapkit.data.batching import eval_batches
from faapkit.data.coco import DatasetSplit, GroupedDetectionDataset
from faapkit.data.transforms import EvalTransform
from faapkit.detr.frozen import FrozenDetector
from faapkit.errors import ConfigError
from faapkit.evaluate.inference import make_eval_loader
from faapkit.generators.perturb import apply_perturbation

EPS = 1e-8


@dataclass(frozen=True)
class GroupFeatures:
    """One group's people: ``clean (N, D)`` and ``perturbed (N, D)``, row ``i`` the same person."""

    clean: Tensor
    perturbed: Tensor


def _centre_cosine(a: Tensor, b: Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.unsqueeze(0), b.unsqueeze(0), eps=EPS))


def displacement_metrics(groups: dict[str, GroupFeatures], pair: tuple[str, str]) -> dict[str, Any]:
    """The research's fields for ``pair = (disadvantaged, advantaged)`` (module docstring)."""
    dis, adv = pair
    for g in pair:
        if len(groups[g].clean) == 0:
            raise ConfigError(f"group '{g}' has no matched person: no feature to measure")
    disp = {g: float((groups[g].perturbed - groups[g].clean).norm(dim=-1).mean()) for g in pair}
    centre = {
        (g, s): getattr(groups[g], s).mean(dim=0) for g in pair for s in ("clean", "perturbed")
    }  # fmt: skip
    dist = {s: float((centre[(dis, s)] - centre[(adv, s)]).norm()) for s in ("clean", "perturbed")}
    cos = {s: _centre_cosine(centre[(dis, s)], centre[(adv, s)]) for s in ("clean", "perturbed")}
    return {
        f"disp_{dis}": disp[dis],
        f"disp_{adv}": disp[adv],
        "disp_ratio": disp[dis] / max(disp[adv], EPS),
        "center_dist_before": dist["clean"],
        "center_dist_after": dist["perturbed"],
        "center_dist_delta": dist["perturbed"] - dist["clean"],
        "cos_sim_before": cos["clean"],
        "cos_sim_after": cos["perturbed"],
        "cos_sim_delta": cos["perturbed"] - cos["clean"],
        f"n_{dis}": len(groups[dis].clean),
        f"n_{adv}": len(groups[adv].clean),
    }


def matched_person_features(
    detector: FrozenDetector, outputs: dict[str, Any], targets: list[dict[str, Tensor]]
) -> list[Tensor]:
    """Per image, ``(T_i, D)``: the decoder feature of the query matched to each ground-truth box,
    in the targets' order (``outputs["features"] (B, Q, D)``, matching by the detector's criterion)."""
    features = outputs.get("features")
    if not isinstance(features, Tensor):
        raise ConfigError(f"detector '{detector.name}' gives no decoder features (outputs['features'])")
    _, _, indices = detector.detection_loss(outputs, targets)
    per_image = []
    for i, (src, tgt) in enumerate(indices):
        order = torch.argsort(tgt.to(features.device))
        per_image.append(features[i, src.to(features.device)[order]])
    return per_image


@torch.no_grad()
def person_features(
    detector: FrozenDetector,
    generator: torch.nn.Module,
    data: DatasetSplit,
    device: torch.device,
    *,
    sizes: tuple[int, int],
    batch_size: int = 8,
) -> dict[str, GroupFeatures]:
    """Every group's people of ``data`` (one group per image), clean and perturbed by ``generator``."""
    if data.group_level == "box":
        raise ConfigError(f"{data.root}: split '{data.split}' has box-level groups; features need one group per image")
    ds = GroupedDetectionDataset(data, EvalTransform(*sizes))
    loader = make_eval_loader(ds, eval_batches(data.records, batch_size, *sizes))
    group_of = {r.image_id: r.group for r in data.records}
    found: dict[str, dict[str, list[Tensor]]] = {g: {"clean": [], "perturbed": []} for g in data.groups}
    generator.eval()
    for batch in loader:
        batch = batch.to(device)
        perturbed = apply_perturbation(generator, batch.images, batch.mask)[0]
        clean_f = matched_person_features(detector, detector(batch.images, batch.mask), batch.targets)
        pert_f = matched_person_features(detector, detector(perturbed, batch.mask), batch.targets)
        for target, c, p in zip(batch.targets, clean_f, pert_f, strict=True):
            group = group_of[int(target["image_id"])]
            found[group]["clean"].append(c.float().cpu())
            found[group]["perturbed"].append(p.float().cpu())
    dim = detector.hidden_dim or 0
    return {
        g: GroupFeatures(*(torch.cat(v[s]) if v[s] else torch.zeros(0, dim) for s in ("clean", "perturbed")))
        for g, v in found.items()
    }
