"""
The tables of the MTL paper for runs of train_mtl.py (and, via `probes`, the alignment paper's probe table).

    python evaluate.py runs/mtl                          # Table I + confusion matrices + training curves (PNG)
    python evaluate.py runs/mtl --data my_reports.jsonl  # Table I of the run on any labelled file
    python evaluate.py --compare runs/a runs/b ...       # Tables II (adapters), III (MTL vs STL), IV (slicing)
    python evaluate.py probes ...                        # alignment: logistic-regression probes per stage

Metrics per task on the test split, over the reports that state the task: accuracy, macro F1 over the classes
present in the test labels, AUROC (one-vs-rest, macro over classes, for more than two classes). The naive
baseline has no probabilities: its score is the one-hot of its answer (all zero when it finds nothing),
which is how a rule system gets an AUROC at all. A task with a single class in the test labels is shown but
left out of the average. The paper's cohort was all M0, so its Table I has no M row and averages six tasks;
our corpus has M1 cases, so the table gives both averages: over every task, and over the paper's six. A
field the report omits is scored apart: the share of those answered "not stated" (null).
"""

import argparse
import hashlib
import json
import math
import os
import pathlib
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import data

TASK_NAMES = {"T": "T Stage", "N": "N Stage", "M": "M Stage", "grade": "Histologic Grade",
              "ER": "ER Status", "PR": "PR Status", "HER2": "HER2 Status"}
METRICS = ("accuracy", "macro_f1", "auroc")

# -----------------------------------------------------------------------------
# metrics

def task_metrics(gold, pred, scores, classes):
    """gold, pred: labels (pred may be None = no answer); scores (N, C) over `classes`. -> accuracy, F1, AUROC."""
    gold, scores = list(gold), np.asarray(scores, dtype=np.float64)
    present = [c for c in classes if c in set(gold)]
    pred = [p if p is not None else "<none>" for p in pred]
    out = {"n": len(gold), "accuracy": float(accuracy_score(gold, pred)),
           "macro_f1": float(f1_score(gold, pred, labels=present, average="macro", zero_division=0))}
    out["auroc"] = ovr_auroc(gold, scores, classes)
    return out


def ovr_auroc(gold, scores, classes):
    """AUROC one-vs-rest, macro-averaged over the classes present in gold; scores (N, C) over `classes`.
    With two classes both directions give the same number, the binary AUROC."""
    gold, classes = np.asarray(gold, dtype=object), list(classes)
    aucs = [roc_auc_score(gold == c, scores[:, classes.index(c)]) for c in classes if 0 < (gold == c).sum() < len(gold)]
    return float(np.mean(aucs)) if aucs else float("nan")


def table_one(records, label_sets=None):
    """Test records (gold / model / baseline per task) -> per-task and average metrics of model and baseline, over
    the reports that state each task, and the not-stated accuracy over the fields they omit."""
    tasks = list(records[0]["gold"]) if records else []
    table = {"tasks": {}, "average": {}}
    for task in tasks:
        rows = [r for r in records if r["gold"].get(task) is not None and task in r["model"]]
        if not rows:
            continue
        classes = (label_sets or {}).get(task) or list(rows[0]["model"][task]["probs"])
        classes = [c for c in classes if c != data.NOT_STATED]
        gold = [r["gold"][task] for r in rows]
        model_scores = [[r["model"][task]["probs"][c] for c in classes] for r in rows]
        base = [r["baseline"].get(task) for r in rows]
        base_scores = [[1.0 if b == c else 0.0 for c in classes] for b in base]
        table["tasks"][task] = {
            "classes_in_test": sorted(set(gold), key=classes.index),
            "model": task_metrics(gold, [r["model"][task]["label"] for r in rows], model_scores, classes),
            "baseline": task_metrics(gold, base, base_scores, classes)}
    averaged = [t for t, v in table["tasks"].items() if len(v["classes_in_test"]) > 1]
    table["averaged_tasks"] = averaged
    table["average_paper"] = {}
    for who in ("model", "baseline"):
        table["average"][who] = {m: _mean([table["tasks"][t][who][m] for t in averaged]) for m in METRICS}
        table["average_paper"][who] = {m: _mean([table["tasks"][t][who][m] for t in averaged if t != "M"])
                                       for m in METRICS}
    table["not_stated"] = not_stated_accuracy(records, tasks)
    return table


