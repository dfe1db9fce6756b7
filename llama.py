"""A readable Llama-3 in plain PyTorch (after meta-llama/llama3 model.py): causal attention makes it a language model,
bidirectional the LLM2Vec embedder. After the model: loading official Hugging Face checkpoints without transformers
(block linears optionally in NF4, nf4.py), the precision policy, the tokenizer (the demo model: demo_model.py)."""
import json
import math
import os
import pathlib
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from tqdm import tqdm

import fast
from nf4 import NF4Linear

FAST = True  # fast.py's CPU speed paths, the same math; False runs the textbook code of this file


@dataclass
class LlamaConfig:
    """The config.json fields that shape the model; from_json / from_dict check them (see read_config)."""
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
    rope_scaling: dict | None = None  # None or {"rope_type": "llama3", factor, ...} (Llama-3.1)
    tie_word_embeddings: bool = False
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    attention_dropout: float = 0.0  # attention-probability dropout (the SimCSE stage sets 0.3)

    @classmethod
    def from_json(cls, path):
        try:
            d = json.loads(pathlib.Path(path).read_text())
        except ValueError as e:
            raise ValueError(f"{path}: not JSON ({e})") from None
        return read_config(d, source=str(path))

    @classmethod
    def from_dict(cls, d, source="config"):
        return read_config(d, source)

    def to_dict(self):
        return {**asdict(self), "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_act": "silu"}


# ----------------------------------------------------------------------------- model

class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * g, computed in fp32 like the reference."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def linear(x, weight):
    """x W^T, the projections and the LM head (no bias anywhere in Llama)."""
    return fast.linear(x, weight) if FAST else F.linear(x, weight)


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
    """cos and sin of position * theta_i for every token, each angle twice (for x_i and x_{i + hd/2})."""
    freqs = position_ids[..., None].float() * inv_freq  # (B, T, hd/2)
    angles = torch.cat([freqs, freqs], dim=-1)  # (B, T, hd)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):
    """Rotate each pair (x_i, x_{i + hd/2}) by its position's angle (Hugging Face's rotate-half layout)."""
    return x * cos + rotate_half(x) * sin


def attention(q, k, v, attn_mask, is_causal, dropout_p):
    """softmax(q k^T / sqrt(hd) + mask) v, each group of nh / n_kv query heads sharing one key/value head."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, dropout_p=dropout_p,
                                          enable_gqa=k.shape[1] != q.shape[1])


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
        self.prefix = None  # prefix tuning (lora.inject_prefix): puts learned keys and values in front of k, v

    def forward(self, x, cos, sin, attn_mask, is_causal):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.hd).transpose(1, 2)  # (B, nh, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)  # (B, n_kv, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)  # (B, n_kv, T, hd)
        rope = fast.apply_rope if FAST else apply_rope
        q, k = rope(q, cos[:, None], sin[:, None]), rope(k, cos[:, None], sin[:, None])
        if self.prefix is not None:
            k, v, attn_mask, is_causal = self.prefix(k, v, attn_mask, is_causal)  # (B, n_kv, P + T, hd)
        dropout_p = self.cfg.attention_dropout if self.training else 0.0
        y = (fast.attention if FAST else attention)(q, k, v, attn_mask, is_causal, dropout_p)  # (B, nh, T, hd)
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
    """Pre-norm residual block: attention, then the MLP."""

    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, attn_mask, is_causal):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, attn_mask, is_causal)
        return x + self.mlp(self.post_attention_layernorm(x))


def build_attn_mask(attention_mask, causal):
    """SDPA's boolean (B, 1, T, T) mask from the padding mask (B, T), True = may attend: padding keys removed,
    future keys too if causal. Every query may see itself: a pad query with no allowed key (left padding,
    causal) would make softmax NaN, and pad outputs are never used."""
    B, T = attention_mask.shape
    allowed = attention_mask.bool()[:, None, None, :].expand(B, 1, T, T)  # the key is a real token
    if causal:
        allowed = allowed & torch.ones(T, T, dtype=torch.bool, device=attention_mask.device).tril()
    return allowed | torch.eye(T, dtype=torch.bool, device=attention_mask.device)


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
        self.position_offset = 0  # position of the first token: P after prefix tuning's P virtual tokens

    def forward(self, input_ids, attention_mask=None, attention="causal", mask=None):
        """input_ids (B, T); attention_mask (B, T), 1 = token, 0 = pad; attention "causal" or "bidirectional"
        (`mask` is its old name). Returns the final hidden states (B, T, D); lm_logits turns them into logits."""
        attention = mask or attention
        if attention not in ("causal", "bidirectional"):
            raise ValueError(f"attention must be 'causal' or 'bidirectional', got {attention!r}")
        B, T = input_ids.shape
        if attention_mask is None or attention_mask.all():  # no padding: SDPA's own causal / unmasked kernels
            position_ids = torch.arange(T, device=input_ids.device).expand(B, T)
            attn_mask, is_causal = None, attention == "causal"
        else:  # left padding: a row's positions start at its first token
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, T)
            attn_mask, is_causal = build_attn_mask(attention_mask, attention == "causal"), False
        h = self.embed_tokens(input_ids)  # (B, T, D)
        rope_tables = fast.rope_cos_sin if FAST else rope_cos_sin
        cos, sin = rope_tables(self.inv_freq, position_ids + self.position_offset, h.dtype)  # (B, T, hd)
        for layer in self.layers:
            h = layer(h, cos, sin, attn_mask, is_causal)
        return self.norm(h)

    def lm_logits(self, h):
        """Next-token logits (B, T, V) from the final hidden states; a tied head is the embedding matrix."""
        return linear(h, self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight)

    @torch.no_grad()
    def generate(self, input_ids, max_new_tokens=20):
        """Greedy decoding without a KV cache, a sanity check. input_ids (B, T) unpadded; stops when
        every row's last token is an EOS (rows that finish early keep going)."""
        eos = self.config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        for _ in range(max_new_tokens):
            next_ids = self.lm_logits(self(input_ids))[:, -1:].argmax(-1)  # (B, 1)
            input_ids = torch.cat([input_ids, next_ids], dim=1)
            if set(next_ids.flatten().tolist()) <= eos:
                break
        return input_ids


