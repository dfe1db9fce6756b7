"""
LoRA (Hu et al. 2021) written out by hand, over a frozen 16/32-bit nn.Linear or a 4-bit NF4Linear (QLoRA).

    h = W0 x + (alpha / r) B A dropout(x)          A: (r, d_in), B: (d_out, r), B = 0 at start

Only A and B train. Adapters are saved and loaded in the PEFT file format (adapter_config.json +
adapter_model.safetensors with PEFT's key names), so an adapter trained here loads in
peft.PeftModel.from_pretrained and the reverse. Nothing here imports peft.

The MTL paper's other adapters (Table II) follow, in the same file format: (IA)^3 vectors and prefix tuning.
"""

import contextlib
import functools
import json
import math
import os
import signal

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
# PEFT wraps the Hugging Face LlamaForCausalLM as base_model.model, whose decoder is .model; our Llama is that
# decoder itself (its attribute names are the HF keys minus the leading "model."), hence the two extra levels.
PEFT_PREFIX = "base_model.model.model."
PEFT_PREFIX_NO_LM = "base_model.model."  # adapters saved by PEFT over a bare LlamaModel (feature extraction)

# -----------------------------------------------------------------------------
# dropout on the adapter's input

def dropped_positions(n, p):
    """Sorted flat indices of the elements an i.i.d. Bernoulli(p) mask over n elements drops.

    Drawn as a Bernoulli process: the gap from one dropped element to the next is Geometric(p), so about p·n
    uniforms replace the n that a full mask needs (at p = 0.05, 20 times fewer)."""
    log_keep = math.log1p(-p)
    chunks, last = [torch.zeros(0, dtype=torch.float64)], -1.0
    while last < n - 1:  # one round almost always: the draw covers n with a 6-sigma margin
        u = 1 - torch.rand(int(n * p + 6 * math.sqrt(n * p) + 16), dtype=torch.float64)  # (0, 1]
        gaps = torch.floor(torch.log(u) / log_keep) + 1  # P(gap > k) = (1 - p)^k
        chunks.append(gaps.cumsum(0) + last)
        last = float(chunks[-1][-1])
    pos = torch.cat(chunks)
    return pos[:int(torch.searchsorted(pos, float(n)))].long()


def _zero_at(t, flat_positions):
    t = t.contiguous()
    t.view(-1).index_fill_(0, flat_positions, 0)
    return t


class _SparseDropout(torch.autograd.Function):
    """Inverted dropout that stores the dropped positions instead of a full mask."""

    @staticmethod
    def forward(ctx, x, p):
        dropped = dropped_positions(x.numel(), p)
        ctx.save_for_backward(dropped)
        ctx.scale = 1 / (1 - p)
        return _zero_at(x * ctx.scale, dropped)

    @staticmethod
    def backward(ctx, grad):
        (dropped,) = ctx.saved_tensors
        return _zero_at(grad * ctx.scale, dropped), None


class LoRADropout(nn.Module):
    """nn.Dropout(p), the same distribution, drawn sparsely on CPU, where the Bernoulli draws of a full mask per
    adapted layer are a noticeable share of a LoRA training step; CUDA's fused dropout is cheap and used as is."""

    def __init__(self, p):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"lora.py: dropout must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return _SparseDropout.apply(x, self.p)

    def extra_repr(self):
        return f"p={self.p}"

# -----------------------------------------------------------------------------
# the layer

