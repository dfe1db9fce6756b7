"""Table I's averages again, on the test reports re-presented as text arrives from elsewhere.

    python bench/robustness.py --run runs/mtl [--kinds none,join,shuffle,ocr]

Each test record's own text (its site's block for a multi-specimen report) is passed through
train_mtl.augment_text with one fixed kind: `join` (line breaks lost, as in OCR'd or copy-pasted text),
`shuffle` (sections in another order), `ocr` (2 % character confusions), `none` (as is). The trained run
and the naive baseline read the same texts; the labels do not change. Prints macro F1 per task and the two
averages of Table I (all tasks, and the paper's six without M).
"""
import argparse
import dataclasses
import json
import os
import pathlib
import random
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import data  # noqa: E402
import evaluate  # noqa: E402
import train_mtl  # noqa: E402
from llama import load_tokenizer  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="output directory of train_mtl.py")
    p.add_argument("--kinds", default="none,join,shuffle,ocr")
    p.add_argument("--batch", type=int, default=8)
    a = p.parse_args()
    cfg, models, dtype, device = train_mtl.load_run(a.run)
    tok = load_tokenizer(cfg["model"])
    reports = data.read_reports(cfg["data"], skip_bad=cfg.get("skip_bad", False))
    _, _, test = data.stratified_split(reports, seed=cfg["seed"])
    print(f"{a.run}: {len(test)} test reports; macro F1 per task, then the averages (model | baseline)")
    print(f"{'kind':8s} " + " ".join(f"{t:>6s}" for t in data.TASKS) + "  | all tasks    | paper's six")
    with open(os.path.join(a.run, "label_maps.json")) as f:
        label_sets = json.load(f)
    own_texts = [data.site_text(r.text, r.site) for r in test]  # a multi-specimen record: its own site's block
    for kind in a.kinds.split(","):
        rng = random.Random(0)
        texts = own_texts if kind == "none" else [train_mtl.augment_text(t, rng, kind) for t in own_texts]
        reports = [dataclasses.replace(r, text=t, site=None) for r, t in zip(test, texts)]
        preds = train_mtl.predict_records(models, train_mtl.encode_all(reports, cfg, tok), tok.pad_id, a.batch,
                                          dtype, device, desc=kind)
        table = evaluate.table_one(train_mtl.test_records(reports, preds, label_sets), label_sets)
        f1 = [table["tasks"][t]["model"]["macro_f1"] for t in data.TASKS]
        avg = lambda key, who: table[key][who]["macro_f1"]
        print(f"{kind:8s} " + " ".join(f"{x:6.3f}" for x in f1) +
              f"  | {avg('average', 'model'):.3f} {avg('average', 'baseline'):.3f}"
              f" | {avg('average_paper', 'model'):.3f} {avg('average_paper', 'baseline'):.3f}", flush=True)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