# ----------------------------------------------------------------------------- reading a checkpoint

# config.json keys that do not change the forward pass, and keys that would, accepted at Llama's value only
IGNORED_CONFIG_KEYS = set("""_name_or_path architectures model_type dtype torch_dtype transformers_version use_cache
    initializer_range pretraining_tp id2label label2id problem_type output_attentions output_hidden_states return_dict
    chunk_size_feed_forward is_encoder_decoder tokenizer_class is_llama_config transformers.js_config""".split())
FIXED_CONFIG_VALUES = {"hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
                       "rope_interleaved": False, "model_type": "llama"}
REQUIRED_CONFIG_KEYS = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                        "num_attention_heads", "max_position_embeddings", "rms_norm_eps"]
LLAMA3_ROPE_KEYS = {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}
BLOCK_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def read_config(d, source="config"):
    """A LlamaConfig from a HF config dict: unknown or unsupported fields are errors, not silent defaults."""
    d = dict(d)
    for key, want in FIXED_CONFIG_VALUES.items():
        if (got := d.pop(key, want)) != want:
            raise ValueError(f"{source}: unsupported value {key}={got!r} (this Llama needs {want!r})")
    params = dict(d.pop("rope_parameters", None) or {})  # transformers 5.x; before: rope_theta, rope_scaling
    scaling = dict(d.pop("rope_scaling", None) or params)
    if (theta := d.pop("rope_theta", params.get("rope_theta"))) is None:
        raise ValueError(f"{source}: missing required config field 'rope_theta'")
    scaling.pop("rope_theta", None)
    rope_type = scaling.pop("rope_type", scaling.pop("type", "default"))
    if rope_type != "llama3" and (rope_type != "default" or scaling):
        raise ValueError(f"{source}: unsupported rope_scaling type {rope_type!r} (supported: default, llama3)")
    if rope_type == "llama3" and set(scaling) != LLAMA3_ROPE_KEYS:
        raise ValueError(f"{source}: rope_scaling of type 'llama3' needs exactly {sorted(LLAMA3_ROPE_KEYS)}, "
                         f"got {sorted(scaling)}")
    known = {f.name for f in fields(LlamaConfig)}
    if unknown := sorted(k for k in d if k not in known and k not in IGNORED_CONFIG_KEYS):
        raise ValueError(f"{source}: unsupported config field(s) {unknown}")
    if missing := [k for k in REQUIRED_CONFIG_KEYS if k not in d]:
        raise ValueError(f"{source}: missing required config field(s) {missing}")
    cfg = LlamaConfig(**{k: v for k, v in d.items() if k in known}, rope_theta=float(theta),
                      rope_scaling={"rope_type": "llama3", **scaling} if rope_type == "llama3" else None)
    cfg.num_key_value_heads = cfg.num_key_value_heads or cfg.num_attention_heads  # HF: absent = MHA
    cfg.head_dim = cfg.head_dim or cfg.hidden_size // cfg.num_attention_heads
    cfg.attention_dropout = float(cfg.attention_dropout or 0.0)
    if cfg.num_attention_heads % cfg.num_key_value_heads:
        raise ValueError(f"{source}: num_attention_heads {cfg.num_attention_heads} is not a multiple "
                         f"of num_key_value_heads {cfg.num_key_value_heads}")
    return cfg


def resolve_model(path):
    """None -> the converted SmolLM2 demo dir; otherwise check the dir looks like a HF checkpoint."""
    if path is None:
        from demo_model import demo_model_dir  # here: demo_model imports this module
        return demo_model_dir()
    if not (pathlib.Path(path) / "config.json").exists():
        raise FileNotFoundError(f"{path}: not a model directory (config.json missing)")
    return pathlib.Path(path)