class LoRALinear(nn.Module):
    """A frozen linear layer plus the trainable low-rank update (alpha / r) B A (MTL paper Eq. 2-3)."""

    def __init__(self, base, r=16, alpha=16, dropout=0.05, dtype=torch.float32):
        super().__init__()
        device = next(iter(list(base.parameters()) + list(base.buffers()))).device
        self.base = base            # nn.Linear or NF4Linear: anything with in_features, out_features, forward
        self.r, self.alpha = r, alpha
        self.scaling = alpha / r
        # A keeps nn.Linear's default (Kaiming-uniform) init, as PEFT does; B = 0 so that ΔW = 0 at step 0.
        self.lora_A = nn.Linear(base.in_features, r, bias=False, dtype=dtype, device=device)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, dtype=dtype, device=device)
        nn.init.zeros_(self.lora_B.weight)
        self.lora_dropout = LoRADropout(dropout)
        self.merged = False

    def forward(self, x):
        y = self.base(x)
        if self.merged:
            return y
        x = self.lora_dropout(x)
        if not torch.is_autocast_enabled(x.device.type):  # autocast picks the matmul dtype itself
            x = x.to(self.lora_A.weight.dtype)  # the update in the adapter's dtype (float32 by default)
        update = self.lora_B(self.lora_A(x))  # (B, T, d_out)
        return torch.add(y, update.to(y.dtype), alpha=self.scaling)  # y + (alpha / r) update, in the base's dtype

    def delta_weight(self):
        """ΔW = (alpha / r) B A, (d_out, d_in) in float32."""
        return (self.lora_B.weight.float() @ self.lora_A.weight.float()) * self.scaling

    def _check_mergeable(self):
        if hasattr(self.base, "dequantize"):
            # We refuse rather than dequantize-add-requantize: the NF4 rounding step (absmax / ~8 per block of 64)
            # is far larger than a typical LoRA update, so most of ΔW would be rounded away and unmerge could not
            # restore W0. Merge into a 16/32-bit copy of the base instead (as the alignment stages do).
            raise RuntimeError("lora.py: cannot merge a LoRA into a 4-bit NF4 base (requantizing would round the "
                               "update away); load the base with quant=None (bf16/fp32) to merge")
        if not (isinstance(getattr(self.base, "weight", None), torch.Tensor) and self.base.weight.is_floating_point()):
            raise RuntimeError(f"lora.py: cannot merge into a base of type {type(self.base).__name__}")

    @torch.no_grad()
    def merge(self):
        """W0 <- W0 + ΔW (rounded to W0's dtype: exact in fp32, lossy in bf16)."""
        if not self.merged:
            self._check_mergeable()
            W = self.base.weight
            W.copy_((W.float() + self.delta_weight()).to(W.dtype))
            self.merged = True

    @torch.no_grad()
    def unmerge(self):
        """W0 <- W0 - ΔW, undoing merge (up to rounding in 16-bit)."""
        if self.merged:
            W = self.base.weight
            W.copy_((W.float() - self.delta_weight()).to(W.dtype))
            self.merged = False

# -----------------------------------------------------------------------------
# injecting, merging, counting (a module is swapped by its dotted name with nn.Module.set_submodule, and frozen
# with nn.Module.requires_grad_(False))

def _wrap(model, name, r, alpha, dropout):
    module = model.get_submodule(name)
    if isinstance(module, LoRALinear):
        raise ValueError(f"lora.py: {name} already has a LoRA; call merge_lora(model, remove=True) first")
    if not (hasattr(module, "in_features") and hasattr(module, "out_features")):
        raise ValueError(f"lora.py: {name} is a {type(module).__name__}, not a linear layer")
    model.set_submodule(name, LoRALinear(module, r=r, alpha=alpha, dropout=dropout))


def inject_lora(model, targets=("q_proj", "k_proj", "v_proj", "o_proj"), r=16, alpha=16, dropout=0.05):
    """Freeze every parameter of `model` and wrap each linear layer whose last name is in `targets`.

    Paper defaults (MTL paper): r = 16, alpha = 16, dropout 0.05 on q/k/v/o. LLM2Vec: r = 16, alpha = 32 on all
    seven projections (q, k, v, o, gate, up, down). Returns the names of the wrapped modules.
    """
    model.requires_grad_(False)
    names = [name for name, m in model.named_modules()
             if name.rpartition(".")[2] in targets and not isinstance(m, LoRALinear)
             and hasattr(m, "in_features") and hasattr(m, "out_features")]
    if not names:
        raise ValueError(f"lora.py: no linear layer named any of {list(targets)} in {type(model).__name__}")
    for name in names:
        _wrap(model, name, r, alpha, dropout)
    return names


