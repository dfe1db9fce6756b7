"""lora.py against peft on a tiny random transformers Llama (fp32, dropout 0, eval): outputs, gradients of A and B,
also under bf16 autocast; merge/unmerge, adapter files in both directions; QLoRA training touches only A, B and
heads; the MTL paper's parameter count on a meta-device Llama-3-8B; the sparse LoRA dropout against torch's."""
import math

import pytest
import torch
import torch.nn.functional as F

import llama
from heads import MultiTaskHeads, last_token_pool
from lora import LoRADropout, LoRALinear, dropped_positions, inject_lora, load_adapter, lora_modules, merge_lora, \
    save_adapter, trainable_parameters, unmerge_lora
from losses import multitask_cross_entropy

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"]  # default four plus one MLP projection
R, ALPHA = 4, 8
ATOL = 1e-6


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   tie_word_embeddings=False)
    path = tmp_path_factory.mktemp("tiny_llama")
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def _hf(base_dir):
    return transformers.LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()


def _peft_model(base_dir, seed=1):
    """peft LoRA with random, non-zero A and B (B = 0 would hide every bug in B's path)."""
    config = peft.LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
    model = peft.get_peft_model(_hf(base_dir), config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def _peft_layers(pm):
    """our module name -> peft LoRA layer."""
    prefix = "base_model.model.model."
    return {n[len(prefix):]: m for n, m in pm.named_modules() if n.startswith(prefix) and hasattr(m, "lora_A")
            and "default" in getattr(m, "lora_A", {})}


def _ours(base_dir, **kw):
    return llama.load_model(base_dir, dtype=torch.float32, **kw).eval()


def _inputs():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 128, (2, 9), generator=g)
    attn = torch.ones(2, 9, dtype=torch.long)
    attn[1, 6:] = 0  # right padding in row 1
    return ids, attn


def _assert_same_logits(pm, ours):
    """peft's and our logits agree at the real tokens of the same padded batch."""
    ids, attn = _inputs()
    with torch.no_grad():
        ref = pm(input_ids=ids, attention_mask=attn).logits
        got = ours.lm_logits(ours(ids, attention_mask=attn))
    valid = attn.bool()
    torch.testing.assert_close(got[valid], ref[valid], atol=ATOL, rtol=1e-5)


def _copy_peft_to_ours(pm, ours):
    pl = _peft_layers(pm)
    assert set(pl) == set(lora_modules(ours))
    with torch.no_grad():
        for name, m in lora_modules(ours).items():
            m.lora_A.weight.copy_(pl[name].lora_A["default"].weight)
            m.lora_B.weight.copy_(pl[name].lora_B["default"].weight)


def test_forward_and_gradients_match_peft(base_dir):
    pm = _peft_model(base_dir)
    ours = _ours(base_dir)
    names = inject_lora(ours, targets=TARGETS, r=R, alpha=ALPHA, dropout=0.0)
    assert len(names) == 2 * len(TARGETS)
    _copy_peft_to_ours(pm, ours)
    ids, attn = _inputs()
    ref = pm(input_ids=ids, attention_mask=attn).logits
    got = ours.lm_logits(ours(ids, attention_mask=attn))
    valid = attn.bool()
    torch.testing.assert_close(got[valid], ref[valid], atol=ATOL, rtol=1e-5)

    weight = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3))
    (ref[valid] * weight[valid]).sum().backward()
    (got[valid] * weight[valid]).sum().backward()
    pl = _peft_layers(pm)
    worst = 0.0
    for name, m in lora_modules(ours).items():
        for part in ("lora_A", "lora_B"):
            g_ref = getattr(pl[name], part)["default"].weight.grad
            g_ours = getattr(m, part).weight.grad
            torch.testing.assert_close(g_ours, g_ref, atol=ATOL, rtol=1e-5)
            worst = max(worst, (g_ours - g_ref).abs().max().item())
    # only A and B have gradients; every base parameter is frozen
    assert all(p.grad is None for n, p in ours.named_parameters() if "lora_" not in n)
    print(f"max |grad diff| A/B vs peft: {worst:.2e}")


