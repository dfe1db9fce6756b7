"""Table I's averages again, on the test reports re-presented as text arrives from elsewhere.

    python bench/robustness.py --run runs/mtl [--kinds none,oneline,oneline+ocr,headers,upper,addendum,history]
    python bench/robustness.py --run runs/mtl --data other_site.jsonl   # another labelled file, all of it

Each record's own text (its site's block for a multi-specimen report) is passed through data.arrive with one
fixed kind: `oneline` (extracted from a scanned PDF: no line breaks, page header and footer repeated at each
page), `ocr` (2-4 % OCR confusions, evidence included, never a digit into another digit), `headers` (another
institution's section names), `upper` (all capitals), `addendum` (an addendum or administrative text appended
that changes nothing), `history` (a clinical history block on an earlier breast cancer, its stage, grade and
receptors drawn at random), `a+b` (both), `none` (as is). The trained run and the naive baseline read the same
texts; the labels do not change. Prints macro F1 per task and the two averages of Table I (all tasks, and the
paper's six without M). Without --data the reports are the run's test split, built as train_mtl.py built it.
--out DIR writes each kind's predictions, with the text as it arrived, to DIR/<kind>.jsonl: what an arrival broke,
report by report.
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


def test_split(cfg):
    """The run's test split, built as train_mtl.py built it (a run from before --split: stratified)."""
    reports = data.read_reports(cfg.data, skip_bad=cfg.skip_bad)
    return train_mtl.split_reports(reports, cfg)[2]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="output directory of train_mtl.py")
    p.add_argument("--kinds", default="none,oneline,oneline+ocr,headers,upper,addendum,history",
                   help="comma-separated; each 'none' or a '+' of oneline, ocr, headers, upper, addendum, history")
    p.add_argument("--data", default=None, help="labelled reports.jsonl to read instead of the run's test split")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--out", help="write each kind's predictions and texts to OUT/<kind>.jsonl")
    a = p.parse_args(argv)
    kinds = a.kinds.split(",")
    for kind in kinds:
        try:
            data.arrive("", random.Random(0), kind)  # an unknown kind stops here, before the model is loaded
        except ValueError as e:
            p.error(str(e))
    if a.out:
        os.makedirs(a.out, exist_ok=True)  # an unwritable --out stops here too, before the model is loaded
    cfg, models, dtype, device = train_mtl.load_run(a.run)
    tok = load_tokenizer(cfg.model)
    test = data.read_reports(a.data) if a.data else test_split(cfg)
    print(f"{a.data or a.run + ' test split'}: {len(test)} reports; macro F1 per task, then the averages "
          f"(model | baseline)")
    width = max(8, *map(len, kinds))
    print(f"{'kind':{width}s} " + " ".join(f"{t:>6s}" for t in data.TASKS) + "  | all tasks    | paper's six")
    with open(os.path.join(a.run, "label_maps.json")) as f:
        label_sets = json.load(f)
    own_texts = [data.site_text(r.text, r.site) for r in test]  # a multi-specimen record: its own site's block
    for kind in kinds:
        rng = random.Random(0)
        texts = [data.arrive(t, rng, kind) for t in own_texts]
        reports = [dataclasses.replace(r, text=t, site=None) for r, t in zip(test, texts)]
        records = train_mtl.score_reports(models, reports, cfg, tok, dtype, device, a.batch, desc=kind)
        if a.out:
            with open(os.path.join(a.out, f"{kind}.jsonl"), "w") as f:
                f.writelines(json.dumps({**r, "text": t}) + "\n" for r, t in zip(records, texts))
        table = evaluate.table_one(records, label_sets)
        f1 = [f"{table['tasks'][t]['model']['macro_f1']:6.3f}" if t in table["tasks"] else "     -"  # none stated
              for t in data.TASKS]
        avg = lambda key, who: table[key][who]["macro_f1"]
        print(f"{kind:{width}s} " + " ".join(f1) +
              f"  | {avg('average', 'model'):.3f} {avg('average', 'baseline'):.3f}"
              f" | {avg('average_paper', 'model'):.3f} {avg('average_paper', 'baseline'):.3f}", flush=True)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
