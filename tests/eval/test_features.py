"""``faap inspect features``: the research's tsne_compare fields on a case worked by hand, the
matched people's features in the targets' order, and the command end to end on a one-step run."""

from __future__ import annotations

import json
import math

import pytest
import torch

from faapkit.evaluate.features import GroupFeatures, displacement_metrics, matched_person_features, person_features
from tests.conftest import faap_in_process, one_error, one_step_4th_run

RESEARCH_FIELDS = [
    "disp_female", "disp_male", "disp_ratio", "center_dist_before", "center_dist_after", "center_dist_delta",
    "cos_sim_before", "cos_sim_after", "cos_sim_delta", "n_female", "n_male",
]  # fmt: skip


def test_the_fields_on_a_case_worked_by_hand():
    female = GroupFeatures(torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.tensor([[3.0, 4.0], [2.0, 0.0]]))
    male = GroupFeatures(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]]))
    m = displacement_metrics({"female": female, "male": male}, ("female", "male"))
    assert list(m) == RESEARCH_FIELDS
    assert m["disp_female"] == pytest.approx(2.5)  # (5 + 0) / 2
    assert m["disp_male"] == pytest.approx(1.0)
    assert m["disp_ratio"] == pytest.approx(2.5)
    # clean centres (1, 0) and (1, 0); perturbed (2.5, 2) and (1, 1)
    assert m["center_dist_before"] == pytest.approx(0.0)
    assert m["center_dist_after"] == pytest.approx(math.sqrt(1.5**2 + 1.0))
    assert m["center_dist_delta"] == pytest.approx(math.sqrt(3.25))
    assert m["cos_sim_before"] == pytest.approx(1.0)
    assert m["cos_sim_after"] == pytest.approx(4.5 / (math.sqrt(10.25) * math.sqrt(2.0)))
    assert m["cos_sim_delta"] == pytest.approx(m["cos_sim_after"] - 1.0)
    assert (m["n_female"], m["n_male"]) == (2, 2)


def test_a_group_without_people_is_refused():
    empty = GroupFeatures(torch.zeros(0, 2), torch.zeros(0, 2))
    some = GroupFeatures(torch.ones(1, 2), torch.ones(1, 2))
    with pytest.raises(Exception, match="group 'male' has no matched person"):
        displacement_metrics({"female": some, "male": empty}, ("female", "male"))


def _val_batch(synth_root, n=4):
    from faapkit.data.batching import eval_batches
    from faapkit.data.coco import GroupedDetectionDataset, load_split
    from faapkit.data.transforms import EvalTransform
    from faapkit.evaluate.inference import make_eval_loader

    data = load_split(synth_root, "val", limit=n)
    ds = GroupedDetectionDataset(data, EvalTransform(128, 213))
    return data, next(iter(make_eval_loader(ds, eval_batches(data.records, n, 128, 213))))


def test_each_person_gets_the_feature_of_its_matched_query_in_target_order(tiny_detector, synth_root):
    _, batch = _val_batch(synth_root)
    with torch.no_grad():
        outputs = tiny_detector(batch.images, batch.mask)
        rows = matched_person_features(tiny_detector, outputs, batch.targets)
        _, _, indices = tiny_detector.detection_loss(outputs, batch.targets)
        flipped = [{**t, "boxes": t["boxes"].flip(0), "labels": t["labels"].flip(0)} for t in batch.targets]
        rows_flipped = matched_person_features(tiny_detector, outputs, flipped)
    for i, (src, tgt) in enumerate(indices):
        assert rows[i].shape == (len(batch.targets[i]["boxes"]), tiny_detector.hidden_dim)
        for s, t in zip(src.tolist(), tgt.tolist(), strict=True):
            assert torch.equal(rows[i][t], outputs["features"][i, s])
        assert torch.equal(rows_flipped[i], rows[i].flip(0))  # the people reordered, their features with them


class _Zero(torch.nn.Module):
    def forward(self, images):
        return torch.zeros_like(images)


def test_no_perturbation_moves_nobody(tiny_detector, synth_root):
    data, _ = _val_batch(synth_root, n=6)
    groups = person_features(tiny_detector, _Zero(), data, torch.device("cpu"), sizes=(128, 213))
    people = sum(len(r.annotations) for r in data.records)
    assert sum(len(g.clean) for g in groups.values()) == people
    m = displacement_metrics(groups, ("female", "male"))
    assert m["disp_female"] == m["disp_male"] == 0.0
    assert m["center_dist_delta"] == pytest.approx(0.0) and m["cos_sim_delta"] == pytest.approx(0.0)


def test_inspect_features_writes_the_research_file_and_keeps_it(tmp_path, capsys):
    run = one_step_4th_run(tmp_path)
    out = tmp_path / "tsne_compare_epoch00.json"
    code, _, err = faap_in_process(capsys, "inspect", "features", str(run), "--epoch", "0", "--out", str(out))
    assert code == 0, err
    record = json.loads(out.read_text())
    assert list(record["checkpoint1"])[2:] == RESEARCH_FIELDS and record["checkpoint1"]["epoch"] == 0
    assert record["checkpoint1"]["n_female"] + record["checkpoint1"]["n_male"] >= 6  # 3 + 3 test images
    assert out.with_suffix(".png").stat().st_size > 0
    before = out.read_bytes()
    code, _, err = faap_in_process(capsys, "inspect", "features", str(run), "--epoch", "0", "--out", str(out))
    one_error(err, 1, code, "exists; pass --force to replace it")
    assert out.read_bytes() == before
