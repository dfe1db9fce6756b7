"""NF4 loading of a Llama-3.2-1B- or Llama-3-8B-shaped checkpoint: llama.load_model vs transformers + bitsandbytes.

    python bench/bench_load.py [--shape 1b|8b] [--cache DIR] [--runs 1] [--threads 1] [--rss-cap-gb GB]
                               [--time-cap-s S]

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

--shape 8b: a random bf16 checkpoint with meta-llama/Meta-Llama-3-8B's shapes and config.json (hidden 4096,
32 layers, 32/8 heads, intermediate 14336, vocab 128256, untied lm_head.weight, rope_theta 500000, no rope
scaling; 16.06 GB) sharded like the official one: model-0000{1..4}-of-00004.safetensors (at most 5 GB each, in
file order) and model.safetensors.index.json, written once, tensor by tensor, to
$ONCOLLAMA_CACHE/bench-llama3-8b-random. Its values are 4096-row slices, at random offsets, of one pool of 2^26
random bf16 normals (drawing 8e9 normals would cost more CPU than the loads; neither loader looks at values).
Target: our peak RSS <= 6.5 GB (8B QLoRA starts on a laptop-class 24 GiB machine).
The parent polls each child's VmRSS every 0.5 s and kills a child above --rss-cap-gb (default 16 for 8b, no
cap for 1b), so transformers runs "where it fits": a killed child is reported as "did not fit: killed at X GB
after Y s". --time-cap-s likewise stops a child that is still loading ("did not finish").
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

CONFIG_8B = {  # meta-llama/Meta-Llama-3-8B config.json (transformers_version dropped)
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 128000,
    "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": None, "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "use_cache": True, "vocab_size": 128256,
}

# shape -> config, cache folder name, number of safetensors shards (1: a single model.safetensors), target peak;
# pool: 0 = every value drawn; else values are slices, at random offsets, of one pool of this many random values
SHAPES = {
    "1b": {"config": CONFIG, "folder": "bench-llama32-1b-random", "shards": 1, "target_peak_gb": None, "pool": 0},
    "8b": {"config": CONFIG_8B, "folder": "bench-llama3-8b-random", "shards": 4, "target_peak_gb": 6.5,
           "pool": 1 << 26},
}
MAX_SHARD_BYTES = 5 * 10**9  # transformers' save_pretrained default ("5GB"), which gave Llama-3-8B its 4 shards


def checkpoint_shapes(c):
    """HF tensor names and shapes of a Llama, in file order (lm_head.weight last, only if untied)."""
    d, f = c["hidden_size"], c["intermediate_size"]
    hd = c.get("head_dim") or d // c["num_attention_heads"]
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
    if not c.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = (c["vocab_size"], d)
    return shapes


def shard_plan(shapes, shards):
    """Split the tensors, in order, into `shards` files of at most MAX_SHARD_BYTES each (one file: all of them)."""
    if shards == 1:
        return [list(shapes)]
    plan, size = [[]], 0
    for name, shape in shapes.items():
        nbytes = 2 * torch.Size(shape).numel()
        if plan[-1] and size + nbytes > MAX_SHARD_BYTES:
            plan.append([])
            size = 0
        plan[-1].append(name)
        size += nbytes
    if len(plan) != shards:
        raise ValueError(f"{MAX_SHARD_BYTES / 1e9:g} GB shards give {len(plan)} files, expected {shards}")
    return plan


def write_checkpoint(out, shape="1b"):
    """Stream a random bf16 checkpoint (one model.safetensors, or shards + index): per file the header first, then
    each tensor generated and written in row chunks of 4096 rows, so at most one chunk is ever in memory."""
    spec = SHAPES[shape]
    shapes = checkpoint_shapes(spec["config"])
    plan = shard_plan(shapes, spec["shards"])
    files = (["model.safetensors"] if len(plan) == 1 else
             [f"model-{i + 1:05d}-of-{len(plan):05d}.safetensors" for i in range(len(plan))])
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    pool = None
    if spec["pool"]:  # 8e9 normals would take a CPU-minute or more: slices of one random pool at random offsets
        pool = torch.cat([torch.randn(1 << 22, generator=g).mul_(0.02).bfloat16() for _ in range(spec["pool"] >> 22)])
        pool = pool.view(torch.int16).numpy()
    from tqdm import tqdm
    bar = tqdm(total=len(shapes), desc="writing random checkpoint")
    for fname, names in zip(files, plan):
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for name in names:
            nbytes = 2 * torch.Size(shapes[name]).numel()
            header[name] = {"dtype": "BF16", "shape": list(shapes[name]), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        blob = json.dumps(header).encode()
        blob += b" " * (-len(blob) % 8)
        with open(tmp / fname, "wb") as fh:
            fh.write(struct.pack("<Q", len(blob)) + blob)
            for name in names:
                shape_ = shapes[name]
                if len(shape_) == 1:  # RMSNorm weights
                    fh.write(torch.ones(shape_, dtype=torch.bfloat16).view(torch.int16).numpy().tobytes())
                else:
                    for r in range(0, shape_[0], 4096):
                        n = min(4096, shape_[0] - r) * shape_[1]
                        if pool is not None:
                            o = int(torch.randint(0, len(pool) - n + 1, (), generator=g))
                            fh.write(memoryview(pool[o:o + n]))
                            continue
                        rows = torch.randn((n // shape_[1], shape_[1]), generator=g).mul_(0.02).bfloat16()
                        fh.write(rows.view(torch.int16).numpy().tobytes())
                bar.update()
    bar.close()
    if len(plan) > 1:
        total = sum(2 * torch.Size(s).numel() for s in shapes.values())
        index = {"metadata": {"total_size": total},
                 "weight_map": {name: fname for fname, names in zip(files, plan) for name in sorted(names)}}
        (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    (tmp / "config.json").write_text(json.dumps(spec["config"], indent=2))
    tmp.rename(out)


def checkpoint_written(path):
    return (path / "model.safetensors").exists() or (path / "model.safetensors.index.json").exists()


def checkpoint_bytes(path):
    return sum(f.stat().st_size for f in path.glob("*.safetensors"))


def cache_dir(arg, shape="1b"):
    if arg:
        return pathlib.Path(arg)
    base = pathlib.Path(os.environ.get("ONCOLLAMA_CACHE", pathlib.Path.home() / ".cache" / "oncollama"))
    return base / SHAPES[shape]["folder"]


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


def proc_status_kb(pid, *keys):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                k, _, v = line.partition(":")
                if k in keys:
                    fields[k] = int(v.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return fields


def run_child(kind, path, threads, rss_cap_gb=None, time_cap_s=None):
    """Run one loader in a fresh subprocess. The parent polls its VmRSS every 0.5 s and, above rss_cap_gb (GB =
    1e9 bytes) or after time_cap_s, kills it: the result is then {"killed": "rss" or "time", "killed_gb",
    "killed_after_s", "status", "max_gb"}."""
    import tempfile
    env = dict(os.environ)
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    cap_kb = None if rss_cap_gb is None else rss_cap_gb * 1e9 / 1024
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--child", kind, "--cache", str(path)], env=env,
                                stdout=out, stderr=err, text=True)
        killed, peak = None, {"VmRSS": 0}
        while proc.poll() is None:
            s = proc_status_kb(proc.pid, "VmRSS", "RssAnon", "RssFile")
            if s.get("VmRSS", 0) > peak["VmRSS"]:
                peak = s
            over_rss = cap_kb is not None and s.get("VmRSS", 0) > cap_kb
            if over_rss or (time_cap_s is not None and time.perf_counter() - t0 > time_cap_s):
                proc.kill()
                proc.wait()
                err.seek(0)
                progress = [ln.strip() for ln in err.read().replace("\r", "\n").splitlines() if "%|" in ln]
                killed = {"kind": kind, "killed": "rss" if over_rss else "time",
                          "killed_gb": s.get("VmRSS", 0) * 1024 / 1e9, "killed_after_s": time.perf_counter() - t0,
                          "status": {k: v / 1024 for k, v in s.items()}, "max_gb": peak["VmRSS"] * 1024 / 1e9,
                          "progress": progress[-1] if progress else ""}
                break
            time.sleep(0.5)
        if killed:
            return killed
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        sys.exit(f"{kind} child failed (exit {proc.returncode}; highest VmRSS seen by the parent "
                 f"{peak['VmRSS'] / 1024:.0f} MB):\n{stderr[-3000:]}")
    r = json.loads(stdout.strip().splitlines()[-1])
    r["wall_s"] = time.perf_counter() - t0
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="1b",
                    help="1b: Llama-3.2-1B, one file (default); 8b: Meta-Llama-3-8B, 4 shards + index")
    ap.add_argument("--cache", default=None, help="checkpoint dir (written on first use)")
    ap.add_argument("--rss-cap-gb", type=float, default=None,
                    help="kill a child whose VmRSS passes this many GB (1e9 bytes); default 16 for 8b, none for 1b")
    ap.add_argument("--time-cap-s", type=float, default=None, help="kill a child still loading after this long")
    ap.add_argument("--runs", type=int, default=1, help="runs per loader, alternating; best time is reported")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of both children (0: torch default)")
    ap.add_argument("--only", choices=["ours", "transformers"], default=None)
    ap.add_argument("--child", choices=["ours", "transformers"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = cache_dir(args.cache, args.shape)
    if args.child:
        return child(args.child, path)
    rss_cap = args.rss_cap_gb if args.rss_cap_gb is not None else (16.0 if args.shape == "8b" else None)
    if not checkpoint_written(path):
        write_checkpoint(path, args.shape)
    size = checkpoint_bytes(path)
    threads = args.threads if args.threads > 0 else f"default ({torch.get_num_threads()})"
    nfiles = len(list(path.glob("*.safetensors")))
    print(f"{path}  ({size / MB:.0f} MB bf16 in {nfiles} file{'s' if nfiles > 1 else ''})  "
          f"threads per loader: {threads}" + (f"  RSS cap per loader: {rss_cap:g} GB" if rss_cap else ""))
    bench_quantizers(args.threads)
    kinds = [args.only] if args.only else ["ours", "transformers"]
    results = {k: [] for k in kinds}
    for _ in range(args.runs):
        for k in kinds:
            r = run_child(k, path, args.threads, rss_cap, args.time_cap_s)
            if r.get("killed"):
                st = r["status"]
                what = (f"did not fit: killed at {r['killed_gb']:.1f} GB" if r["killed"] == "rss" else
                        f"did not finish: stopped at {r['killed_gb']:.1f} GB (highest {r['max_gb']:.1f} GB)")
                print(f"{k:13s} {what} after {r['killed_after_s']:.0f} s "
                      f"(VmRSS {st.get('VmRSS', 0):.0f} MB = anon {st.get('RssAnon', 0):.0f} + "
                      f"file {st.get('RssFile', 0):.0f}; caps: {rss_cap} GB, {args.time_cap_s} s)"
                      + (f"  last progress: {r['progress']}" if r["progress"] else ""))
                continue
            results[k].append(r)
            sp = r["sampled_peak"]
            print(f"{k:13s} load {r['load_s']:7.1f} s (+{r['import_s']:.1f} s imports, {r['cpu_s']:.0f} s CPU)  "
                  f"peak RSS {r['peak_mb']:7.0f} MB "
                  f"(sampled: anon {sp.get('RssAnon', 0):.0f} + file {sp.get('RssFile', 0):.0f})  "
                  f"model {r['model_mb']:6.0f} MB  end RSS {r['end_rss_mb']:6.0f} MB (all weights paged in: "
                  f"{r['touched_rss_mb']:.0f} MB)  "
                  f"q_proj[0] sha1 {r['q_proj0_sha1']}")
    best = {k: min(v, key=lambda r: r["load_s"]) for k, v in results.items() if v}
    if "ours" in best:
        o = best["ours"]
        print(f"ours: peak - model = {o['peak_mb'] - o['model_mb']:.0f} MB (target <= 600; negative: weights kept "
              f"as loaded, e.g. the bf16 embedding, stay memory-mapped and are paged in on first use)")
        if (target := SHAPES[args.shape]["target_peak_gb"]) is not None:
            peak_gb = o["peak_mb"] * MB / 1e9
            print(f"ours: peak RSS {peak_gb:.2f} GB ({o['peak_mb'] / 1024:.2f} GiB), target <= {target:g} GB: "
                  f"{'met' if peak_gb <= target else 'MISSED'}")
    if len(best) == 2:
        o, t = best["ours"], best["transformers"]
        print(f"time ours/transformers {o['load_s'] / t['load_s']:.2f} (target <= 0.5)   "
              f"peak ours/transformers {o['peak_mb'] / t['peak_mb']:.2f}   "
              f"same q_proj[0] bytes: {o['q_proj0_sha1'] == t['q_proj0_sha1']}")


if __name__ == "__main__":
    main()
