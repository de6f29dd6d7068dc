"""Train a few steps, then `faap eval` and `faap compare` on the embedded default through the CLI."""

import json

from tests.conftest import run_here


def test_train_eval_compare(tmp_path, synth_root):
    run = tmp_path / "run"
    code, _, err = run_here(
        "train", "--version", "4th", "--out", str(run), "--max-steps", "3", "--set", "train.batch_size=4", "--quiet"
    )
    assert code == 0, err
    assert (run / "checkpoints").is_dir() and (run / "run.json").is_file()
    code, out, err = run_here("eval", str(run), "--limit-images", "40", "--bootstrap", "50", "--json")
    assert code == 0, err
    m = json.loads(out)
    assert m["schema"] == "faapkit.metrics/1" and set(m["metrics"]) == {"baseline", "perturbed"}
    assert set(m["metrics"]["baseline"]) == {"female", "male"}
    assert m["epsilon"] > 0 and m["epsilon_source"] == "checkpoint"
    gaps = m["gaps"]["AP"]
    assert (
        abs(gaps["baseline"] - (m["metrics"]["baseline"]["male"]["AP"] - m["metrics"]["baseline"]["female"]["AP"]))
        < 1e-12
    )
    ci = m["bootstrap"]["gaps"]["AP"]
    assert ci["baseline"][0] <= gaps["baseline"] <= ci["baseline"][1]
    assert isinstance(ci["significant"], bool)
    # the second evaluation reuses the cached baseline (and replaces the first's file only if asked)
    code, out, err = run_here("eval", str(run), "--limit-images", "40", "--bootstrap", "0", "--json", "--force")
    assert code == 0, err
    m2 = json.loads(out)
    assert m2["eval"]["baseline_cached"] is True and m2["metrics"] == m["metrics"]
    # any attribute, any number of groups
    code, out, err = run_here(
        "eval", str(run), "--limit-images", "60", "--bootstrap", "20", "--json", "--split-by", "age"
    )
    assert code == 0, err
    m3 = json.loads(out)
    assert len(m3["groups"]) == 3 and m3["reference"]["gap"] == "max - min over groups"
    code, out, err = run_here("compare", str(tmp_path), "--json")
    assert code == 0, err
    assert any(r["setting"] == "perturbed" and r["version"] == "4th" for r in json.loads(out)["rows"])


def test_eval_error_lines(tmp_path):
    code, _, err = run_here("eval", str(tmp_path / "missing"))
    assert code == 1 and err.startswith("error: not found")
    code, _, err = run_here("eval", "--split-by", "height", "--limit-images", "10")
    assert code == 1 and "no image or box in split 'test' has attribute 'height'" in err and "Traceback" not in err
