"""faap compare over the research scripts' real output folders, as they are."""

import json

from tests.conftest import fixture_path, run_here

FIX5 = "faap_outputs_infonce_3rd_fix5_gpu_20260305"


def test_compare_reads_every_legacy_run_and_epoch():
    code, out, err = run_here("compare", str(fixture_path("legacy_runs")), "--json", "--all-epochs")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    fix5 = [r for r in rows if r["run"] == FIX5]
    assert sorted(r["epoch"] for r in fix5) == list(range(15))  # duplicated log epochs 2,3 appear once
    assert len([r for r in fix5 if r["setting"] == "perturbed"]) == 10
    e0 = next(r for r in fix5 if r["epoch"] == 0)
    assert abs(e0["AP_gap"] - (e0["AP_male"] - e0["AP_female"])) < 1e-12
    assert abs(e0["AP_gap_baseline"] - 0.09793975858491444) < 1e-12
    scf = [r for r in rows if r["run"] == "faap_outputs_infonce_fix10gpu_scf_20260324"]
    assert sorted(r["epoch"] for r in scf) == list(range(24))
    datasets = {r["run"]: r["dataset"] for r in rows}
    assert datasets["faap_metrics"] == "faap_gan-v1" and datasets["baseline_test_metrics"] == "faap_gan-v2"


def test_mixed_datasets_are_never_one_table():
    legacy = fixture_path("legacy_runs")
    code, out, err = run_here("compare", str(legacy), "--format", "table", env={"COLUMNS": "250"})
    assert code == 0
    assert "different datasets" in err
    assert "dataset faap_gan-v1" in out and "dataset faap_gan-v2" in out
    code, out, _ = run_here("compare", str(legacy), "--mix-datasets", "--json")
    assert code == 0 and json.loads(out)["rows"]


def test_best_per_run_never_selects_on_the_reported_split():
    """The research runs were evaluated on test only: no epoch can be chosen honestly."""
    code, out, err = run_here("compare", str(fixture_path("legacy_runs")), "--mix-datasets", "--best-per-run")
    assert code != 0 and out == ""
    assert "no val evaluation to select on" in err and err.strip().splitlines()[-1].startswith("error: --best-per-run")


def test_folder_name_with_space_and_csv(tmp_path):
    src = fixture_path("legacy_runs", FIX5)
    dst = tmp_path / "faap_outputs_infonce_3rd_fix1 copy"
    dst.mkdir()
    for f in ("config.json", "train_log.jsonl", "dataset_layout.json"):
        (dst / f).write_text((src / f).read_text())
    code, out, err = run_here("compare", str(tmp_path), "--json", "--csv", str(tmp_path / "rows.csv"))
    assert code == 0, err
    found = json.loads(out)
    assert found["rows"] == []  # a train log, no evaluation: one summary, not a row per epoch
    assert [(s["run"], s["epochs_logged"]) for s in found["log_only"]] == [
        ("faap_outputs_infonce_3rd_fix1 copy", list(range(2, 15)))  # its log starts at epoch 2
    ]
    assert (tmp_path / "rows.csv").read_text().startswith("run,")


def test_compare_nothing_found(tmp_path):
    code, _, err = run_here("compare", str(tmp_path))
    assert code == 1 and "no runs found" in err


def _tsne_entry(path: str, disp_f: float, dist: tuple[float, float], cos: tuple[float, float]) -> dict:
    """One checkpoint of a research ``tsne_compare_epochNN.json`` (the research's schema T); the
    numbers are made up for the test, the keys are the research's."""
    return {
        "path": path, "epoch": 14, "disp_female": disp_f, "disp_male": 0.04, "disp_ratio": disp_f / 0.04,
        "center_dist_before": dist[0], "center_dist_after": dist[1], "center_dist_delta": dist[1] - dist[0],
        "cos_sim_before": cos[0], "cos_sim_after": cos[1], "cos_sim_delta": cos[1] - cos[0],
        "n_female": 250, "n_male": 250,
    }  # fmt: skip


def test_compare_reads_the_research_tsne_compare_files(tmp_path):
    folder = tmp_path / "tsne_results_fix11"
    folder.mkdir()
    (folder / "tsne_compare_epoch14.json").write_text(
        json.dumps(
            {
                "checkpoint1": _tsne_entry(
                    "faap_outputs/with_l2/checkpoints/epoch_0014.pth", 0.05, (0.5, 0.4), (0.9, 0.95)
                ),
                "checkpoint2": _tsne_entry(
                    "faap_outputs/no_l2/checkpoints/epoch_0014.pth", 0.08, (0.5, 0.6), (0.9, 0.85)
                ),
            }
        )
    )
    code, out, err = run_here("compare", str(folder), "--json")
    assert code == 0, err
    rows = {r["run"]: r for r in json.loads(out)["rows"]}
    assert set(rows) == {"with_l2 (checkpoint1)", "no_l2 (checkpoint2)"}
    with_l2 = rows["with_l2 (checkpoint1)"]
    assert with_l2["setting"] == "features" and with_l2["epoch"] == 14
    assert with_l2["disp_ratio"] == 0.05 / 0.04 and abs(with_l2["center_dist_delta"] + 0.1) < 1e-12
    assert abs(rows["no_l2 (checkpoint2)"]["cos_sim_delta"] + 0.05) < 1e-12
    code, out, _ = run_here("compare", str(folder), "--format", "table", env={"COLUMNS": "250"})
    assert code == 0 and "centre" in out and "-0.0500" in out and "+0.1000" in out