def test_merge_equals_unmerged_and_matches_peft_merge(base_dir):
    pm = _peft_model(base_dir)
    ours = _ours(base_dir)
    inject_lora(ours, targets=TARGETS, r=R, alpha=ALPHA, dropout=0.0)
    _copy_peft_to_ours(pm, ours)
    ids, attn = _inputs()
    with torch.no_grad():
        before = ours(ids, attention_mask=attn)
        w0 = {n: m.base.weight.clone() for n, m in lora_modules(ours).items()}
        merge_lora(ours)
        after = ours(ids, attention_mask=attn)
        torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
        merged_ref = pm.merge_and_unload().state_dict()
        for n, m in lora_modules(ours).items():
            torch.testing.assert_close(m.base.weight, merged_ref[f"model.{n}.weight"], atol=ATOL, rtol=1e-6)
        unmerge_lora(ours)
        for n, m in lora_modules(ours).items():
            torch.testing.assert_close(m.base.weight, w0[n], atol=ATOL, rtol=0)
        torch.testing.assert_close(ours(ids, attention_mask=attn), before, atol=1e-5, rtol=1e-5)
        merge_lora(ours, remove=True)  # merge-and-unload, as between alignment stages
        assert not lora_modules(ours)
        torch.testing.assert_close(ours(ids, attention_mask=attn), before, atol=1e-5, rtol=1e-5)


def test_our_adapter_loads_in_peft(base_dir, tmp_path):
    ours = _ours(base_dir)
    inject_lora(ours, targets=TARGETS, r=R, alpha=ALPHA, dropout=0.0)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for n, p in ours.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    save_adapter(ours, tmp_path, base_model_name_or_path=base_dir)
    pm = peft.PeftModel.from_pretrained(_hf(base_dir), tmp_path).eval()
    _assert_same_logits(pm, ours)
    assert pm.peft_config["default"].r == R and pm.peft_config["default"].lora_alpha == ALPHA


def test_adapter_on_some_blocks_loads_in_peft_on_those_blocks(base_dir, tmp_path):
    """--lora-layers: the file says layers_to_transform, so PEFT wraps block 1 only (no missing-key LoRA on 0)."""
    ours = _ours(base_dir)
    inject_lora(ours.layers[1:], targets=TARGETS, r=R, alpha=ALPHA, dropout=0.0)
    with torch.no_grad():
        for n, p in ours.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(6))
    save_adapter(ours, tmp_path)
    pm = peft.PeftModel.from_pretrained(_hf(base_dir), tmp_path).eval()
    assert pm.peft_config["default"].layers_to_transform == [1]
    assert {n.split(".layers.")[1][0] for n, _ in pm.named_parameters() if "lora_A" in n} == {"1"}
    _assert_same_logits(pm, ours)


def test_peft_adapter_loads_here(base_dir, tmp_path):
    pm = _peft_model(base_dir, seed=5)
    pm.save_pretrained(tmp_path)
    ours = _ours(base_dir)
    names = load_adapter(ours, tmp_path)
    assert len(names) == 2 * len(TARGETS)
    _assert_same_logits(pm, ours)
    assert trainable_parameters(ours) == sum(p.numel() for n, p in pm.named_parameters() if "lora_" in n)


def test_qlora_step_trains_only_adapters_and_heads(base_dir):
    from nf4 import NF4Linear
    model = _ours(base_dir, quant="nf4")
    inject_lora(model, r=R, alpha=ALPHA, dropout=0.05)
    assert all(isinstance(m.base, NF4Linear) for m in lora_modules(model).values())
    heads = MultiTaskHeads(64, {"T": ["T1", "T2", "T3"], "HER2": ["Positive", "Negative"]})
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k}
    trainable = [p for p in list(model.parameters()) + list(heads.parameters()) if p.requires_grad]
    assert len(trainable) == 2 * 4 * 2 + 2 * 2  # A, B of 4 projections x 2 layers; weight + bias of 2 heads
    opt = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.01)
    model.train()
    ids, attn = _inputs()
    logits = heads(last_token_pool(model(ids, attention_mask=attn), attn))
    loss = multitask_cross_entropy(logits, {"T": torch.tensor([0, 2]), "HER2": torch.tensor([1, -100])})
    loss.backward()
    for n, p in list(model.named_parameters()) + list(heads.named_parameters()):
        assert (p.grad is not None) == ("lora_" in n or n.startswith("heads.")), n
    assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_A" not in n and p.grad is not None)
    opt.step()
    after = model.state_dict()
    for k, v in frozen.items():
        assert torch.equal(after[k], v), f"{k} changed"  # NF4 codes, absmax, embeddings, norms: bit-identical
    assert all(m.lora_B.weight.abs().sum() > 0 for m in lora_modules(model).values())
    with pytest.raises(RuntimeError, match="NF4"):
        merge_lora(model)