def lora_modules(model):
    """{name: LoRALinear} in model order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge_lora(model, remove=False):
    """Fold every LoRA into its base weight; remove=True also swaps each wrapper for its (merged) base layer,
    which is how one alignment stage is frozen into the base before the next stage's fresh LoRA."""
    for name, m in lora_modules(model).items():
        m.merge()
        if remove:
            model.set_submodule(name, m.base)


def unmerge_lora(model):
    """Subtract every merged LoRA from its base weight again."""
    for m in lora_modules(model).values():
        m.unmerge()


def trainable_parameters(model):
    """Number of parameters with requires_grad (LoRA A and B, plus heads if the module holds them)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

# -----------------------------------------------------------------------------
# PEFT file format

def save_adapter(model, out_dir, base_model_name_or_path=None):
    """Write adapter_config.json + adapter_model.safetensors as peft's LoraModel.save_pretrained does.

    `model` is our Llama (module names like layers.0.self_attn.q_proj); keys are written for a PEFT model over
    LlamaForCausalLM, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight. A LoRA on some blocks
    only (--lora-layers) is recorded as PEFT's layers_to_transform, so PEFT wraps those blocks and no others.
    """
    modules = lora_modules(model)
    if not modules:
        raise ValueError("save_adapter: the model has no LoRA layers")
    settings = {(m.r, m.alpha, getattr(m.lora_dropout, "p", 0.0)) for m in modules.values()}
    if len(settings) != 1:
        raise ValueError(f"save_adapter: all LoRA layers must share r, alpha, dropout; found {sorted(settings)}")
    if any(m.merged for m in modules.values()):
        raise ValueError("save_adapter: unmerge_lora(model) first (merged weights would be counted twice on load)")
    (r, alpha, dropout), = settings
    blocks = sorted({int(name.split(".")[1]) for name in modules}) \
        if all(name.startswith("layers.") for name in modules) else None
    some_blocks = blocks is not None and blocks != list(range(len(model.layers)))
    tensors = {}
    for name, m in modules.items():
        tensors[f"{PEFT_PREFIX}{name}.lora_A.weight"] = m.lora_A.weight.detach().contiguous().cpu()
        tensors[f"{PEFT_PREFIX}{name}.lora_B.weight"] = m.lora_B.weight.detach().contiguous().cpu()
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM",
        "base_model_name_or_path": None if base_model_name_or_path is None else str(base_model_name_or_path),
        "r": r, "lora_alpha": alpha, "lora_dropout": dropout,
        "target_modules": sorted({name.rpartition(".")[2] for name in modules}),
        "bias": "none", "fan_in_fan_out": False, "modules_to_save": None,
        "init_lora_weights": True, "use_rslora": False, "use_dora": False,
        "layers_to_transform": blocks if some_blocks else None, "layers_pattern": "layers" if some_blocks else None,
        "rank_pattern": {}, "alpha_pattern": {},
        "inference_mode": True, "revision": None,
    }
    _write_peft(out_dir, config, tensors)


@contextlib.contextmanager
def no_interrupt():
    """Hold Ctrl-C back for a few lines that must run together (an optimizer update and its record, a
    checkpoint's files); it is raised right after them."""
    caught = []
    try:
        previous = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    except ValueError:  # not the main thread: nothing to hold back
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def atomic_write(path, write, mode="wb"):
    """write(f) into a temp file, fsync, rename over `path`: a kill leaves the old file or the new, never half."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, mode) as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_peft(out_dir, config, tensors):
    """adapter_config.json + adapter_model.safetensors, the two files of every PEFT adapter."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, CONFIG_NAME), "w") as f:
        json.dump(config, f, indent=2)
    save_file(tensors, os.path.join(out_dir, WEIGHTS_NAME), metadata={"format": "pt"})


def _read_config(path):
    with open(path) as f:
        config = json.load(f)
    if config.get("peft_type") != "LORA":
        raise ValueError(f"{path}: field 'peft_type' = {config.get('peft_type')!r}, only 'LORA' is supported")
    if config.get("bias", "none") != "none":
        raise ValueError(f"{path}: field 'bias' = {config['bias']!r} is not supported (need 'none')")
    for field in ("fan_in_fan_out", "use_dora", "use_rslora", "lora_bias", "modules_to_save", "rank_pattern",
                  "alpha_pattern", "layer_replication", "target_parameters", "trainable_token_indices"):
        if config.get(field):  # any of these set means a variant this file does not implement
            raise ValueError(f"{path}: field {field!r} = {config[field]!r} is not supported here")
    for field in ("r", "lora_alpha"):
        if field not in config:
            raise ValueError(f"{path}: missing field {field!r}")
    return config


def load_adapter(model, adapter_dir, dropout=None):
    """Read a PEFT LoRA adapter into our Llama: wrap the modules it names (freezing the model) and copy A, B.

    Accepts keys with PEFT's CausalLM prefix (base_model.model.model.) or its bare-model prefix
    (base_model.model.). dropout=None takes lora_dropout from the config. Returns the loaded module names.
    """
    config = _read_config(os.path.join(adapter_dir, CONFIG_NAME))
    weights_path = os.path.join(adapter_dir, WEIGHTS_NAME)
    state = load_file(weights_path)
    r, alpha = config["r"], config["lora_alpha"]
    dropout = config.get("lora_dropout", 0.0) if dropout is None else dropout

    tensors = {}  # module name -> {"lora_A": tensor, "lora_B": tensor}
    for key, value in state.items():
        prefix = next((p for p in (PEFT_PREFIX, PEFT_PREFIX_NO_LM) if key.startswith(p)), "")
        module_name, part, suffix = (key[len(prefix):].rsplit(".", 2) + ["", ""])[:3]
        if part not in ("lora_A", "lora_B") or suffix != "weight" or not _has_module(model, module_name):
            raise ValueError(f"{weights_path}: key {key!r} does not name a LoRA A/B of a module of this model")
        tensors.setdefault(module_name, {})[part] = value

    existing = lora_modules(model)
    if existing and set(existing) != set(tensors):
        raise ValueError(f"{weights_path}: adapter covers {len(tensors)} modules, the model already has LoRA on "
                         f"{len(existing)} different ones; load into a model without LoRA")
    if not existing:
        model.requires_grad_(False)
    for module_name, pair in tensors.items():
        if module_name not in existing:
            _wrap(model, module_name, r, alpha, dropout)
        m = model.get_submodule(module_name)
        m.alpha, m.scaling = alpha, alpha / r
        for part in ("lora_A", "lora_B"):
            if part not in pair:
                raise ValueError(f"{weights_path}: {module_name}.{part}.weight is missing")
            target = getattr(m, part).weight
            if tuple(pair[part].shape) != tuple(target.shape):
                raise ValueError(f"{weights_path}: {module_name}.{part}.weight has shape {tuple(pair[part].shape)}, "
                                 f"this model needs {tuple(target.shape)} (r = {r})")
            with torch.no_grad():
                target.copy_(pair[part])
    return list(tensors)


def _has_module(model, name):
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False

# -----------------------------------------------------------------------------
# (IA)^3 (Liu et al. 2022), one of the MTL paper's adapter ablations (Table II): learned vectors that rescale
# activations. Attention keys and values are rescaled at the output, the feed-forward down projection at its input:
#
#     k = l_k ⊙ (W_k x),   v = l_v ⊙ (W_v x),   h = W_down (l_ff ⊙ γ(W_gate x) ⊙ W_up x)      l_* = 1 at start

IA3_TARGETS = ("k_proj", "v_proj", "down_proj")  # peft's Llama defaults
IA3_FEEDFORWARD = ("down_proj",)


class IA3Linear(nn.Module):
    """A frozen linear layer (nn.Linear or NF4Linear) whose output, or input if feedforward, is scaled by ia3_l."""

    def __init__(self, base, feedforward=False, dtype=torch.float32):
        super().__init__()
        device = next(iter(list(base.parameters()) + list(base.buffers()))).device
        self.base, self.feedforward = base, feedforward
        # peft's shapes, kept so the files match: (1, d_in) on an input, (d_out, 1) on an output
        shape = (1, base.in_features) if feedforward else (base.out_features, 1)
        self.ia3_l = nn.Parameter(torch.ones(shape, dtype=dtype, device=device))

    def forward(self, x):
        l = self.ia3_l.flatten()  # (d_in,) or (d_out,)
        if self.feedforward:
            return self.base((x.to(l.dtype) * l).to(x.dtype))
        y = self.base(x)
        return (y * l).to(y.dtype)


def inject_ia3(model, targets=IA3_TARGETS, feedforward=IA3_FEEDFORWARD):
    """Freeze every parameter of `model` and wrap each linear layer whose last name is in `targets` (those also in
    `feedforward` are scaled at the input). Returns the names of the wrapped modules."""
    if not set(feedforward) <= set(targets):
        raise ValueError(f"lora.py: feedforward {list(feedforward)} must be a subset of targets {list(targets)}")
    model.requires_grad_(False)
    names = [name for name, m in model.named_modules() if name.rpartition(".")[2] in targets
             and not isinstance(m, (IA3Linear, LoRALinear)) and hasattr(m, "in_features")]
    if not names:
        raise ValueError(f"lora.py: no linear layer named any of {list(targets)} in {type(model).__name__}")
    for name in names:
        model.set_submodule(name, IA3Linear(model.get_submodule(name),
                                            feedforward=name.rpartition(".")[2] in feedforward))
    return names


def ia3_modules(model):
    """{name: IA3Linear} in model order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, IA3Linear)}


def save_ia3(model, out_dir, base_model_name_or_path=None):
    """Write adapter_config.json + adapter_model.safetensors as peft's IA3Model.save_pretrained does
    (keys like base_model.model.model.layers.0.self_attn.k_proj.ia3_l)."""
    modules = ia3_modules(model)
    if not modules:
        raise ValueError("save_ia3: the model has no (IA)^3 layers")
    tensors = {f"{PEFT_PREFIX}{name}.ia3_l": m.ia3_l.detach().contiguous().cpu() for name, m in modules.items()}
    config = {
        "peft_type": "IA3", "task_type": "CAUSAL_LM",
        "base_model_name_or_path": None if base_model_name_or_path is None else str(base_model_name_or_path),
        "target_modules": sorted({name.rpartition(".")[2] for name in modules}),
        "feedforward_modules": sorted({name.rpartition(".")[2] for name, m in modules.items() if m.feedforward}),
        "fan_in_fan_out": False, "init_ia3_weights": True, "modules_to_save": None, "exclude_modules": None,
        "inference_mode": True, "revision": None,
    }
    _write_peft(out_dir, config, tensors)


def load_ia3(model, adapter_dir):
    """Read a peft (IA)^3 adapter into our Llama: wrap the modules it names (freezing the model) and copy the
    vectors. Accepts peft's CausalLM and bare-model key prefixes. Returns the loaded module names."""
    path = os.path.join(adapter_dir, CONFIG_NAME)
    with open(path) as f:
        config = json.load(f)
    if config.get("peft_type") != "IA3":
        raise ValueError(f"{path}: field 'peft_type' = {config.get('peft_type')!r}, load_ia3 needs 'IA3'")
    for field in ("fan_in_fan_out", "modules_to_save"):
        if config.get(field):
            raise ValueError(f"{path}: field {field!r} = {config[field]!r} is not supported here")
    feedforward = config.get("feedforward_modules") or []
    if isinstance(feedforward, str):
        raise ValueError(f"{path}: field 'feedforward_modules' is a regex {feedforward!r}; only a list is supported")
    weights_path = os.path.join(adapter_dir, WEIGHTS_NAME)
    vectors = {}
    for key, value in load_file(weights_path).items():
        prefix = next((p for p in (PEFT_PREFIX, PEFT_PREFIX_NO_LM) if key.startswith(p)), "")
        module_name, _, part = key[len(prefix):].rpartition(".")
        if part != "ia3_l" or not _has_module(model, module_name):
            raise ValueError(f"{weights_path}: key {key!r} does not name an ia3_l vector of a module of this model")
        vectors[module_name] = value
    model.requires_grad_(False)
    for name, value in vectors.items():
        m = model.get_submodule(name)
        if not isinstance(m, IA3Linear):
            m = IA3Linear(m, feedforward=name.rpartition(".")[2] in feedforward)
            model.set_submodule(name, m)
        if tuple(value.shape) != tuple(m.ia3_l.shape):
            raise ValueError(f"{weights_path}: {name}.ia3_l has shape {tuple(value.shape)}, this model needs "
                             f"{tuple(m.ia3_l.shape)} (feedforward = {m.feedforward})")
        with torch.no_grad():
            m.ia3_l.copy_(value)
        m.ia3_l.requires_grad_(True)
    return list(vectors)

# -----------------------------------------------------------------------------
# Prefix tuning (Li & Liang 2021), the MTL paper's third adapter ablation (Table II, L_p = 32 virtual tokens): every
# block attends to P learned key/value vectors in front of the input, as if the report had been preceded by P tokens
# whose cached keys and values are free parameters.
#
#     Attention_i(x) = softmax(q [P_k,i ; k]^T / sqrt(d)) [P_v,i ; v]       P_k,i, P_v,i: (n_kv, P, hd) per block i
#
# Stored in PEFT's layout, one (P, 2 L n_kv hd) table ("prompt_embeddings", PEFT's PrefixEncoder without projection),
# so the file loads in peft as PREFIX_TUNING. PEFT sizes it by the key/value width, n_kv hd: on Llama-3-8B that is
# 32 x 32 blocks x 2 x 1,024 = 2,097,152 parameters. The paper's Table II lists 213,012 - 81,940 = 131,072
# = 32 x 4,096, one model-width vector per virtual token: the size of prompt tuning rather than of prefix tuning.

class PrefixTuning(nn.Module):
    """P learned keys and values for each of L blocks in one table; block i's attention calls extend(i, ...)."""

    def __init__(self, n_layers, n_kv, head_dim, num_virtual_tokens=32, dtype=torch.float32, device=None):
        super().__init__()
        self.shape = (num_virtual_tokens, 2 * n_layers, n_kv, head_dim)
        # N(0, 1) like PEFT's nn.Embedding default: each prefix key has the norm of a typical unit-variance key
        self.prompt_embeddings = nn.Parameter(torch.randn(num_virtual_tokens, 2 * n_layers * n_kv * head_dim,
                                                          dtype=dtype, device=device))

    def forward(self):
        return self.prompt_embeddings.view(self.shape).permute(1, 2, 0, 3)  # (P, 2L, n_kv, hd) -> (2L, n_kv, P, hd)

    def extend(self, i, k, v, attn_mask, is_causal):
        """What block i's attention receives: its P keys and values in front of k, v (B, n_kv, T, hd), unrotated
        (they have no position), and a mask (B, 1, T, P + T) that lets every query see all P of them."""
        B, _, T, _ = k.shape
        pk, pv = (p.to(k.dtype).expand(B, -1, -1, -1) for p in self()[2 * i:2 * i + 2])  # (B, n_kv, P, hd)
        if attn_mask is None:  # no padding: the mask that is_causal stood for
            attn_mask = torch.ones(T, T, dtype=torch.bool, device=k.device)
            attn_mask = (attn_mask.tril() if is_causal else attn_mask).expand(B, 1, T, T)
        attn_mask = torch.cat([attn_mask.new_ones(B, 1, T, self.shape[0]), attn_mask], dim=-1)
        return torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2), attn_mask, False