def checkpoint_files(path):
    """Map tensor name -> safetensors file for a single-file or sharded HF checkpoint dir."""
    if (index := path / "model.safetensors.index.json").exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        if missing := sorted({f for f in weight_map.values() if not (path / f).exists()}):
            raise FileNotFoundError(f"{index}: shard file(s) {missing} listed but missing in {path}")
        return {name: path / f for name, f in weight_map.items()}
    if not (single := path / "model.safetensors").exists():
        raise FileNotFoundError(f"{path}: neither model.safetensors nor model.safetensors.index.json found")
    with safe_open(single, framework="pt") as f:
        return {name: single for name in f.keys()}


def native_bf16(device="cpu"):
    """(bool, why): whether the device computes bf16 in hardware, CUDA with bf16 or a CPU with AVX512-BF16 / AMX
    that PyTorch and oneDNN may use. Elsewhere bf16 is emulated, ~150x slower than fp32 on an AVX2 CPU."""
    if str(device).startswith("cuda"):
        ok = torch.cuda.is_bf16_supported()
        return ok, f"this GPU {'computes' if ok else 'has no native'} bf16"
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()  # AVX2 emulates an older CPU
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AMX") or not (
            isa in ("ALL", "DEFAULT") or "BF16" in isa or "AMX" in isa or "FP16" in isa):
        return False, (f"this CPU has no native bf16 for PyTorch (kernels {torch.backends.cpu.get_cpu_capability()}, "
                       f"ONEDNN_MAX_CPU_ISA={isa})")
    ok = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return ok, f"this CPU {'computes bf16 natively (AVX512-BF16/AMX)' if ok else 'has no native bf16'}"


def choose_precision(precision="auto", device="cpu"):
    """The one precision policy of both trainers, predict and the benches: --precision auto|bf16|fp32 -> (compute
    dtype, a line saying what was chosen and why). auto: bf16 where the device computes it natively, else fp32."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    native, why = native_bf16(device)
    if precision == "fp32" or (precision == "auto" and not native):
        return torch.float32, f"compute fp32: {'--precision fp32' if precision == 'fp32' else why}"
    return torch.bfloat16, f"compute bf16: {why}" + ("" if native else " (emulated: slow; --precision auto uses fp32)")


def load_model(path, dtype=torch.float32, quant=None, double_quant=False, device="cpu"):
    """Build the model on the meta device, then read, cast and put in place one tensor at a time (block linears
    quantized to NF4 as they are read if quant="nf4"), so peak memory stays near the final model size."""
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
        if quant == "nf4" and module_name.rpartition(".")[2] in BLOCK_LINEARS:
            model.set_submodule(module_name, NF4Linear.from_weight(t, double_quant, compute_dtype=dtype))
        else:
            setattr(model.get_submodule(module_name), attr, nn.Parameter(t))
        del t
    model.inv_freq = rope_inv_freq(cfg).to(device)
    return model.eval()


def first_blocks(model, n):
    """Keep blocks 1..n (None: all): the final norm then follows block n, a cheaper model whose middle layers
    often read a report better than the last ones, which specialise in the next token."""
    if n is None:
        return model
    if not 1 <= n <= len(model.layers):
        raise ValueError(f"--layers {n}: the model has {len(model.layers)} blocks")
    del model.layers[n:]
    return model


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
        return [self.bos_id] + ids if add_bos and self.adds_bos and ids[:1] != [self.bos_id] else ids

    def decode(self, ids, skip_special_tokens=True):
        return self.tk.decode(ids.tolist() if torch.is_tensor(ids) else list(ids), skip_special_tokens)

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
    attention_mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if padding_side == "right" else slice(T - len(s), T)
        ids[i, sl] = torch.tensor(s, dtype=torch.long)
        attention_mask[i, sl] = 1
    return ids, attention_mask


def load_tokenizer(path):
    """Tokenizer of a checkpoint dir (or a tokenizer.json). BOS/EOS/pad ids: config.json's, else the well-known
    special tokens; BOS prepended if tokenizer_config.json says so, else if the post-processor or Llama would."""
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
    bos = (post_bos or [first_token_id(tk, BOS_NAMES)])[0] if bos is None else bos
    eos = first_token_id(tk, EOS_NAMES) if eos is None else eos
    adds_bos = tk_cfg.get("add_bos_token", post_bos == [bos] or tk.id_to_token(bos) in BOS_NAMES)
    tok = Tokenizer(tk, bos, eos, pad, adds_bos)
    too_big = [(n, i) for n, i in (("tokenizer vocabulary size", tok.vocab_size - 1), ("bos_token_id", bos),
                                   ("eos_token_id", eos), ("pad_token_id", tok.pad_id))
               if i is not None and i >= cfg.get("vocab_size", math.inf)]
    if too_big:
        raise ValueError(f"{file}: tokenizer does not match {config_file} (vocab_size {cfg['vocab_size']}): "
                         + ", ".join(f"{n} needs id {i}" for n, i in too_big))
    return tok


def first_token_id(tk, names):
    return next((i for i in map(tk.token_to_id, names) if i is not None), None)
