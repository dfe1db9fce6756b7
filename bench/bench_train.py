"""Seconds per optimizer step and peak RSS of our LoRA training step vs transformers + peft, same run.

One step = forward + backward of a micro-batch (2 x 256 tokens) through the LoRA (r 16, alpha 16, dropout 0.05,
q/k/v/o) model, last-token pooling (heads.span_pool), the seven heads and the multi-task loss, then one AdamW step. Both sides use
the same demo checkpoint (SmolLM2-135M-Instruct), the same heads and loss code, the same inputs. Each
(implementation, precision) pair runs in its own subprocess so that its peak RSS (ru_maxrss, loading included)
is its own. fp32 = fp32 weights, no autocast; bf16 = bf16 base weights under bf16 autocast, adapters in fp32.

    python bench/bench_train.py [--steps 5] [--warmup 2] [--batch 2] [--length 256] [--threads N]
"""
import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_ours(path, dtype):
    import data
    import train_mtl
    cfg = dict(precision="bf16" if dtype == torch.bfloat16 else "fp32",
               quant="bf16" if dtype == torch.bfloat16 else "fp32", model=str(path), adapter="lora",
               targets="q_proj,k_proj,v_proj,o_proj", r=16, alpha=16, dropout=0.05, pool="last")
    model, _ = train_mtl.build_classifier(cfg, data.LABEL_SETS, "cpu")
    return model


def build_reference(path, dtype):
    """transformers LlamaModel + peft LoRA + the same heads and pooling."""
    import data
    import peft
    import transformers
    from heads import MultiTaskHeads, span_pool
    base = transformers.LlamaModel.from_pretrained(path, dtype=dtype)
    base = peft.get_peft_model(base, peft.LoraConfig(r=16, lora_alpha=16, lora_dropout=0.05,
                                                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))

    class Reference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.llama = base
            self.heads = MultiTaskHeads(base.config.hidden_size, data.LABEL_SETS)

        def forward(self, input_ids, attention_mask, spans):
            hidden = self.llama(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.heads(span_pool(hidden, spans))
    return Reference()


def worker(impl, precision, steps, warmup, batch, length):
    import data
    import llama
    from losses import multitask_cross_entropy
    torch.manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    path = llama.demo_model_dir()
    model = (build_ours if impl == "ours" else build_reference)(path, dtype).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.llama.config.vocab_size, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    spans = torch.tensor([[(length - 1, length)] * len(data.LABEL_SETS)] * batch)  # last-token pooling
    labels = {t: torch.randint(0, len(c), (batch,), generator=g) for t, c in data.LABEL_SETS.items()}
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(ids, mask, spans)
        loss = multitask_cross_entropy(logits, labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    return {"impl": impl, "precision": precision, "s_per_step": times[len(times) // 2],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "trainable": sum(p.numel() for p in params), "loss": float(loss)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--worker", nargs=2, metavar=("IMPL", "PRECISION"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.worker:
        print("RESULT " + json.dumps(worker(*a.worker, a.steps, a.warmup, a.batch, a.length)))
        return
    import llama
    llama.demo_model_dir()  # convert once, outside the timed subprocesses
    rows = {}
    for precision in a.precisions.split(","):
        for impl in ("reference", "ours"):
            cmd = [sys.executable, __file__, "--worker", impl, precision, "--steps", str(a.steps),
                   "--warmup", str(a.warmup), "--batch", str(a.batch), "--length", str(a.length)]
            if a.threads:
                cmd += ["--threads", str(a.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
            if out.returncode or not line:
                sys.exit(f"{impl} {precision} failed:\n{out.stderr[-3000:]}")
            rows[impl, precision] = json.loads(line[0][7:])
            print(f"  {impl:9s} {precision}: {rows[impl, precision]['s_per_step']:.3f} s/step, "
                  f"{rows[impl, precision]['peak_rss_mb']:.0f} MB peak RSS", file=sys.stderr)
    print(f"LoRA training step, SmolLM2-135M, batch {a.batch} x {a.length}, threads {a.threads or torch.get_num_threads()}"
          f", load average {os.getloadavg()[0]:.1f}")
    print(f"{'precision':9s} {'ref s/step':>10s} {'ours s/step':>11s} {'speed-up':>8s} "
          f"{'ref MB':>7s} {'ours MB':>7s} {'mem ratio':>9s}")
    for precision in a.precisions.split(","):
        r, o = rows["reference", precision], rows["ours", precision]
        print(f"{precision:9s} {r['s_per_step']:10.3f} {o['s_per_step']:11.3f} {r['s_per_step'] / o['s_per_step']:7.2f}x "
              f"{r['peak_rss_mb']:7.0f} {o['peak_rss_mb']:7.0f} {o['peak_rss_mb'] / r['peak_rss_mb']:8.2f}x")
    print("speed-up = reference time / ours (target >= 1.2); mem ratio = ours / reference peak RSS (target <= 1)")


if __name__ == "__main__":
    main()