def _answer(record, who, task):
    """The label a record's model or baseline gave for a task (None = not stated)."""
    a = record[who].get(task)
    return a["label"] if isinstance(a, dict) else a


def not_stated_accuracy(records, tasks):
    """Over the fields a report omits (gold null): the share answered null as well, per task and over all."""
    out = {"tasks": {}}
    pooled = {"model": [], "baseline": []}
    for task in tasks:
        rows = [r for r in records if r["gold"].get(task) is None and task in r["model"]]
        if rows:
            out["tasks"][task] = {"n": len(rows)}
            for who in pooled:
                hits = [_answer(r, who, task) is None for r in rows]
                out["tasks"][task][who] = sum(hits) / len(hits)
                pooled[who] += hits
    out["n"] = len(pooled["model"])
    for who, hits in pooled.items():
        out[who] = sum(hits) / len(hits) if hits else float("nan")
    return out


def style_table(records, label_sets=None):
    """{style: (n, six-task macro F1 of the model, of the baseline)} for records that carry a style."""
    styles = sorted({r.get("style") for r in records if r.get("style")})
    out = {}
    for style in styles:
        t = table_one([r for r in records if r.get("style") == style], label_sets)
        out[style] = (sum(r.get("style") == style for r in records), t["average_paper"]["model"]["macro_f1"],
                      t["average_paper"]["baseline"]["macro_f1"])
    return out


def format_style_table(rows):
    lines = [f"{'Style':26s} {'n':>5s} {'Baseline':>9s} {'Model':>7s} {'Model - Baseline':>17s}   "
             "(macro F1, the paper's six tasks)"]
    for style, (n, m, b) in rows.items():
        lines.append(f"{style:26s} {n:5d} {_f(b):>9s} {_f(m):>7s} {m - b:>+17.3f}")
    return "\n".join(lines)


