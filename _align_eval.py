"""
Alignment probes: how much of tumour type, MGMT status and one-year survival a linear probe reads from the
embeddings of each stage (the table of the alignment paper, plus a stage-0 row for the untouched model).

    python _align_eval.py --embeddings runs/align/embeddings/stage*.npy --labels examples/pairs.jsonl

Per stage and task: 5-fold stratified cross-validation of a scikit-learn Pipeline(StandardScaler,
LogisticRegression). The scaler sits inside the pipeline, so its mean and variance are fitted on the training
folds only; nothing of the held-out fold reaches the probe. Reported: accuracy, macro F1 and AUROC (one-vs-rest
macro average when there are more than two classes), mean ± sd over the folds, in percent.
(To be merged into evaluate.py as its `probes` subcommand.)
"""

import argparse
import json
import pathlib
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import data

PROBE_TASKS = ("tumor_type", "mgmt", "survival_1y")
METRICS = ("accuracy", "macro_f1", "auroc")

# -----------------------------------------------------------------------------
# inputs

def read_embeddings(npy_path):
    """(ids, X): X (N, D) float from the .npy, ids from the .ids.json written next to it by train_align.py."""
    npy_path = pathlib.Path(npy_path)
    ids_path = npy_path.with_suffix(".ids.json")
    if not ids_path.exists():
        raise FileNotFoundError(f"{ids_path}: ids file missing (train_align.py --embed writes it next to {npy_path.name})")
    X = np.load(npy_path)
    ids = json.loads(ids_path.read_text())
    if X.ndim != 2 or len(ids) != len(X):
        raise ValueError(f"{npy_path}: {X.shape} embeddings but {len(ids)} ids in {ids_path.name}")
    if not np.isfinite(X).all():
        raise ValueError(f"{npy_path}: embeddings contain NaN or inf")
    return ids, X


def read_labels(pairs_path, tasks=PROBE_TASKS):
    """{id: {task: canonical label or None}} from a pairs.jsonl, validated by data.read_pairs."""
    return {p.id: {t: p.labels.get(t) for t in tasks} for p in data.read_pairs(pairs_path)}


def stage_name(npy_path):
    """'stage2' from runs/align/embeddings/stage2.npy."""
    return pathlib.Path(npy_path).stem

# -----------------------------------------------------------------------------
# the probe

def make_probe(seed=42):
    """Standardise then logistic regression; as one Pipeline, so the scaler is refitted inside every fold."""
    return Pipeline([("scale", StandardScaler()),
                     ("logreg", LogisticRegression(max_iter=2000, random_state=seed))])


def auroc(y_true, proba, classes):
    """Binary AUROC, or the one-vs-rest macro average over the classes present in y_true (sklearn's 'ovr')."""
    classes = list(classes)
    if len(classes) == 2:
        return roc_auc_score(y_true == classes[1], proba[:, 1])
    present = [c for c in classes if 0 < (y_true == c).sum() < len(y_true)]
    return float(np.mean([roc_auc_score(y_true == c, proba[:, classes.index(c)]) for c in present]))


def cross_validate_probe(X, y, folds=5, seed=42):
    """5-fold stratified CV of make_probe() on (X, y) -> {metric: [value per fold]}.

    Classes with fewer members than folds cannot be stratified; they are dropped with a note on stderr.
    """
    y = np.asarray(y, dtype=object).astype(str)
    values, counts = np.unique(y, return_counts=True)
    rare = values[counts < folds]
    if len(rare):
        print(f"probe: classes {list(rare)} have fewer than {folds} rows and are left out", file=sys.stderr)
        keep = ~np.isin(y, rare)
        X, y = X[keep], y[keep]
    if len(np.unique(y)) < 2:
        raise ValueError("probe: fewer than two classes left to classify")
    scores = {m: [] for m in METRICS}
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        probe = make_probe(seed).fit(X[train], y[train])        # fitted on the training folds only
        proba = probe.predict_proba(X[test])                    # (n_test, C) in probe.classes_ order
        pred = probe.classes_[proba.argmax(1)]
        scores["accuracy"].append(accuracy_score(y[test], pred))
        scores["macro_f1"].append(f1_score(y[test], pred, average="macro"))
        scores["auroc"].append(auroc(y[test], proba, probe.classes_))
    return scores


def probe_stage(ids, X, labels, tasks=PROBE_TASKS, folds=5, seed=42):
    """{task: {metric: (mean, sd)}} for one stage's embeddings; rows without the task's label are skipped."""
    missing = [i for i in ids if i not in labels]
    if missing:
        raise ValueError(f"probe: {len(missing)} embedding ids have no labels, e.g. {missing[:3]}")
    table = {}
    for task in tasks:
        rows = [k for k, i in enumerate(ids) if labels[i].get(task) is not None]
        if not rows:
            continue
        y = [labels[ids[k]][task] for k in rows]
        scores = cross_validate_probe(X[rows], y, folds, seed)
        table[task] = {m: (float(np.mean(v)), float(np.std(v, ddof=1))) for m, v in scores.items()}
        table[task]["n"] = len(rows)
    return table

# -----------------------------------------------------------------------------
# the table

def format_table(results):
    """results {stage: {task: {metric: (mean, sd)}}} -> the paper's table, one block per task, in percent."""
    lines = []
    tasks = [t for t in PROBE_TASKS if any(t in r for r in results.values())]
    for task in tasks:
        n = next(r[task]["n"] for r in results.values() if task in r)
        lines.append(f"{task} (n={n}, 5-fold CV, mean ± sd %)")
        lines.append(f"  {'stage':<10}{'accuracy':>16}{'macro F1':>16}{'AUROC':>16}")
        for stage, r in results.items():
            if task in r:
                cells = "".join(f"{100 * r[task][m][0]:>9.1f} ± {100 * r[task][m][1]:<4.1f}" for m in METRICS)
                lines.append(f"  {stage:<10}{cells}")
        lines.append("")
    return "\n".join(lines)


def probes(args):
    """The `probes` subcommand: one row per embeddings file, one block per task."""
    labels = read_labels(args.labels)
    results = {}
    for path in args.embeddings:
        ids, X = read_embeddings(path)
        results[stage_name(path)] = probe_stage(ids, X, labels, folds=args.folds, seed=args.seed)
    print(format_table(results))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    return results


def add_probe_args(p):
    p.add_argument("--embeddings", nargs="+", required=True, help="stageK.npy files from train_align.py --embed")
    p.add_argument("--labels", required=True, help="pairs.jsonl with labels tumor_type, mgmt, survival_1y")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", help="also write the table as JSON here")


def main(argv=None):
    p = argparse.ArgumentParser(description="Linear probes on alignment embeddings (alignment paper table).")
    add_probe_args(p)
    return probes(p.parse_args(argv))


if __name__ == "__main__":
    main()
