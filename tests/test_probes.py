"""The alignment probes (evaluate.py probes): honest cross-validation, scikit-learn parity."""
import json
import pathlib
import sys

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_validate

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import evaluate as probes  # noqa: E402


def test_probe_never_sees_the_held_out_fold():
    # Random features, random labels, more features than rows: a probe that was fitted on the test rows would
    # memorise them (accuracy ~1); one fitted on the training folds only is at chance.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 300))
    y = np.array(["a", "b"] * 50)
    honest = np.mean(probes.cross_validate_probe(X, y)["accuracy"])
    assert honest < 0.7
    leaky = []  # the same protocol with the classic mistake, to show this construction reveals it
    for train, test in StratifiedKFold(5, shuffle=True, random_state=42).split(X, y):
        fitted = probes.make_probe().fit(X, y)
        leaky.append(np.mean(fitted.predict(X[test]) == y[test]))
    assert np.mean(leaky) > 0.95


def test_scaler_is_fitted_inside_each_fold():
    # One feature whose scale differs by orders of magnitude between folds: the pipeline's scaler must carry
    # the training folds' statistics, not the whole data set's.
    probe = probes.make_probe()
    X = np.concatenate([np.zeros((10, 1)), np.full((10, 1), 1000.0)]) + np.arange(20)[:, None]
    y = np.array(["a", "b"] * 10)
    probe.fit(X[:10], y[:10])
    np.testing.assert_allclose(probe.named_steps["scale"].mean_, X[:10].mean(0))


@pytest.mark.parametrize("n_classes", [2, 4])
def test_metrics_match_sklearn_cross_validate(n_classes):
    rng = np.random.default_rng(1)
    y = np.array([f"c{i % n_classes}" for i in range(120)])
    X = rng.normal(size=(120, 8)) + 0.8 * (np.arange(120) % n_classes)[:, None] * rng.normal(size=(1, 8))
    ours = probes.cross_validate_probe(X, y)
    auc = "roc_auc" if n_classes == 2 else "roc_auc_ovr"
    ref = cross_validate(probes.make_probe(), X, y, cv=StratifiedKFold(5, shuffle=True, random_state=42),
                         scoring={"accuracy": "accuracy", "macro_f1": "f1_macro", "auroc": auc})
    for metric in probes.METRICS:
        np.testing.assert_allclose(ours[metric], ref[f"test_{metric}"], rtol=1e-9)


def test_cli_prints_the_stage_table(tmp_path, capsys):
    rng = np.random.default_rng(2)
    types = ["glioblastoma", "meningioma", "metastasis"]
    n = 60
    labels = [{"tumor_type": types[i % 3], "mgmt": ["methylated", "unmethylated"][(i // 3) % 2],
               "survival_1y": ["alive", "deceased"][(i // 6) % 2] if i % 10 else None} for i in range(n)]
    with open(tmp_path / "pairs.jsonl", "w") as f:
        for i, lab in enumerate(labels):
            f.write(json.dumps({"id": f"r{i}", "radiology": "mri", "pathology": "biopsy", "labels": lab}) + "\n")
    ids = [f"r{i}" for i in range(n)]
    onehot = np.eye(3)[[i % 3 for i in range(n)]]
    for stage, signal in (("stage0", 0.0), ("stage1", 5.0)):
        X = rng.normal(size=(n, 6)) + signal * np.concatenate([onehot, np.zeros((n, 3))], 1)
        np.save(tmp_path / f"{stage}.npy", X)
        (tmp_path / f"{stage}.ids.json").write_text(json.dumps(ids[::-1] if stage == "stage1" else ids))
        if stage == "stage1":  # rows stored in another order: labels must follow the ids, not the row number
            np.save(tmp_path / f"{stage}.npy", X[::-1])
    assert probes.main(["probes", "--embeddings", str(tmp_path / "stage0.npy"), str(tmp_path / "stage1.npy"),
                        "--labels", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "table.json")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "table.json").read_text())
    assert "tumor_type (n=60" in printed and "survival_1y (n=54" in printed and "stage1" in printed
    assert result["stage1"]["tumor_type"]["accuracy"][0] > 0.95
    assert result["stage0"]["tumor_type"]["accuracy"][0] < 0.7
    assert result["stage1"]["mgmt"]["n"] == 60


def test_ids_and_rows_must_agree(tmp_path):
    np.save(tmp_path / "stage0.npy", np.zeros((3, 2)))
    (tmp_path / "stage0.ids.json").write_text(json.dumps(["a", "b"]))
    with pytest.raises(ValueError, match="2 ids"):
        probes.read_embeddings(tmp_path / "stage0.npy")
