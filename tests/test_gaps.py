"""Tests that close gaps through which real bugs could pass (issue 16, item 4): each compares against a reference
that is not our code (the paper's formula written out, peft, transformers, the GGUF file) and can fail.

- the symmetric supervised contrastive loss with hard negatives (stage 3) against the formula, by explicit loops;
- LoRA and (IA)^3 gradients equal to peft's within 1e-6, asserted (test_lora/test_ia3 only print the worst);
- the Llama-3.1 rope scaling really changes transformers' output on the parity tests' inputs;
- the GGUF conversion of the demo model runs on every test run (into a temp cache), not only on a cold cache.
"""
import math

import pytest
import torch

import llama
from demo_model import demo_model_dir
from losses import supervised_contrastive_loss

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

# ----------------------------------------------------------------------------- stage 3 loss


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _nll(query, docs, positive, tau):
    """-log softmax over the docs of the positive's cosine / tau, for one query."""
    s = [_cos(query, d) / tau for d in docs]
    return -(s[positive] - math.log(sum(math.exp(x) for x in s)))


def symmetric_loss_reference(rad, path, neg, tau):
    """The symmetric InfoNCE of the alignment recipe, term by term:

        L = 1/2 [ 1/B sum_i -log e^{s(r_i, p_i)/tau} / (sum_j e^{s(r_i, p_j)/tau} + sum_k e^{s(r_i, n_k)/tau})
                + 1/B sum_i -log e^{s(p_i, r_i)/tau} / sum_j e^{s(p_i, r_j)/tau} ]

    with s the cosine. The hard negatives n_k are pathology reports: candidates for a radiology query (as in
    LLM2Vec's HardNegativeNLLLoss, which appends them as extra columns), not for a pathology query.
    """
    B = len(rad)
    forward = sum(_nll(rad[i], path + neg, i, tau) for i in range(B)) / B
    backward = sum(_nll(path[i], rad, i, tau) for i in range(B)) / B
    return (forward + backward) / 2


def test_symmetric_supervised_loss_with_hard_negatives_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    rad, path, neg = (torch.randn(n, 8, generator=g, dtype=torch.float64) for n in (5, 5, 3))
    for tau in (0.02, 0.05, 1.0):
        got = supervised_contrastive_loss(rad, path, temperature=tau, symmetric=True, z_neg=neg).item()
        want = symmetric_loss_reference(rad.tolist(), path.tolist(), neg.tolist(), tau)
        assert got == pytest.approx(want, rel=1e-6)
    # the hard negatives count: without them the loss is lower (fewer competitors), and the test would notice
    # a loss that dropped them
    without = supervised_contrastive_loss(rad, path, temperature=0.05, symmetric=True).item()
    assert without < symmetric_loss_reference(rad.tolist(), path.tolist(), neg.tolist(), 0.05) - 1e-3

# ----------------------------------------------------------------------------- gradients against peft


def _backward_both(pm, ours):
    """The same weighted sum of the logits at the real tokens, backpropagated through peft and through ours."""
    from test_lora import _inputs  # the padded batch of the logits parity tests
    ids, attn = _inputs()
    ref = pm(input_ids=ids, attention_mask=attn).logits
    got = ours.lm_logits(ours(ids, attention_mask=attn))
    valid = attn.bool()
    w = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3))
    (ref[valid] * w[valid]).sum().backward()
    (got[valid] * w[valid]).sum().backward()


def _peft(path, config, init):
    pm = peft.get_peft_model(transformers.LlamaForCausalLM.from_pretrained(path, dtype=torch.float32), config)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if p.requires_grad:
                p.copy_(init(torch.randn(p.shape, generator=g)))
    return pm.eval()


def _ours_for(peft_name, modules):
    """Our parameter for one of peft's: base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight ->
    modules["layers.0.self_attn.q_proj"].lora_A.weight."""
    for part in ("lora_A", "lora_B", "ia3_l"):
        if f".{part}." in peft_name:
            module = modules[peft_name.removeprefix("base_model.model.model.").split(f".{part}.")[0]]
            return module.ia3_l if part == "ia3_l" else getattr(module, part).weight
    raise KeyError(peft_name)