def _mean(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return float(np.mean(xs)) if xs else float("nan")


def _f(x):
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def format_table_one(table, title="Table I"):
    """The paper's Table I: naive baseline and multi-task model side by side."""
    lines = [title, f"{'':18s} {'Naive Baseline':^23s} | {'Multi-Task LLM':^23s}",
             f"{'Clinical Task':18s} {'Acc':>7s} {'F1':>7s} {'AUC':>7s} | {'Acc':>7s} {'F1':>7s} {'AUC':>7s}    n"]
    for task, v in table["tasks"].items():
        b, m = v["baseline"], v["model"]
        note = "" if task in table["averaged_tasks"] else "  (one class in test: not averaged)"
        lines.append(f"{TASK_NAMES.get(task, task):18s} " + " ".join(f"{_f(b[k]):>7s}" for k in METRICS) + " | "
                     + " ".join(f"{_f(m[k]):>7s}" for k in METRICS) + f" {m['n']:4d}{note}")
    for name, key in (("Overall Average", "average"), ("Average, paper's 6", "average_paper")):
        b, m = table[key]["baseline"], table[key]["model"]
        lines.append(f"{name:18s} " + " ".join(f"{_f(b[k]):>7s}" for k in METRICS) + " | "
                     + " ".join(f"{_f(m[k]):>7s}" for k in METRICS))
    ns = table.get("not_stated")
    if ns and ns["n"]:
        lines.append(f"{'Not stated: acc.':18s} {_f(ns['baseline']):>7s} {'':15s} | {_f(ns['model']):>7s} "
                     f"{'':15s} {ns['n']:4d}  (fields the report omits, answered null)")
    return "\n".join(lines)

# -----------------------------------------------------------------------------
# a run directory

def read_run(run):
    """config.json, metrics.json, label_maps.json and test predictions of a finished train_mtl.py run.
    A missing or unreadable file stops with a message that names it."""
    out = {}
    if not os.path.isdir(run):
        raise SystemExit(f"evaluate.py: {run}: not a run directory")
    for name in ("config.json", "metrics.json", "label_maps.json", "test_predictions.jsonl"):
        path = os.path.join(run, name)
        if not os.path.exists(path):
            raise SystemExit(f"evaluate.py: {path} not found (is {run} a finished train_mtl.py run?)")
        try:
            with open(path) as f:
                out[name.split(".")[0]] = [json.loads(l) for l in f] if name.endswith(".jsonl") else json.load(f)
        except (OSError, ValueError) as e:
            raise SystemExit(f"evaluate.py: {path}: cannot read it ({e})") from None
    out["records"] = out.pop("test_predictions")
    if not out["records"]:
        raise SystemExit(f"evaluate.py: {run}/test_predictions.jsonl holds no test reports")
    return out


def plot_confusion(records, label_sets, path):
    """One confusion matrix per task (rows: true class, columns: predicted class; 'not stated' included) in one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tasks = [t for t in label_sets if any(t in r["model"] for r in records)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.4 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = [r for r in records if task in r["model"]]
        classes = [c for c in label_sets[task] if c != data.NOT_STATED] + [data.NOT_STATED]
        cm = confusion_matrix([r["gold"].get(task) or data.NOT_STATED for r in rows],
                              [r["model"][task]["label"] or data.NOT_STATED for r in rows], labels=classes)
        ax.imshow(cm, cmap="Blues")
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=60, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_title(TASK_NAMES.get(task, task), fontsize=9)
        ax.set_xlabel("predicted", fontsize=7)
    axes[0][0].set_ylabel("true", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(run, path):
    """Training loss per optimizer step and validation loss per epoch (paper Fig. S2a)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    log_path, ep_path = os.path.join(run, "train_log.jsonl"), os.path.join(run, "epochs.json")
    if not os.path.exists(log_path):
        return False
    log = [json.loads(l) for l in open(log_path)]
    epochs = json.load(open(ep_path)) if os.path.exists(ep_path) else []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([e["step"] for e in log], [e["loss"] for e in log], label="train loss (per step)", lw=1)
    if epochs:
        ax.plot([e["step"] for e in epochs], [e["val_loss"] for e in epochs], "o-", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("multi-task loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def evaluate_run(run, plots=True):
    """Print Table I of a run and write its confusion-matrix and training-curve PNGs."""
    r = read_run(run)
    label_sets = r["label_maps"]
    table = table_one(r["records"], label_sets)
    print(format_table_one(table, title=f"Table I: {run} (S_test = {len(r['records'])})"))
    styles = style_table(r["records"], label_sets)
    if styles:
        print("\n" + format_style_table(styles))
    if plots:
        plot_confusion(r["records"], label_sets, os.path.join(run, "confusion_matrices.png"))
        curves = plot_curves(run, os.path.join(run, "training_curves.png"))
        print(f"\nwrote {run}/confusion_matrices.png" + (f", {run}/training_curves.png" if curves else ""))
    return table


def score_file(run, path, out=None, skip_bad=False, drop_hints=False, batch=8, plots=True):
    """Table I of a trained run on any labelled reports file (your own held-out reports), next to the baseline,
    with a per-style table when the records carry a style; writes predictions and confusion matrices to `out`."""
    import train_mtl  # here, not at the top: train_mtl imports this module
    from llama import load_tokenizer
    reports = data.read_reports(path, skip_bad=skip_bad)
    if not reports:
        raise SystemExit(f"evaluate.py: --data {path}: no reports to score (empty file, or every line left out)")
    cfg, models, dtype, device = train_mtl.load_run(run)
    tok = load_tokenizer(cfg.model)
    records = train_mtl.score_reports(models, reports, cfg, tok, dtype, device, batch,
                                      data.TASKS if drop_hints else (), desc=os.path.basename(path))
    table = table_one(records, data.LABEL_SETS)
    text = format_table_one(table, title=f"Table I: {run} on {path} (S = {len(records)}"
                                         + (", hints removed)" if drop_hints else ")"))
    styles = style_table(records, data.LABEL_SETS)
    if styles:
        text += "\n\n" + format_style_table(styles)
    print(text)
    out = out or os.path.join(run, "eval_" + pathlib.Path(path).stem + ("_no_hints" if drop_hints else ""))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "predictions.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    pathlib.Path(out, "table.txt").write_text(text + "\n")
    pathlib.Path(out, "metrics.json").write_text(json.dumps({"table": table, "by_style": styles}, indent=2))
    if plots:
        plot_confusion(records, data.LABEL_SETS, os.path.join(out, "confusion_matrices.png"))
    print(f"\nwrote {out}/: predictions.jsonl, table.txt, metrics.json" + (", confusion_matrices.png" if plots else ""))
    return table

# -----------------------------------------------------------------------------
# ablation tables from several runs

def _summary(run):
    r = read_run(run)
    table = table_one(r["records"], r["label_maps"])
    return {"run": run, "config": r["config"], "metrics": r["metrics"], "table": table}


def format_compare(runs):
    """Tables II-IV of the paper from runs that differ in --adapter, --single-task, --slicing."""
    s = [_summary(run) for run in runs]
    avg = lambda x: x["table"]["average"]["model"]
    out = []

    def block(title, rows, label, extra_head="", extra=lambda x: ""):
        if len(rows) < 1:
            return
        out.append(title)
        out.append(f"{'Configuration':28s} {'Params':>12s} {'Time (s)':>9s} {'Mem (MB)':>9s} "
                   f"{'Accuracy':>9s} {'Macro F1':>9s} {'AUROC':>7s}{extra_head}")
        for x in rows:
            m, a = x["metrics"], avg(x)
            out.append(f"{label(x):28s} {m['trainable_params']:>12,d} {m['train_seconds']:>9.0f} "
                       f"{m['peak_rss_mb']:>9.0f} {_f(a['accuracy']):>9s} {_f(a['macro_f1']):>9s} "
                       f"{_f(a['auroc']):>7s}{extra(x)}")
        out.append("")

    cfg = lambda x, k: x["config"].get(k)
    block("Table II: adaptation strategies (multi-task, window slicing)",
          [x for x in s if not cfg(x, "single_task") and cfg(x, "slicing") == "window"],
          lambda x: {"lora": "LoRA", "ia3": "(IA)^3", "prefix": "Prefix Tuning", "frozen": "Frozen (Head)"}[cfg(x, "adapter")] + f" [{os.path.basename(x['run'])}]")
    tasks = [t for t in TASK_NAMES if any(t in x["table"]["averaged_tasks"] for x in s)]
    block("Table III: multi-task vs single-task (LoRA, window slicing); per-task macro F1 on the right",
          [x for x in s if cfg(x, "adapter") == "lora" and cfg(x, "slicing") == "window"],
          lambda x: (f"STL ({x['metrics']['models']} models)" if cfg(x, "single_task") else "MTL (1 model)")
          + f" [{os.path.basename(x['run'])}]",
          extra_head="".join(f" {t:>6s}" for t in tasks),
          extra=lambda x: "".join(f" {_f(x['table']['tasks'].get(t, {}).get('model', {}).get('macro_f1')):>6s}"
                                  for t in tasks))
    block("Table IV: input slicing (LoRA, multi-task)",
          [x for x in s if cfg(x, "adapter") == "lora" and not cfg(x, "single_task")],
          lambda x: {"full": "Full Text (No Slicing)", "random": "Random Window",
                     "window": "Window Slicing (+5 lines)"}[cfg(x, "slicing")] + f" [{os.path.basename(x['run'])}]")
    return "\n".join(out)


# -----------------------------------------------------------------------------
# alignment probes (python evaluate.py probes): how much of tumour type, MGMT status and one-year survival a
# linear probe reads from each stage's embeddings, the alignment paper's table plus a stage-0 row.
# Per stage and task: 5-fold stratified cross-validation of Pipeline(StandardScaler, LogisticRegression). The
# scaler sits inside the pipeline, so its mean and variance are fitted on the training folds only: nothing of
# the held-out fold reaches the probe. Accuracy, macro F1, AUROC as mean ± sd over the folds, in percent.
# The probes read held-out patients only (--part heldout: the pairs train_align.py's --holdout kept out of every
# stage), as the paper cross-validates on its labelled cohorts; the rows are sorted by id, so every stage and the
# TF-IDF baseline see the same folds.

PROBE_TASKS = ("tumor_type", "mgmt", "survival_1y")
# the alignment paper's abstract (Llama-3.1-8B, 97,398 pairs): accuracy, macro F1, AUROC in %, 5-fold CV on
# n = 4,046 (tumour type), 201 (MGMT), 539 (one-year survival); it gives only these rows
PAPER = {
    "tumor_type": {"stage1": (61.5, 49.0, 81.4), "stage2": (73.4, 59.4, 90.5), "stage3": (87.2, 86.1, 96.2),
                   "GPT-4o zero-shot": (85.5, 84.0, 35.1)},
    "mgmt": {"stage3": (77.1, 60.0, 76.1), "GPT-4o zero-shot": (45.6, 33.1, 54.5)},
    "survival_1y": {"stage2": (71.8, 69.4, 79.5), "GPT-4o zero-shot": (71.1, 56.4, 30.0)},
}
PAPER_N = {"tumor_type": 4046, "mgmt": 201, "survival_1y": 539}
BASELINE = "tfidf+logreg"


def read_embeddings(npy_path):
    """(ids, X): X (N, D) float from the .npy, ids from the .ids.json written next to it by train_align.py."""
    npy_path = pathlib.Path(npy_path)
    ids_path = npy_path.with_suffix(".ids.json")
    if not npy_path.exists():
        raise FileNotFoundError(f"{npy_path}: not found (train_align.py --embed writes stageK.npy)")
    if not ids_path.exists():
        raise FileNotFoundError(f"{ids_path}: ids file missing (train_align.py --embed writes it next to {npy_path.name})")
    X = np.load(npy_path)
    ids = json.loads(ids_path.read_text())
    if X.ndim != 2 or len(ids) != len(X):
        raise ValueError(f"{npy_path}: {X.shape} embeddings but {len(ids)} ids in {ids_path.name}")
    if not np.isfinite(X).all():
        raise ValueError(f"{npy_path}: embeddings contain NaN or inf")
    return ids, X


def probe_labels(pairs, tasks=PROBE_TASKS):
    """{id: {task: canonical label or None}} of pairs read (and validated) by data.read_pairs."""
    return {p.id: {t: p.labels.get(t) for t in tasks} for p in pairs}


def stage_name(npy_path):
    """'stage2' from runs/align/embeddings/stage2.npy."""
    return pathlib.Path(npy_path).stem


def probe_ids(embedded, labels, part="heldout", holdout=0.3, validation=0.0):
    """Sorted ids that every embeddings file holds, that have labels, and that fall in `part` of train_align.py's
    split ('all': every one). embedded: one id list per file. -> (ids, how many embedded ids were left out)."""
    from train_align import split_part  # the one definition of the split
    common = set(embedded[0]).intersection(*embedded[1:])
    missing = sorted(common - set(labels))
    if missing:
        raise ValueError(f"probe: {len(missing)} embedding ids have no labels, e.g. {missing[:3]}")
    ids = sorted(i for i in common if part == "all" or split_part(i, holdout, validation) == part)
    if not ids:
        raise ValueError(f"probe: none of the {len(common)} embedded ids is in the {part} part (--holdout {holdout}, "
                         f"--validation {validation}); embed it with train_align.py --embed-part {part}, or use --part all")
    return ids, len(set().union(*embedded)) - len(ids)

# -----------------------------------------------------------------------------
# the probe

def make_probe(seed=42):
    """Standardise then logistic regression; as one Pipeline, so the scaler is refitted inside every fold."""
    return Pipeline([("scale", StandardScaler()),
                     ("logreg", LogisticRegression(max_iter=2000, random_state=seed))])


def make_tfidf_probe(seed=42):
    """The baseline a user would try first: TF-IDF of words and word pairs, then logistic regression with its C
    chosen by a 3-fold search inside the training folds (tuned for the baseline, so it is not a straw man)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import GridSearchCV
    pipe = Pipeline([("tfidf", TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)),
                     ("logreg", LogisticRegression(max_iter=2000, random_state=seed))])
    return GridSearchCV(pipe, {"logreg__C": [0.1, 1.0, 10.0, 100.0]},
                        cv=StratifiedKFold(3, shuffle=True, random_state=seed))


def cross_validate_probe(X, y, folds=5, seed=42, make=make_probe):
    """5-fold stratified CV of make() on (X, y) -> {metric: [value per fold]}. X: (N, D) features, or an object
    array of N texts for make_tfidf_probe.

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
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        probe = make(seed).fit(X[train], y[train])              # fitted on the training folds only
        proba = probe.predict_proba(X[test])                    # (n_test, C) in probe.classes_ order
        pred = probe.classes_[proba.argmax(1)]
        scores["accuracy"].append(accuracy_score(y[test], pred))
        scores["macro_f1"].append(f1_score(y[test], pred, average="macro"))
        scores["auroc"].append(ovr_auroc(y[test], proba, probe.classes_))
    return scores


def probe_stage(ids, X, labels, tasks=PROBE_TASKS, folds=5, seed=42, make=make_probe):
    """{task: {metric: (mean, sd)}} for one stage's embeddings (or texts); rows without the task's label are
    skipped."""
    missing = [i for i in ids if i not in labels]
    if missing:
        raise ValueError(f"probe: {len(missing)} embedding ids have no labels, e.g. {missing[:3]}")
    table = {}
    for task in tasks:
        rows = [k for k, i in enumerate(ids) if labels[i].get(task) is not None]
        if not rows:
            continue
        y = [labels[ids[k]][task] for k in rows]
        scores = cross_validate_probe(X[rows], y, folds, seed, make)
        table[task] = {m: (float(np.mean(v)), float(np.std(v, ddof=1))) for m, v in scores.items()}
        table[task]["n"] = len(rows)
    return table

# -----------------------------------------------------------------------------
# the table

def format_table(results, paper=True, folds=5):
    """results {row: {task: {metric: (mean, sd)}}} -> the paper's table, one block per task, in percent, with
    the paper's own rows (no sd given) under ours."""
    lines = []
    rows = {k: r for k, r in results.items() if not k.startswith("_")}
    tasks = [t for t in PROBE_TASKS if any(t in r for r in rows.values())]
    for task in tasks:
        n = next(r[task]["n"] for r in rows.values() if task in r)
        lines.append(f"{task} (n={n}, {folds}-fold CV, mean ± sd %)")
        lines.append(f"  {'':<30}{'accuracy':>16}{'macro F1':>16}{'AUROC':>16}")
        for name, r in rows.items():
            if task in r:
                cells = "".join(f"{100 * r[task][m][0]:>9.1f} ± {100 * r[task][m][1]:<4.1f}" for m in METRICS)
                lines.append(f"  {name:<30}{cells}")
        for name, values in (PAPER[task].items() if paper else ()):
            label = f"paper {name} (n={PAPER_N[task]:,})"
            lines.append(f"  {label:<30}" + "".join(f"{v:>9.1f}{'':7}" for v in values))
        lines.append("")
    return "\n".join(lines)


def probes(args):
    """The `probes` subcommand: one row per embeddings file plus the TF-IDF baseline, one block per task, on the
    held-out part (--part) only."""
    pairs = data.read_pairs(args.labels)
    labels = probe_labels(pairs)
    stems = [stage_name(path) for path in args.embeddings]  # stage3.npy of two runs: named by their paths instead
    names = [n if stems.count(n) == 1 else str(pathlib.Path(path).with_suffix("")) for n, path in zip(stems, args.embeddings)]
    if len(set(names)) < len(names):
        raise ValueError(f"--embeddings: the same file given twice: {args.embeddings}")
    loaded = {name: read_embeddings(path) for name, path in zip(names, args.embeddings)}
    ids, left_out = probe_ids([i for i, _ in loaded.values()], labels, args.part, args.holdout, args.validation)
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    print(f"probes on the {args.part} part (--holdout {args.holdout}, --validation {args.validation}; by sha256 of "
          f"the id): {len(ids)} patients, {ids[0]} ... {ids[-1]} (id list sha256 {digest}"
          + (", every id in --out" if args.out else "") + ")"
          + (f"; {left_out} embedded ids of other parts left out" if left_out else ""))
    results = {}
    for name, (emb_ids, X) in loaded.items():
        row = {i: k for k, i in enumerate(emb_ids)}
        results[name] = probe_stage(ids, X[[row[i] for i in ids]], labels, folds=args.folds, seed=args.seed)
    if args.baseline:
        radiology = {p.id: p.radiology for p in pairs}
        texts = np.array([radiology[i] for i in ids], dtype=object)
        results[BASELINE] = probe_stage(ids, texts, labels, folds=args.folds, seed=args.seed, make=make_tfidf_probe)
    print(format_table(results, folds=args.folds))
    if args.out:
        out = dict(results, _split={"part": args.part, "holdout": args.holdout, "validation": args.validation,
                                    "n": len(ids), "ids_sha256": digest, "ids": ids})
        pathlib.Path(args.out).write_text(json.dumps(out, indent=2))
    return results


def add_probe_args(p):
    from train_align import HOLDOUT
    p.add_argument("--embeddings", nargs="+", required=True, help="stageK.npy files from train_align.py --embed")
    p.add_argument("--labels", required=True, help="pairs.jsonl with labels tumor_type, mgmt, survival_1y")
    p.add_argument("--part", choices=["heldout", "validation", "all"], default="heldout",
                   help="which patients to probe: the held-out part of train_align.py's split (the honest default), "
                        "the validation part (for choosing settings), or every embedded id (the old behaviour)")
    p.add_argument("--holdout", type=float, default=HOLDOUT, help="as given to train_align.py")
    p.add_argument("--validation", type=float, default=0.0, help="as given to train_align.py")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="leave out the TF-IDF + logistic regression row on the radiology texts")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", help="also write the table (and the probed ids) as JSON here")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["probes"]:
        p = argparse.ArgumentParser(prog="evaluate.py probes",
                                    description="Linear probes on alignment embeddings (alignment paper table).")
        add_probe_args(p)
        try:
            probes(p.parse_args(argv[1:]))
        except (OSError, ValueError) as e:  # data.DataError included: every bad line of --labels listed
            print(f"evaluate.py probes: {e}", file=sys.stderr)
            return 2
        return 0
    p = argparse.ArgumentParser(description="Tables of the MTL paper for train_mtl.py runs.")
    p.add_argument("run", nargs="?", help="a run directory: prints Table I, writes PNGs")
    p.add_argument("--data", help="score the run on this labelled reports.jsonl instead of its own test split")
    p.add_argument("--no-hints", action="store_true", help="with --data: every hint line reads 'withheld' (ablation)")
    p.add_argument("--skip-bad", action="store_true", help="with --data: leave out bad lines (listed)")
    p.add_argument("--out", help="with --data: where to write predictions and plots (default RUN/eval_<file>)")
    p.add_argument("--compare", nargs="+", metavar="RUN", help="runs of the ablation flags: Tables II-IV")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    if args.compare:
        print(format_compare(args.compare))
    elif args.run and args.data:
        import train_mtl
        try:
            score_file(args.run, args.data, args.out, args.skip_bad, args.no_hints, plots=not args.no_plots)
        except (data.DataError, train_mtl.RunError) as e:
            print(f"evaluate.py: {e}", file=sys.stderr)
            return 2
        except (OSError, UnicodeError) as e:  # --data missing, a directory, not UTF-8; --out not writable
            print(f"evaluate.py: {e} (--data {args.data}, --out {args.out})", file=sys.stderr)
            return 2
    elif args.run:
        evaluate_run(args.run, plots=not args.no_plots)
    else:
        p.error("give a run directory or --compare RUN ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
