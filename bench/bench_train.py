"""Seconds per optimizer step and peak RSS of our LoRA training step vs transformers + peft, same run.

One step = forward + backward of a micro-batch (2 x 256 tokens) through the LoRA (r 16, alpha 16, dropout 0.05,
q/k/v/o) model, last-token pooling (heads.span_pool), the seven heads and the multi-task loss, then one AdamW step. Both sides use
the same demo checkpoint (SmolLM2-135M-Instruct), the same heads and loss code, the same inputs. Each
(implementation, precision) pair lives in its own subprocess so that its peak RSS (ru_maxrss, loading included)
is its own; the two subprocesses of a precision are kept loaded and take turns step by step (alternating which
goes first), so a slow spell of the machine falls on both sides alike. fp32 = fp32 weights, no autocast;
bf16 = bf16 base weights under bf16 autocast, adapters in fp32.

    python bench/bench_train.py [--steps 10] [--warmup 2] [--batch 2] [--length 256] [--threads N]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/bench_train.py --precisions fp32  # an AVX2 CPU
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
    precision = "bf16" if dtype == torch.bfloat16 else "fp32"
    cfg = train_mtl.TrainConfig(data="", precision=precision, quant=precision, model=str(path), adapter="lora",
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


def worker(impl, precision, batch, length):
    """Load one side, then run one timed step per line read from stdin; on EOF print the summary."""
    import data
    from demo_model import demo_model_dir
    from losses import multitask_cross_entropy
    torch.manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    path = demo_model_dir()
    model = (build_ours if impl == "ours" else build_reference)(path, dtype).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.llama.config.vocab_size, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    spans = torch.tensor([[(length - 1, length)] * len(data.LABEL_SETS)] * batch)  # last-token pooling
    labels = {t: torch.randint(0, len(c), (batch,), generator=g) for t, c in data.LABEL_SETS.items()}
    print("READY", flush=True)
    for _ in sys.stdin:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(ids, mask, spans)
        loss = multitask_cross_entropy(logits, labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        print(f"STEP {time.perf_counter() - t0}", flush=True)
    print("RESULT " + json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                  "trainable": sum(p.numel() for p in params), "loss": float(loss.detach())}), flush=True)


def start_worker(impl, precision, a):
    cmd = [sys.executable, __file__, "--worker", impl, precision, "--batch", str(a.batch), "--length", str(a.length)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    expect(proc, "READY", impl, precision)
    return proc


def expect(proc, tag, impl, precision):
    """The next line the worker prints, which must start with tag; its failure is reported with the worker's name."""
    line = proc.stdout.readline()
    if not line.startswith(tag):
        proc.kill()
        sys.exit(f"{impl} {precision} failed (exit {proc.wait()}); its messages are above")
    return line[len(tag):].strip()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=10)
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
        worker(*a.worker, a.batch, a.length)
        return
    from demo_model import demo_model_dir
    demo_model_dir()  # convert once, outside the measured subprocesses
    rows = {}
    for precision in a.precisions.split(","):
        procs = {impl: start_worker(impl, precision, a) for impl in ("reference", "ours")}
        times = {impl: [] for impl in procs}
        for i in range(a.warmup + a.steps):
            for impl in (("reference", "ours") if i % 2 else ("ours", "reference")):
                procs[impl].stdin.write("step\n")
                procs[impl].stdin.flush()
                t = float(expect(procs[impl], "STEP", impl, precision))
                if i >= a.warmup:
                    times[impl].append(t)
        for impl, proc in procs.items():
            proc.stdin.close()
            rows[impl, precision] = json.loads(expect(proc, "RESULT", impl, precision))
            proc.wait()
            rows[impl, precision]["s_per_step"] = sorted(times[impl])[len(times[impl]) // 2]
            print(f"  {impl:9s} {precision}: median {rows[impl, precision]['s_per_step']:.3f} s/step of "
                  f"{' '.join(f'{t:.2f}' for t in times[impl])}, {rows[impl, precision]['peak_rss_mb']:.0f} MB peak RSS",
                  file=sys.stderr)
    print(f"LoRA training step, SmolLM2-135M, batch {a.batch} x {a.length}, threads {a.threads or torch.get_num_threads()}"
          f", load average {os.getloadavg()[0]:.1f}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'precision':9s} {'ref s/step':>10s} {'ours s/step':>11s} {'speed-up':>8s} "
          f"{'ref MB':>7s} {'ours MB':>7s} {'mem ratio':>9s}")
    for precision in a.precisions.split(","):
        r, o = rows["reference", precision], rows["ours", precision]
        print(f"{precision:9s} {r['s_per_step']:10.3f} {o['s_per_step']:11.3f} {r['s_per_step'] / o['s_per_step']:7.2f}x "
              f"{r['peak_rss_mb']:7.0f} {o['peak_rss_mb']:7.0f} {o['peak_rss_mb'] / r['peak_rss_mb']:8.2f}x")
    print("speed-up = reference time / ours (target >= 1.2); mem ratio = ours / reference peak RSS (target <= 1)")


if __name__ == "__main__":
    main()