def test_paper_parameter_count_on_meta_llama3_8b():
    cfg = llama.LlamaConfig.from_dict(dict(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=500000.0,
        tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128009))
    with torch.device("meta"):
        model = llama.Llama(cfg)
        inject_lora(model, r=16, alpha=16, dropout=0.05)
        # The paper's 81,940 head parameters are 20 x (4096 + 1): 20 outputs in all. Table S1 lists 25 classes
        # over 7 tasks; one split that sums to 20 is Fig. S3's six tasks with binary ER/PR/HER2 (no M head).
        heads20 = MultiTaskHeads(4096, {"T": list("abcdef"), "N": list("abcde"), "grade": list("abc"),
                                        "ER": list("ab"), "PR": list("ab"), "HER2": list("ab")})
        heads25 = MultiTaskHeads(4096, {"T": list("abcdef"), "N": list("abcde"), "M": list("ab"),
                                        "grade": list("abc"), "ER": list("abc"), "PR": list("abc"),
                                        "HER2": list("abc")})
    assert all(p.is_meta for p in model.parameters())
    assert isinstance(model.layers[0].self_attn.q_proj, LoRALinear)
    assert trainable_parameters(model) == 13_631_488
    assert trainable_parameters(heads20) == 81_940
    assert trainable_parameters(model) + trainable_parameters(heads20) == 13_713_428
    assert trainable_parameters(heads25) == 102_425  # our seven-task label sets


def test_peft_adapter_over_bare_model_loads_here(base_dir, tmp_path):
    """LLM2Vec publishes PEFT adapters over the bare decoder (keys base_model.model.layers...): those load too."""
    config = peft.LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                             task_type="FEATURE_EXTRACTION")
    pm = peft.get_peft_model(transformers.LlamaModel.from_pretrained(base_dir, dtype=torch.float32), config).eval()
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    pm.save_pretrained(tmp_path)
    ours = _ours(base_dir)
    assert len(load_adapter(ours, tmp_path)) == 4
    ids, attn = _inputs()
    with torch.no_grad():
        ref = pm(input_ids=ids, attention_mask=attn).last_hidden_state
        got = ours(ids, attention_mask=attn)
    torch.testing.assert_close(got[attn.bool()], ref[attn.bool()], atol=ATOL, rtol=1e-5)


def test_unsupported_adapter_config_is_a_clear_error(base_dir, tmp_path):
    import json
    ours = _ours(base_dir)
    inject_lora(ours, r=R, alpha=ALPHA)
    save_adapter(ours, tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    config["use_dora"] = True
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="adapter_config.json: field 'use_dora'"):
        load_adapter(_ours(base_dir), tmp_path)