def _worst_gradient_difference(pm, ours, modules):
    """Copy peft's trainable values into ours, backpropagate the same loss through both: max |grad difference|."""
    pairs = [(_ours_for(n, modules), p) for n, p in pm.named_parameters() if p.requires_grad]
    assert len(pairs) == len(modules) * (1 if "ia3" in type(next(iter(modules.values()))).__name__.lower() else 2)
    with torch.no_grad():
        for mine, theirs in pairs:
            mine.copy_(theirs)
    _backward_both(pm, ours)
    return max((mine.grad - theirs.grad).abs().max().item() for mine, theirs in pairs)


def test_lora_gradients_equal_peft_within_1e6(make_tiny_llama):
    from lora import inject_lora, lora_modules
    path, _ = make_tiny_llama()
    targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
    pm = _peft(path, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets,
                                     task_type="CAUSAL_LM"), lambda x: 0.1 * x)  # B != 0: its path is live
    ours = llama.load_model(path).eval()
    inject_lora(ours, targets=targets, r=4, alpha=8, dropout=0.0)
    worst = _worst_gradient_difference(pm, ours, lora_modules(ours))
    assert worst <= 1e-6, worst


def test_ia3_gradients_equal_peft_within_1e6(make_tiny_llama):
    from lora import ia3_modules, inject_ia3
    path, _ = make_tiny_llama()
    pm = _peft(path, peft.IA3Config(task_type="CAUSAL_LM"), lambda x: 1 + 0.5 * x)  # not all ones
    ours = llama.load_model(path).eval()
    inject_ia3(ours)
    worst = _worst_gradient_difference(pm, ours, ia3_modules(ours))
    assert worst <= 1e-6, worst

# ----------------------------------------------------------------------------- rope scaling guard


def test_llama3_rope_scaling_changes_transformers_output(make_tiny_llama):
    """The rope-scaling parity case of test_llama must not pass vacuously: on its inputs, transformers with the
    Llama-3.1 scaling gives other hidden states than without it (same weights), by far more than the 1e-5 of
    the parity test."""
    from test_llama import LLAMA3_ROPE, hf_forward, padded_batch
    (_, scaled), (_, plain) = make_tiny_llama(n_kv=2, rope_scaling=LLAMA3_ROPE), make_tiny_llama(n_kv=2)
    assert all(torch.equal(a, b) for a, b in zip(scaled.state_dict().values(), plain.state_dict().values()))
    for side in ("left", "right"):
        ids, att = padded_batch(128, side)
        h_scaled, _ = hf_forward(scaled, ids, att)
        h_plain, _ = hf_forward(plain, ids, att)
        keep = att.bool()
        assert (h_scaled[keep] - h_plain[keep]).abs().max() > 1e-2

# ----------------------------------------------------------------------------- GGUF conversion


def test_demo_conversion_runs_and_equals_the_cached_one(demo_dir, tmp_path, monkeypatch):
    """demo_model_dir() with an empty cache converts the GGUF file again (temp dir, then rename); the result is the
    cached directory that the SmolLM2 parity tests compare against transformers, tensor for tensor."""
    from safetensors.torch import load_file
    monkeypatch.setenv("ONCOLLAMA_CACHE", str(tmp_path))
    fresh = demo_model_dir()
    assert fresh.parent == tmp_path and fresh != demo_dir
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name]  # no temp dir left behind
    for name in ("config.json", "tokenizer.json"):
        assert (fresh / name).read_text() == (demo_dir / name).read_text(), name
    new, cached = load_file(fresh / "model.safetensors"), load_file(demo_dir / "model.safetensors")
    assert set(new) == set(cached) and len(new) == 2 + 9 * 30  # embeddings, final norm, 9 tensors per block
    assert all(torch.equal(new[k], cached[k]) for k in cached)
