"""The MTL paper's naive rule-based baseline (Table I, left) on a reports file: per-task accuracy and macro F1.

    python bench/baseline.py --data examples/reports.jsonl            # all reports
    python bench/baseline.py --data examples/reports.jsonl --split test

Scored on reports whose label is stated; a missing prediction counts as wrong. Macro F1 averages over the
task's classes that occur in the gold labels or the predictions (scikit-learn's f1_score, average="macro").
The paper reports macro F1 0.554 (accuracy 0.749) averaged over T, N, grade, ER, PR, HER2 on its real data.
"""
import argparse
import pathlib
import sys

from sklearn.metrics import accuracy_score, f1_score

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import data  # noqa: E402


def score(reports):
    """{task: (n, accuracy, macro F1)} of the naive baseline."""
    preds = [data.naive_baseline(r.text) for r in reports]
    out = {}
    for task in data.TASKS:
        gold = [r.labels[task] for r in reports if r.labels[task] is not None]
        pred = [p[task] or "none" for r, p in zip(reports, preds) if r.labels[task] is not None]
        labels = sorted(set(gold) | (set(pred) - {"none"}))
        out[task] = (len(gold), accuracy_score(gold, pred), f1_score(gold, pred, labels=labels, average="macro",
                                                                     zero_division=0))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="examples/reports.jsonl")
    p.add_argument("--split", choices=["all", "train", "val", "test"], default="all")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    reports = data.read_reports(a.data)
    if a.split != "all":
        reports = dict(zip(["train", "val", "test"], data.stratified_split(reports, seed=a.seed)))[a.split]
    res = score(reports)
    print(f"naive rule-based baseline on {a.data} ({a.split}, {len(reports)} reports)")
    print(f"{'task':8s} {'n':>6s} {'accuracy':>9s} {'macro F1':>9s}")
    for task, (n, acc, f1) in res.items():
        print(f"{task:8s} {n:6d} {acc:9.3f} {f1:9.3f}")
    paper = [t for t in data.TASKS if t != "M"]  # the paper's Table I leaves M out (all M0)
    print(f"{'mean*':8s} {'':6s} {sum(res[t][1] for t in paper) / 6:9.3f} {sum(res[t][2] for t in paper) / 6:9.3f}"
          "   (* over T, N, grade, ER, PR, HER2 as in the paper; paper: 0.749 / 0.554)")


if __name__ == "__main__":
    main()
