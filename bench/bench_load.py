"""NF4 loading of a Llama-3.2-1B-shaped checkpoint: llama.load_model vs transformers + bitsandbytes, same run.

    python bench/bench_load.py [--cache DIR] [--runs 1] [--threads 1]

A random bf16 checkpoint with Llama-3.2-1B's shapes (hidden 2048, 16 layers, 32/8 heads, intermediate
8192, vocab 128256, tied embeddings, llama3 rope scaling) is written once, tensor by tensor, to
$ONCOLLAMA_CACHE/bench-llama32-1b-random (default ~/.cache/oncollama). Each loader then runs in its
own fresh subprocess:
  ours:          llama.load_model(dir, dtype=bfloat16, quant="nf4")
  transformers:  AutoModelForCausalLM.from_pretrained(dir, quantization_config=BitsAndBytesConfig(
                 load_in_4bit=True, bnb_4bit_quant_type="nf4"), device_map="cpu", dtype=bfloat16)
Reported per loader: load wall time, peak RSS (VmHWM of the child, file-backed pages of memory maps
included, plus the RssAnon/RssFile split at the sampled peak), the model's own bytes, and a hash of
layer 0's packed q_proj (equal hashes = the two quantizers wrote the same bytes).
First, in this process, the quantizers alone on one (8192, 2048) bf16 up_proj: quantize_nf4 vs
bitsandbytes.functional.quantize_4bit (bnb's CPU path), median of 3, in GB/s of bf16 input.
Targets: our peak <= our model bytes + 600 MB; our time <= half of transformers'.
Both children run with OMP_NUM_THREADS=--threads (default 1; 0 = torch's default). On a shared,
oversubscribed CPU, intra-op threads spend more time waiting for each other than working: transformers
loaded 1.7x slower with 2 threads than with 1 here, so 1 thread compares against its best time.
"""
import argparse
import hashlib
import json
import os
import pathlib
import resource
import struct
import subprocess
import sys
import threading
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
MB = 1 << 20

CONFIG = {  # meta-llama/Llama-3.2-1B config.json
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
    "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": False,
    "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "use_cache": True, "vocab_size": 128256,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
}


def checkpoint_shapes(c):
    """HF tensor names and shapes of a tied Llama (no lm_head.weight)."""
    d, f, hd = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], d), "model.norm.weight": (d,)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
            p + "self_attn.q_proj.weight": (c["num_attention_heads"] * hd, d),
            p + "self_attn.k_proj.weight": (c["num_key_value_heads"] * hd, d),
            p + "self_attn.v_proj.weight": (c["num_key_value_heads"] * hd, d),
            p + "self_attn.o_proj.weight": (d, c["num_attention_heads"] * hd),
            p + "mlp.gate_proj.weight": (f, d), p + "mlp.up_proj.weight": (f, d), p + "mlp.down_proj.weight": (d, f),
        })
    return shapes


