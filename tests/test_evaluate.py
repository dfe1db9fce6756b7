"""evaluate.py: metrics against scikit-learn's own multi-class functions, Table I, the PNGs, Tables II-IV."""
import json
import pathlib
import sys

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import evaluate  # noqa: E402

CLASSES = ["Positive", "Negative", "Equivocal"]


def fake_records(n=60, seed=0, flip=0.2):
    """Test records as train_mtl.py writes them: gold, model (label + probs) and baseline per task."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        rec = {"id": f"r{i}", "gold": {}, "model": {}, "baseline": {}}
        for task, classes in {"HER2": CLASSES, "M": ["M0", "M1"], "ER": CLASSES}.items():
            gold = classes[0] if task == "M" else classes[rng.integers(len(classes))]
            p = rng.dirichlet(np.ones(len(classes)))
            if rng.random() > flip:  # mostly right
                p = 0.3 * p + 0.7 * np.eye(len(classes))[classes.index(gold)]
            rec["gold"][task] = None if (task == "ER" and i % 7 == 0) else gold
            rec["model"][task] = {"label": classes[int(p.argmax())], "probs": dict(zip(classes, p.tolist()))}
            rec["baseline"][task] = None if i % 4 == 0 else classes[rng.integers(len(classes))]
        recs.append(rec)
    return recs


def test_metrics_match_sklearn_multiclass():
    recs = fake_records()
    gold = [r["gold"]["HER2"] for r in recs]
    probs = np.array([[r["model"]["HER2"]["probs"][c] for c in CLASSES] for r in recs])
    pred = [r["model"]["HER2"]["label"] for r in recs]
    m = evaluate.task_metrics(gold, pred, probs, CLASSES)
    assert m["accuracy"] == pytest.approx(np.mean([g == p for g, p in zip(gold, pred)]))
    assert m["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"))
    order = np.argsort(CLASSES)  # sklearn wants its labels sorted
    assert m["auroc"] == pytest.approx(roc_auc_score(gold, probs[:, order], multi_class="ovr",
                                                     labels=sorted(CLASSES), average="macro"))


def test_binary_auroc_and_missing_baseline_answers():
    gold = ["a", "b", "a", "b", "a"]
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])
    m = evaluate.task_metrics(gold, ["a", "b", "b", "b", "a"], scores, ["a", "b"])
    assert m["auroc"] == pytest.approx(roc_auc_score([g == "b" for g in gold], scores[:, 1]))
    # a rule that finds nothing (None) is simply wrong; it is not an extra class of the macro average
    m = evaluate.task_metrics(gold, ["a", None, None, "b", "a"], np.zeros((5, 2)), ["a", "b"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["macro_f1"] == pytest.approx(f1_score(gold, ["a", "x", "x", "b", "a"], labels=["a", "b"], average="macro"))


def test_table_one_skips_missing_labels_and_single_class_tasks():
    recs = fake_records()
    table = evaluate.table_one(recs, {"HER2": CLASSES, "M": ["M0", "M1"], "ER": CLASSES})
    assert table["tasks"]["ER"]["model"]["n"] == sum(r["gold"]["ER"] is not None for r in recs)
    assert table["averaged_tasks"] == ["HER2", "ER"]  # M: one class in the test labels, as in the paper
    for who in ("model", "baseline"):
        assert table["average"][who]["macro_f1"] == pytest.approx(
            np.mean([table["tasks"][t][who]["macro_f1"] for t in ("HER2", "ER")]))
    text = evaluate.format_table_one(table)
    assert "HER2 Status" in text and "Overall Average" in text and "not averaged" in text
    # with an M1 in the test labels, M joins the overall average but not the paper's six-task average
    recs[0]["gold"]["M"] = "M1"
    table = evaluate.table_one(recs, {"HER2": CLASSES, "M": ["M0", "M1"], "ER": CLASSES})
    assert table["averaged_tasks"] == ["HER2", "M", "ER"]
    for who in ("model", "baseline"):
        f1 = {t: table["tasks"][t][who]["macro_f1"] for t in table["averaged_tasks"]}
        assert table["average"][who]["macro_f1"] == pytest.approx(np.mean(list(f1.values())))
        assert table["average_paper"][who]["macro_f1"] == pytest.approx(np.mean([f1["HER2"], f1["ER"]]))
    assert "Average, paper's 6" in evaluate.format_table_one(table)


def write_run(path, recs, **config):
    path.mkdir()
    cfg = {"adapter": "lora", "single_task": False, "slicing": "window", **config}
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "label_maps.json").write_text(json.dumps({"HER2": CLASSES, "M": ["M0", "M1"], "ER": CLASSES}))
    (path / "metrics.json").write_text(json.dumps({"models": 7 if cfg["single_task"] else 1,
                                                   "trainable_params": 1000, "train_seconds": 12.0,
                                                   "peak_rss_mb": 900.0}))
    (path / "test_predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (path / "train_log.jsonl").write_text("".join(json.dumps({"step": i + 1, "loss": 1 / (i + 1)}) + "\n"
                                                  for i in range(10)))
    (path / "epochs.json").write_text(json.dumps([{"epoch": 1, "step": 10, "val_loss": 0.3}]))
    return str(path)


def test_run_table_and_pngs(tmp_path, capsys):
    run = write_run(tmp_path / "run", fake_records())
    assert evaluate.main([run]) == 0
    out = capsys.readouterr().out
    assert "Table I" in out and "Overall Average" in out
    for png in ("confusion_matrices.png", "training_curves.png"):
        assert (tmp_path / "run" / png).read_bytes()[:4] == b"\x89PNG"


def test_compare_prints_ablation_tables(tmp_path, capsys):
    runs = [write_run(tmp_path / "lora", fake_records(flip=0.1)),
            write_run(tmp_path / "frozen", fake_records(flip=0.6), adapter="frozen"),
            write_run(tmp_path / "stl", fake_records(flip=0.3), single_task=True),
            write_run(tmp_path / "full", fake_records(flip=0.1), slicing="full"),
            write_run(tmp_path / "random", fake_records(flip=0.5), slicing="random")]
    assert evaluate.main(["--compare", *runs]) == 0
    out = capsys.readouterr().out
    t2, t3, t4 = out.index("Table II"), out.index("Table III"), out.index("Table IV")
    assert "Frozen (Head)" in out[t2:t3] and "LoRA" in out[t2:t3] and "STL" not in out[t2:t3]
    assert "STL (7 models)" in out[t3:t4] and "MTL (1 model)" in out[t3:t4] and "HER2" in out[t3:t4]
    assert "Random Window" in out[t4:] and "Full Text" in out[t4:] and "Frozen" not in out[t4:]


def test_missing_run_files_are_named(tmp_path):
    with pytest.raises(SystemExit, match="config.json not found"):
        evaluate.read_run(str(tmp_path))


def test_not_stated_accuracy_counts_null_answers_on_omitted_fields():
    """Fields the report omits: a null answer is right, any class is wrong; counted by hand."""
    recs = fake_records()
    for i, r in enumerate(recs):
        if r["gold"]["ER"] is None and i % 2:
            r["model"]["ER"]["label"] = None
    omitted = [r for r in recs if r["gold"]["ER"] is None]
    table = evaluate.table_one(recs, {"HER2": CLASSES, "M": ["M0", "M1"], "ER": CLASSES})
    ns = table["not_stated"]
    assert ns["n"] == len(omitted) > 0 and set(ns["tasks"]) == {"ER"}
    assert ns["model"] == pytest.approx(sum(r["model"]["ER"]["label"] is None for r in omitted) / len(omitted))
    assert ns["baseline"] == pytest.approx(sum(r["baseline"]["ER"] is None for r in omitted) / len(omitted))
    assert 0 < ns["model"] < 1
    assert "Not stated" in evaluate.format_table_one(table)
    # a null answer on a stated field is a miss: it lowers recall, like any wrong class
    stated = next(r for r in recs if r["gold"]["HER2"] == r["model"]["HER2"]["label"])
    before = evaluate.table_one(recs)["tasks"]["HER2"]["model"]["accuracy"]
    stated["model"]["HER2"]["label"] = None
    after = evaluate.table_one(recs)["tasks"]["HER2"]["model"]["accuracy"]
    assert after == pytest.approx(before - 1 / sum(r["gold"]["HER2"] is not None for r in recs))


def test_style_table_scores_each_style_on_its_own_records():
    recs = fake_records(flip=0.1) + fake_records(n=40, seed=1, flip=0.9)
    for i, r in enumerate(recs):
        r["style"] = "tidy" if i < 60 else "broken"
    rows = evaluate.style_table(recs)
    assert set(rows) == {"tidy", "broken"} and rows["tidy"][0] == 60 and rows["broken"][0] == 40
    alone = evaluate.table_one(recs[60:])["average_paper"]
    assert rows["broken"][1:] == (alone["model"]["macro_f1"], alone["baseline"]["macro_f1"])
    assert rows["tidy"][1] > rows["broken"][1]
    assert "broken" in evaluate.format_style_table(rows)