def inject_prefix(model, num_virtual_tokens=32):
    """Freeze every parameter of our Llama, give it a trainable prefix (model.prefix) and each block's attention its
    share of it. Returns the prefix."""
    model.requires_grad_(False)
    cfg, device = model.config, model.embed_tokens.weight.device
    model.prefix = PrefixTuning(len(model.layers), cfg.num_key_value_heads, cfg.head_dim, num_virtual_tokens,
                                device=device)
    # the report sits at positions P, P + 1, ... after the virtual tokens, as in PEFT: a prefix key is never rotated,
    # so q . k_prefix depends on the query's absolute position and a trained prefix relies on this offset
    model.position_offset = num_virtual_tokens
    for i, block in enumerate(model.layers):
        block.self_attn.prefix = functools.partial(model.prefix.extend, i)
    return model.prefix


def save_prefix(model, out_dir, base_model_name_or_path=None):
    """Write adapter_config.json + adapter_model.safetensors as peft's PrefixTuning save_pretrained does."""
    if getattr(model, "prefix", None) is None:
        raise ValueError("save_prefix: the model has no prefix (lora.inject_prefix)")
    P, two_L, n_kv, hd = model.prefix.shape
    config = {
        "peft_type": "PREFIX_TUNING", "task_type": "CAUSAL_LM",
        "base_model_name_or_path": None if base_model_name_or_path is None else str(base_model_name_or_path),
        "num_virtual_tokens": P, "num_layers": two_L // 2, "num_attention_heads": n_kv, "token_dim": n_kv * hd,
        "encoder_hidden_size": n_kv * hd, "num_transformer_submodules": 1, "prefix_projection": False,
        "init_weights": None, "modules_to_save": None, "inference_mode": True, "revision": None,
    }
    _write_peft(out_dir, config, {"prompt_embeddings": model.prefix.prompt_embeddings.detach().contiguous().cpu()})


