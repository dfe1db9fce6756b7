"""Which hidden states read the seven fields best? Frozen demo model, a linear probe per task and layer.

    python bench/probe_pooling.py                       # 400 training reports, the validation split (~4 min)

For the last token (the paper's terminal state, shared by all heads) and for each task's own Hints line
(train_mtl.py --pool field), after blocks 6, 12, 18, 24 and 30 of SmolLM2-135M: a logistic regression
(evaluate.make_probe: StandardScaler + LogisticRegression) fitted on the training reports, macro F1 on the
validation split (whole styles unseen by the probes), averaged over the seven tasks. Nothing is fine-tuned: this measures what the pooling and the
layer make readable, which is why train_mtl.py defaults to --pool field and the README uses --layers 12.
"""
import argparse
import pathlib
import sys

import numpy as np
import torch
from sklearn.metrics import f1_score

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import data  # noqa: E402
import evaluate  # noqa: E402
import train_mtl  # noqa: E402
from heads import span_pool  # noqa: E402
from llama import load_model, load_tokenizer, resolve_model  # noqa: E402


def features(model, encoded, pad_id, layers, pools=("last", "field"), batch=8):
    """{(pool, layer): (N, K, D)} span-pooled hidden states after each listed block, one forward pass per batch."""
    out = {(p, L): [] for p in pools for L in layers}
    for k in range(0, len(encoded), batch):
        chunk = encoded[k:k + batch]
        ids, mask, _ = train_mtl.collate(chunk, data.TASKS, pools[0], pad_id)
        seen = {}
        hooks = [model.layers[L - 1].register_forward_hook(lambda m, i, o, L=L: seen.__setitem__(L, o))
                 for L in layers]
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            model(ids, mask)
        for h in hooks:
            h.remove()
        for p in pools:
            spans = train_mtl.collate(chunk, data.TASKS, p, pad_id)[2]
            for L in layers:
                out[p, L].append(span_pool(seen[L], spans).float())
    return {key: torch.cat(v).numpy() for key, v in out.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="examples/reports.jsonl")
    p.add_argument("--n-train", type=int, default=400)
    p.add_argument("--max-length", type=int, default=320)
    p.add_argument("--layers", default="6,12,18,24,30")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    layers = [int(x) for x in a.layers.split(",")]
    path = resolve_model(None)
    tok, model = load_tokenizer(path), load_model(path, dtype=torch.bfloat16).eval()
    cfg = train_mtl.TrainConfig(data=a.data, max_length=a.max_length, slicing="window", seed=42, split="auto")
    train, val, _ = train_mtl.split_reports(data.read_reports(a.data), cfg)  # a design choice: never the test split
    train = train[:a.n_train]
    enc_train, enc_val = train_mtl.encode_all(train, cfg, tok), train_mtl.encode_all(val, cfg, tok)
    y_train, y_val = data.label_tensors(train), data.label_tensors(val)
    print(f"macro F1 on the validation split (n={len(val)}), probes fitted on {len(train)} training reports")
    print(f"{'pooling':8s} {'block':>5s}  " + " ".join(f"{t:>6s}" for t in data.TASKS) + "    mean")
    Ftr = features(model, enc_train, tok.pad_id, layers)
    Fva = features(model, enc_val, tok.pad_id, layers)
    for pool, L in Ftr:
        f1s = []
        for k, task in enumerate(data.TASKS):
            a_, b_ = y_train[task].numpy(), y_val[task].numpy()
            ka, kb = a_ != -100, b_ != -100
            probe = evaluate.make_probe().fit(Ftr[pool, L][ka, k], a_[ka])
            f1s.append(f1_score(b_[kb], probe.predict(Fva[pool, L][kb, k]), average="macro",
                                labels=sorted(set(b_[kb])), zero_division=0))
        print(f"{pool:8s} {L:5d}  " + " ".join(f"{f:6.3f}" for f in f1s) + f"  {np.mean(f1s):6.3f}", flush=True)


if __name__ == "__main__":
    main()