def write_checkpoint(out):
    """Stream a random bf16 model.safetensors: header first, then each tensor generated and written in row chunks."""
    shapes = checkpoint_shapes(CONFIG)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes.items():
        nbytes = 2 * torch.Size(shape).numel()
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    from tqdm import tqdm
    with open(tmp / "model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)) + blob)
        for name, shape in tqdm(shapes.items(), desc="writing random checkpoint"):
            if len(shape) == 1:  # RMSNorm weights
                fh.write(torch.ones(shape, dtype=torch.bfloat16).view(torch.int16).numpy().tobytes())
                continue
            for r in range(0, shape[0], 4096):
                rows = torch.randn((min(4096, shape[0] - r), shape[1]), generator=g).mul_(0.02).bfloat16()
                fh.write(rows.view(torch.int16).numpy().tobytes())
    (tmp / "config.json").write_text(json.dumps(CONFIG, indent=2))
    tmp.rename(out)


def cache_dir(arg):
    if arg:
        return pathlib.Path(arg)
    base = pathlib.Path(os.environ.get("ONCOLLAMA_CACHE", pathlib.Path.home() / ".cache" / "oncollama"))
    return base / "bench-llama32-1b-random"


# ----------------------------------------------------------------------------- child side

def status_kb(*keys):
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            if k in keys:
                fields[k] = int(v.split()[0])
    return fields


class RSSSampler(threading.Thread):
    """Samples VmRSS every 5 ms and keeps the anon/file split at the highest sample."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = {"VmRSS": 0}, False

    def run(self):
        while not self.stop:
            s = status_kb("VmRSS", "RssAnon", "RssFile")
            if s["VmRSS"] > self.peak["VmRSS"]:
                self.peak = s
            time.sleep(0.005)


def child(kind, path):
    sampler = RSSSampler()
    sampler.start()
    t0 = time.perf_counter()
    if kind == "ours":
        sys.path.insert(0, str(ROOT))
        import llama
        t1 = time.perf_counter()
        model = llama.load_model(path, dtype=torch.bfloat16, quant="nf4")
        packed = model.layers[0].self_attn.q_proj.weight
    else:
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig
        t1 = time.perf_counter()
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(path, quantization_config=q, device_map="cpu",
                                                     dtype=torch.bfloat16)
        packed = model.model.layers[0].self_attn.q_proj.weight.data
    t2 = time.perf_counter()
    sampler.stop = True
    sampler.join()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    # parameters and buffers (transformers keeps bnb's absmax in a QuantState, outside this count)
    model_bytes = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    s = status_kb("VmHWM", "VmRSS")
    for t in [*model.parameters(), *model.buffers()]:  # fault in every page (mmap-backed weights included)
        t.detach().reshape(-1)[::1024].float().sum()
    touched = status_kb("VmRSS")["VmRSS"]
    print(json.dumps({"kind": kind, "import_s": t1 - t0, "load_s": t2 - t1, "cpu_s": ru.ru_utime + ru.ru_stime,
                      "peak_mb": s["VmHWM"] / 1024,
                      "end_rss_mb": s["VmRSS"] / 1024, "touched_rss_mb": touched / 1024, "model_mb": model_bytes / MB,
                      "sampled_peak": {k: v / 1024 for k, v in sampler.peak.items()},
                      "q_proj0_sha1": hashlib.sha1(packed.contiguous().view(torch.uint8).numpy()).hexdigest()[:12],
                      "q_proj0_bytes": packed.numel()}))


# ----------------------------------------------------------------------------- parent side

def bench_quantizers(threads):
    """quantize_nf4 vs bnb quantize_4bit on one Llama-3.2-1B up_proj, same process, same thread count."""
    import statistics
    import bitsandbytes.functional as bf
    sys.path.insert(0, str(ROOT))
    from nf4 import quantize_nf4
    if threads > 0:
        torch.set_num_threads(threads)
    w = (torch.randn(8192, 2048, generator=torch.Generator().manual_seed(0)) * 0.02).bfloat16()
    runs = {"ours": lambda: quantize_nf4(w),
            "bnb": lambda: bf.quantize_4bit(w, blocksize=64, quant_type="nf4")}
    secs = {k: [] for k in runs}
    for _ in range(3):
        for k, fn in runs.items():
            t = time.perf_counter()
            fn()
            secs[k].append(time.perf_counter() - t)
    gbs = {k: w.numel() * 2 / 1e9 / statistics.median(v) for k, v in secs.items()}
    same = torch.equal(runs["ours"]()[0], runs["bnb"]()[0].view(-1))
    print(f"quantizer: ours {gbs['ours']:.2f} GB/s  bnb {gbs['bnb']:.2f} GB/s  ratio {gbs['ours'] / gbs['bnb']:.1f}x  "
          f"identical bytes: {same}")


def run_child(kind, path, threads):
    env = dict(os.environ)
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--cache", str(path)], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{kind} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=None, help="checkpoint dir (written on first use)")
    ap.add_argument("--runs", type=int, default=1, help="runs per loader, alternating; best time is reported")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of both children (0: torch default)")
    ap.add_argument("--only", choices=["ours", "transformers"], default=None)
    ap.add_argument("--child", choices=["ours", "transformers"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = cache_dir(args.cache)
    if args.child:
        return child(args.child, path)
    if not (path / "model.safetensors").exists():
        write_checkpoint(path)
    size = (path / "model.safetensors").stat().st_size
    threads = args.threads if args.threads > 0 else f"default ({torch.get_num_threads()})"
    print(f"{path}  ({size / MB:.0f} MB bf16)  threads per loader: {threads}")
    bench_quantizers(args.threads)
    kinds = [args.only] if args.only else ["ours", "transformers"]
    results = {k: [] for k in kinds}
    for _ in range(args.runs):
        for k in kinds:
            r = run_child(k, path, args.threads)
            results[k].append(r)
            sp = r["sampled_peak"]
            print(f"{k:13s} load {r['load_s']:7.1f} s (+{r['import_s']:.1f} s imports, {r['cpu_s']:.0f} s CPU)  "
                  f"peak RSS {r['peak_mb']:7.0f} MB "
                  f"(sampled: anon {sp.get('RssAnon', 0):.0f} + file {sp.get('RssFile', 0):.0f})  "
                  f"model {r['model_mb']:6.0f} MB  end RSS {r['end_rss_mb']:6.0f} MB (all weights paged in: "
                  f"{r['touched_rss_mb']:.0f} MB)  "
                  f"q_proj[0] sha1 {r['q_proj0_sha1']}")
    best = {k: min(v, key=lambda r: r["load_s"]) for k, v in results.items()}
    if "ours" in best:
        o = best["ours"]
        print(f"ours: peak - model = {o['peak_mb'] - o['model_mb']:.0f} MB (target <= 600; negative: weights kept "
              f"as loaded, e.g. the bf16 embedding, stay memory-mapped and are paged in on first use)")
    if len(best) == 2:
        o, t = best["ours"], best["transformers"]
        print(f"time ours/transformers {o['load_s'] / t['load_s']:.2f} (target <= 0.5)   "
              f"peak ours/transformers {o['peak_mb'] / t['peak_mb']:.2f}   "
              f"same q_proj[0] bytes: {o['q_proj0_sha1'] == t['q_proj0_sha1']}")


if __name__ == "__main__":
    main()
