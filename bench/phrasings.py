"""Short reports in phrasings of our own, each probing one task: does a trained run read the words a pathologist
writes, not only the ones the example generator writes?

    python bench/phrasings.py --run runs/mtl                       # examples/phrasings.jsonl, the misreadings shown
    python bench/phrasings.py --run runs/mtl --data mine.jsonl --show all

One probe per line: {"set": "her2-2", "task": "HER2", "label": "Negative", "text": "... HER2 IHC 2+; reflex dual ISH
negative ..."}; label null = the text does not state the task. The sets of examples/phrasings.jsonl were written
before the training runs they judged (BENCHMARKS.md), in words that neither the generator nor the not-stated lines
of training (data.ABSENT) use; the probes are one to three sentences, shorter than any training report. Prints, per
set, how many probes the run and the naive baseline read right; then each probe the run misreads (or all, --show
all) with its probabilities.
"""
import argparse
import json
import pathlib
import sys
from collections import defaultdict

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import train_mtl  # noqa: E402
from llama import load_tokenizer  # noqa: E402

DEFAULT = ROOT / "examples" / "phrasings.jsonl"


def read_phrasings(path):
    """[{set, task, label, text}] with canonical labels; a bad line stops with its file, line and field."""
    probes = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                p = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{where}: not JSON ({e.msg} at column {e.colno})")
            if not isinstance(p, dict) or not isinstance(p.get("text"), str) or not p["text"].strip():
                raise SystemExit(f"{where}: text: missing or empty")
            if p.get("task") not in data.TASKS:
                raise SystemExit(f"{where}: task: {p.get('task')!r} is not one of {data.TASKS}")
            try:
                label = None if p.get("label") is None else data.canonicalize(p["task"], p["label"])
            except ValueError as e:
                raise SystemExit(f"{where}: label: {e}")
            probes.append({"set": str(p.get("set", "-")), "task": p["task"], "label": label, "text": p["text"]})
    if not probes:
        raise SystemExit(f"{path}: no probes")
    return probes


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="output directory of train_mtl.py")
    p.add_argument("--data", default=str(DEFAULT), help="probes, one JSON object per line (default: %(default)s)")
    p.add_argument("--show", choices=["wrong", "all", "none"], default="wrong", help="which probes to print")
    p.add_argument("--batch", type=int, default=8)
    a = p.parse_args()
    probes = read_phrasings(a.data)
    cfg, models, dtype, device = train_mtl.load_run(a.run)
    tok = load_tokenizer(cfg.model)
    reports = [data.Report(id=str(i), text=q["text"], labels={t: None for t in data.TASKS})
               for i, q in enumerate(probes)]
    preds = train_mtl.predict_records(models, train_mtl.encode_all(reports, cfg, tok), tok.pad_id, a.batch, dtype,
                                      device, desc="phrasings", unevidenced=train_mtl.unevidenced_all(reports))
    score = defaultdict(lambda: [0, 0, 0])  # set -> [model right, baseline right, probes]
    rows = []
    for q, pred in zip(probes, preds):
        got = pred[q["task"]]
        base = data.naive_baseline(q["text"])[q["task"]]
        s = score[q["set"]]
        s[0] += got["label"] == q["label"]
        s[1] += base == q["label"]
        s[2] += 1
        if a.show == "all" or (a.show == "wrong" and got["label"] != q["label"]):
            probs = " ".join(f"{k} {v:.2f}" for k, v in got["probs"].items())
            rows.append(f"  {q['set']:10s} {q['task']:5s} want {q['label'] or 'null':9s} got {got['label'] or 'null':9s}"
                        f" ({probs}) | {q['text'][:100]}")
    print(f"{a.data}: {len(probes)} probes; right answers, model | naive baseline")
    for name, (m, b, n) in score.items():
        print(f"  {name:10s} {m:3d} | {b:3d}  of {n}")
    if rows:
        print("the probes the run misreads:" if a.show == "wrong" else "every probe:")
        print("\n".join(rows))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
