"""The MTL paper's naive rule-based baseline (Table I, left) on a reports file: per-task accuracy and macro F1.

    python bench/baseline.py --data examples/reports.jsonl            # all reports
    python bench/baseline.py --data examples/reports.jsonl --split test

Scored on reports whose label is stated; a missing prediction counts as wrong. Metrics are evaluate.py's
(macro F1 over the classes present in the gold labels), so the numbers equal Table I's baseline column.
The paper reports macro F1 0.554 (accuracy 0.749) averaged over T, N, grade, ER, PR, HER2 on its real data.
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import data  # noqa: E402
import evaluate  # noqa: E402


def score(reports):
    """{task: (n, accuracy, macro F1)} of the naive baseline, by evaluate.py's metrics (the same as Table I)."""
    preds = [data.naive_baseline(r.text) for r in reports]
    out = {}
    for task, classes in data.LABEL_SETS.items():
        rows = [(r.labels[task], p[task]) for r, p in zip(reports, preds) if r.labels[task] is not None]
        gold, pred = [g for g, _ in rows], [p for _, p in rows]
        m = evaluate.task_metrics(gold, pred, [[float(p == c) for c in classes] for p in pred], classes)
        out[task] = (m["n"], m["accuracy"], m["macro_f1"])
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
