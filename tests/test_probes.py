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
                        "--labels", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "table.json"),
                        "--part", "all", "--no-baseline"]) == 0
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


def write_pairs(path, n, label_of, text_of=lambda i, lab: "mri"):
    with open(path, "w") as f:
        for i in range(n):
            lab = label_of(i)
            f.write(json.dumps({"id": f"r{i:03d}", "radiology": text_of(i, lab), "pathology": "biopsy",
                                "labels": lab}) + "\n")
    return [f"r{i:03d}" for i in range(n)]


def test_probes_read_only_patients_that_no_stage_trained_on(tmp_path, capsys):
    """The default --part heldout probes exactly the pairs train_align.py kept out of training, whatever else was
    embedded; the ids are printed and written to --out."""
    import data
    import train_align
    types = ["glioblastoma", "meningioma"]
    ids = write_pairs(tmp_path / "pairs.jsonl", 400, lambda i: {"tumor_type": types[i % 2]})
    np.save(tmp_path / "stage0.npy", np.random.default_rng(0).normal(size=(400, 4)))
    (tmp_path / "stage0.ids.json").write_text(json.dumps(ids))
    assert probes.main(["probes", "--embeddings", str(tmp_path / "stage0.npy"), "--labels",
                        str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "t.json"), "--no-baseline"]) == 0
    probed = json.loads((tmp_path / "t.json").read_text())["_split"]["ids"]
    argv = ["--out", str(tmp_path / "run"), "--data", str(tmp_path / "pairs.jsonl")]
    args = train_align.AlignConfig(**vars(train_align.build_parser().parse_args(argv)))
    trained = {p.id for p in data.read_pairs(tmp_path / "pairs.jsonl")
               if train_align.split_part(p.id, args.holdout, args.validation) == "train"}
    assert probed and not set(probed) & trained and set(probed) | trained == set(ids)
    assert 0.2 * 400 < len(probed) < 0.4 * 400  # --holdout 0.3
    printed = capsys.readouterr().out
    assert f"{len(probed)} patients" in printed and f"tumor_type (n={len(probed)}" in printed


def test_tfidf_baseline_matches_sklearn_and_reads_the_words(tmp_path, capsys):
    rng = np.random.default_rng(3)
    words = {"glioblastoma": "necrosis rim", "meningioma": "dural tail", "metastasis": "multiple junction"}
    y = np.array(list(words) * 40)
    texts = np.array([" ".join([words[t].split()[rng.integers(2)], *rng.choice(["mass", "edema", "left", "right",
                                                                              "lesion"], 5)]) for t in y], dtype=object)
    ours = probes.cross_validate_probe(texts, y, make=probes.make_tfidf_probe)
    ref = cross_validate(probes.make_tfidf_probe(), texts, y, cv=StratifiedKFold(5, shuffle=True, random_state=42),
                         scoring={"accuracy": "accuracy", "macro_f1": "f1_macro"})
    np.testing.assert_allclose(ours["accuracy"], ref["test_accuracy"], rtol=1e-9)
    np.testing.assert_allclose(ours["macro_f1"], ref["test_macro_f1"], rtol=1e-9)
    assert np.mean(ours["accuracy"]) > 0.95
    # in the CLI: a row of its own beside the stages, with the paper's numbers under them
    ids = write_pairs(tmp_path / "pairs.jsonl", len(y), lambda i: {"tumor_type": str(y[i])}, lambda i, lab: texts[i])
    np.save(tmp_path / "stage0.npy", rng.normal(size=(len(y), 3)))
    (tmp_path / "stage0.ids.json").write_text(json.dumps(ids))
    assert probes.main(["probes", "--embeddings", str(tmp_path / "stage0.npy"), "--labels",
                        str(tmp_path / "pairs.jsonl"), "--part", "all", "--out", str(tmp_path / "t.json")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "t.json").read_text())
    assert result["tfidf+logreg"]["tumor_type"]["accuracy"][0] > 0.95 > result["stage0"]["tumor_type"]["accuracy"][0]
    assert "tfidf+logreg" in printed
    for number in ("61.5", "73.4", "87.2", "86.1", "96.2"):  # the alignment paper's abstract, tumour type
        assert number in printed


def test_probe_part_with_no_embedded_id_is_a_clear_error(tmp_path, capsys):
    import train_align
    ids = write_pairs(tmp_path / "pairs.jsonl", 50, lambda i: {"tumor_type": "glioblastoma"})
    train = [i for i in ids if train_align.split_part(i, 0.3) == "train"]
    np.save(tmp_path / "stage0.npy", np.zeros((len(train), 2)))
    (tmp_path / "stage0.ids.json").write_text(json.dumps(train))
    assert probes.main(["probes", "--embeddings", str(tmp_path / "stage0.npy"), "--labels",
                        str(tmp_path / "pairs.jsonl")]) == 2
    assert "--embed-part heldout" in capsys.readouterr().err


def test_stage3_of_two_runs_are_two_rows(tmp_path, capsys):
    """Comparing runs (e.g. --hard-negatives choices on the validation part): equal file names stay apart."""
    ids = write_pairs(tmp_path / "pairs.jsonl", 60, lambda i: {"tumor_type": ["glioblastoma", "meningioma"][i % 2]})
    rng = np.random.default_rng(4)
    for run, signal in (("a", 0.0), ("b", 5.0)):
        (tmp_path / run).mkdir()
        np.save(tmp_path / run / "stage3.npy", rng.normal(size=(60, 3)) + signal * (np.arange(60) % 2)[:, None])
        (tmp_path / run / "stage3.ids.json").write_text(json.dumps(ids))
    assert probes.main(["probes", "--embeddings", str(tmp_path / "a" / "stage3.npy"), str(tmp_path / "b" / "stage3.npy"),
                        "--labels", str(tmp_path / "pairs.jsonl"), "--part", "all", "--no-baseline",
                        "--out", str(tmp_path / "t.json")]) == 0
    result = json.loads((tmp_path / "t.json").read_text())
    a, b = (result[str(tmp_path / run / "stage3")]["tumor_type"]["accuracy"][0] for run in ("a", "b"))
    assert a < 0.75 < 0.95 < b
