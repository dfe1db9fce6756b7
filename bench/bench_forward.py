"""Forward-pass throughput of llama.py vs transformers on SmolLM2-135M, measured in the same run.

    python bench/bench_forward.py [--batch 4] [--seq 256] [--repeats 5] [--threads N] [--precisions fp32,bf16]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/bench_forward.py --precisions fp32  # an AVX2 CPU

Both models get the same weights (the converted demo dir), the same batch (one row right-padded
to half length, so the padding-mask path is exercised) and no_grad; the runs alternate so load
from other processes hits both alike. Reported: median tokens/s and ours / transformers (target >= 1.0).
"""
import argparse
import pathlib
import statistics
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import llama  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    with torch.no_grad():
        fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="HF-layout dir (default: the SmolLM2 demo)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--precisions", default="fp32,bf16")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import LlamaForCausalLM
    path = llama.resolve_model(args.model)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 1000, (args.batch, args.seq), generator=g)
    att = torch.ones_like(ids)
    att[-1, args.seq // 2:] = 0
    n_tokens = int(att.sum())
    print(f"{path.name}  batch {args.batch} x {args.seq}  ({n_tokens} real tokens)  threads {torch.get_num_threads()}  "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    for dtype in ({"fp32": torch.float32, "bf16": torch.bfloat16}[p] for p in args.precisions.split(",")):
        ours = llama.load_model(path, dtype=dtype)
        ref = LlamaForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa").model.eval()
        runs = {"ours": lambda: ours(ids, att), "transformers": lambda: ref(input_ids=ids, attention_mask=att)}
        for fn in runs.values():  # warm-up
            timed(fn)
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                times[name].append(timed(fn))
        tps = {name: n_tokens / statistics.median(t) for name, t in times.items()}
        print(f"{str(dtype):15s} ours {tps['ours']:8.0f} tok/s   transformers {tps['transformers']:8.0f} tok/s   "
              f"ratio {tps['ours'] / tps['transformers']:.2f}")
        del ours, ref


if __name__ == "__main__":
    main()