def load_prefix(model, adapter_dir):
    """Read a peft PREFIX_TUNING adapter (without projection) into our Llama as model.prefix, freezing the rest."""
    path = os.path.join(adapter_dir, CONFIG_NAME)
    with open(path) as f:
        config = json.load(f)
    if config.get("peft_type") != "PREFIX_TUNING":
        raise ValueError(f"{path}: field 'peft_type' = {config.get('peft_type')!r}, load_prefix needs 'PREFIX_TUNING'")
    if config.get("prefix_projection"):
        raise ValueError(f"{path}: field 'prefix_projection' = true is not supported (its MLP is not saved by peft)")
    cfg = model.config
    for field, need in (("num_layers", len(model.layers)), ("num_attention_heads", cfg.num_key_value_heads),
                        ("token_dim", cfg.num_key_value_heads * cfg.head_dim)):
        if config.get(field) != need:
            raise ValueError(f"{path}: field {field!r} = {config.get(field)!r}, this model needs {need}")
    prefix = inject_prefix(model, config["num_virtual_tokens"])
    weights_path = os.path.join(adapter_dir, WEIGHTS_NAME)
    state = load_file(weights_path)
    if set(state) != {"prompt_embeddings"}:
        raise ValueError(f"{weights_path}: keys {sorted(state)}, a prefix adapter has only 'prompt_embeddings'")
    if state["prompt_embeddings"].shape != prefix.prompt_embeddings.shape:
        raise ValueError(f"{weights_path}: prompt_embeddings has shape {tuple(state['prompt_embeddings'].shape)}, "
                         f"this model needs {tuple(prefix.prompt_embeddings.shape)}")
    with torch.no_grad():
        prefix.prompt_embeddings.copy_(state["prompt_embeddings"])
    return prefix


# ----------------------------------------------------------------------------- any of the three, by --adapter name

def save_any(kind, model, out_dir, base_model_name_or_path=None):
    """Save the adapter of --adapter `kind` (lora, ia3, prefix) in the PEFT format; 'frozen' has none."""
    save = {"lora": save_adapter, "ia3": save_ia3, "prefix": save_prefix}.get(kind)
    if save is not None:
        save(model, out_dir, base_model_name_or_path=base_model_name_or_path)


def load_any(kind, model, adapter_dir):
    """Load a saved adapter of --adapter `kind` into a model without one; 'frozen' loads nothing."""
    load = {"lora": load_adapter, "ia3": load_ia3, "prefix": load_prefix}.get(kind)
    if load is not None:
        load(model, adapter_dir)