def test_forward_and_gradients_match_peft_under_bf16_autocast(base_dir):
    """The mixed-precision path the README trains with: bf16 base, fp32 adapters, bf16 autocast, on both sides."""
    pm = _peft_model(base_dir)
    pm.base_model.model.to(torch.bfloat16)
    for name, p in pm.named_parameters():
        if "lora_" in name:
            p.data = p.data.float()
    ours = llama.load_model(base_dir, dtype=torch.bfloat16).eval()
    inject_lora(ours, targets=TARGETS, r=R, alpha=ALPHA, dropout=0.0)
    _copy_peft_to_ours(pm, ours)
    ids, attn = _inputs()
    valid = attn.bool()
    weight = torch.randn(2, 9, 128, generator=torch.Generator().manual_seed(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = pm(input_ids=ids, attention_mask=attn).logits
        got = ours.lm_logits(ours(ids, attention_mask=attn))
    assert got.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(got[valid].float(), ref[valid].float(), atol=0.05, rtol=0.02)  # bf16 rounding
    (ref[valid].float() * weight[valid]).sum().backward()
    (got[valid].float() * weight[valid]).sum().backward()
    pl = _peft_layers(pm)
    for name, m in lora_modules(ours).items():
        for part in ("lora_A", "lora_B"):
            g_ref = getattr(pl[name], part)["default"].weight.grad
            g_ours = getattr(m, part).weight.grad
            assert g_ours.dtype == torch.float32
            # bf16 rounding of activations: compare relative to the gradient's size
            assert (g_ours - g_ref).norm() <= 0.05 * g_ref.norm(), name


def _drop_statistics(dropout, n, draws, seed=0):
    """Per-element drop counts and adjacent-pair joint drop counts over `draws` masks of n elements."""
    torch.manual_seed(seed)
    x = torch.ones(n)
    counts, pairs = torch.zeros(n), torch.zeros(n - 1)
    for _ in range(draws):
        dropped = (dropout(x) == 0).float()
        counts += dropped
        pairs += dropped[1:] * dropped[:-1]
    return counts, pairs


@pytest.mark.parametrize("n, p, draws", [(7, 0.5, 4000), (300, 0.05, 4000), (2 * 64 * 96, 0.05, 200)])
def test_sparse_dropout_is_bernoulli_like_torch_dropout(n, p, draws):
    """Each element dropped with probability p, independently of its neighbour, at the ends as in the middle; the
    same checks applied to torch's F.dropout show the bounds are not loose. 5 sigma bounds, fixed seeds."""
    ours = LoRADropout(p).train()
    for name, dropout in (("ours", ours), ("torch", lambda x: F.dropout(x, p, training=True))):
        counts, pairs = _drop_statistics(dropout, n, draws)
        total = counts.sum().item()
        assert abs(total - n * draws * p) <= 5 * math.sqrt(n * draws * p * (1 - p)), name
        k = min(n, 64)  # the first and last k elements: a wrong first or last gap shows here
        for ends in (counts[:k], counts[-k:]):
            assert abs(ends.sum().item() - k * draws * p) <= 5 * math.sqrt(k * draws * p * (1 - p)), name
        expected_pairs = (n - 1) * draws * p * p
        assert abs(pairs.sum().item() - expected_pairs) <= 5 * math.sqrt(expected_pairs * 3) + 5, name
        per_draw = [(dropout(torch.ones(n)) == 0).sum().item() for _ in range(300)]
        var = torch.tensor(per_draw, dtype=torch.float64).var().item()
        assert 0.6 < var / (n * p * (1 - p)) < 1.5, name  # the count per draw is Binomial(n, p)


def test_dropped_positions_are_sorted_unique_and_in_range():
    torch.manual_seed(0)
    for n, p in ((1, 0.5), (10, 0.99), (1000, 0.3), (50_000, 0.001)):
        pos = dropped_positions(n, p)
        assert pos.dtype == torch.int64
        assert bool((pos[1:] > pos[:-1]).all()) and (len(pos) == 0 or (0 <= pos[0] and pos[-1] < n))


def test_sparse_dropout_forward_and_backward():
    """Kept elements scaled by 1 / (1 - p), dropped ones 0, and the same mask in the gradient (torch.autograd's
    numerical gradcheck, the mask fixed by reseeding); eval mode and p = 0 are the identity."""
    p = 0.3
    dropout = LoRADropout(p).train()
    x = torch.rand(3, 5, 7, dtype=torch.float64) + 0.5
    torch.manual_seed(1)
    y = dropout(x)
    kept = y != 0
    assert 0 < kept.sum() < x.numel()
    torch.testing.assert_close(y[kept], x[kept] / (1 - p), rtol=1e-15, atol=0)

    def reseeded(t):
        torch.manual_seed(1)
        return dropout(t)
    assert torch.autograd.gradcheck(reseeded, (x.clone().requires_grad_(),))
    xt = x.transpose(0, 2).requires_grad_()  # a non-contiguous input
    torch.manual_seed(1)
    dropout(xt).backward(torch.ones(7, 5, 3, dtype=torch.float64))
    torch.manual_seed(1)
    assert torch.equal(xt.grad != 0, dropout(xt.detach()) != 0)

    assert dropout.eval()(x) is x and LoRADropout(0.0).train()(x) is x
    with pytest.raises(ValueError, match="dropout must be in"):
        LoRADropout(1.0)
