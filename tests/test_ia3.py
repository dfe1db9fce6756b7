"""(IA)^3 in lora.py against peft's IA3 on a tiny random transformers Llama (fp32, eval): outputs and gradients of
the vectors with the same random (non-one) vectors, adapter files in both directions, only the vectors train."""
import json

import pytest
import torch

import nf4
from lora import IA3Linear, ia3_modules, inject_ia3, load_ia3, save_ia3, trainable_parameters
from test_lora import _assert_same_logits, _inputs, _ours  # the same tiny model loader and padded batch as the LoRA parity tests

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

ATOL = 1e-6
PREFIX = "base_model.model.model."


@pytest.fixture(scope="module")
def base_dir(make_tiny_llama):
    return make_tiny_llama()[0]


def _peft_model(base_dir, seed=1):
    """peft IA3 with its Llama defaults and random vectors around 1 (all-ones would hide a missing scale)."""
    hf = transformers.LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    pm = peft.get_peft_model(hf, peft.IA3Config(task_type="CAUSAL_LM")).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "ia3_l" in n:
                p.copy_(1 + 0.5 * torch.randn(p.shape, generator=g))
    return pm


def _peft_vectors(pm):
    """our module name -> peft's ia3_l parameter."""
    return {n[len(PREFIX):].removesuffix(".ia3_l.default"): p for n, p in pm.named_parameters() if "ia3_l" in n}


def test_forward_and_gradients_match_peft(base_dir):
    pm = _peft_model(base_dir)
    ours = _ours(base_dir)
    names = inject_ia3(ours)
    pv = _peft_vectors(pm)
    assert set(names) == set(pv) and len(names) == 2 * 3
    with torch.no_grad():
        for name, m in ia3_modules(ours).items():
            assert m.ia3_l.shape == pv[name].shape  # (d_out, 1) for k, v; (1, d_in) for down_proj
            assert torch.equal(m.ia3_l, torch.ones_like(m.ia3_l))
            m.ia3_l.copy_(pv[name])
    ids, attn = _inputs()
    ref = pm(input_ids=ids, attention_mask=attn).logits
    got = ours.lm_logits(ours(ids, attention_mask=attn))
    valid = attn.bool()
    torch.testing.assert_close(got[valid], ref[valid], atol=ATOL, rtol=1e-5)

    weight = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3))
    (ref[valid] * weight[valid]).sum().backward()
    (got[valid] * weight[valid]).sum().backward()
    worst = 0.0
    for name, m in ia3_modules(ours).items():
        torch.testing.assert_close(m.ia3_l.grad, pv[name].grad, atol=ATOL, rtol=1e-5)
        worst = max(worst, (m.ia3_l.grad - pv[name].grad).abs().max().item())
    assert all((p.grad is not None) == n.endswith("ia3_l") for n, p in ours.named_parameters())
    print(f"max |grad diff| ia3_l vs peft: {worst:.2e}")


def test_only_vectors_train(base_dir):
    ours = _ours(base_dir)
    inject_ia3(ours)
    pm = peft.get_peft_model(transformers.LlamaForCausalLM.from_pretrained(base_dir), peft.IA3Config(
        task_type="CAUSAL_LM"))
    assert [n for n, p in ours.named_parameters() if p.requires_grad] == [n + ".ia3_l" for n in ia3_modules(ours)]
    assert trainable_parameters(ours) == pm.get_nb_trainable_parameters()[0] == 2 * (32 + 32 + 96)
    with pytest.raises(ValueError, match="subset"):
        inject_ia3(_ours(base_dir), targets=("k_proj",), feedforward=("down_proj",))


def test_nf4_base_trains_only_vectors(base_dir):
    model = _ours(base_dir, quant="nf4")
    inject_ia3(model)
    assert all(isinstance(m.base, nf4.NF4Linear) for m in ia3_modules(model).values())
    ids, attn = _inputs()
    model(ids, attention_mask=attn).square().mean().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == n.endswith("ia3_l"), n


def test_our_adapter_loads_in_peft(base_dir, tmp_path):
    ours = _ours(base_dir)
    inject_ia3(ours)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for m in ia3_modules(ours).values():
            m.ia3_l.copy_(1 + 0.5 * torch.randn(m.ia3_l.shape, generator=g))
    save_ia3(ours, tmp_path, base_model_name_or_path=base_dir)
    hf = transformers.LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    pm = peft.PeftModel.from_pretrained(hf, tmp_path).eval()
    assert pm.peft_config["default"].peft_type == peft.PeftType.IA3
    assert set(pm.peft_config["default"].feedforward_modules) == {"down_proj"}
    _assert_same_logits(pm, ours)


def test_peft_adapter_loads_here(base_dir, tmp_path):
    pm = _peft_model(base_dir, seed=5)
    pm.save_pretrained(tmp_path)
    ours = _ours(base_dir)
    assert len(load_ia3(ours, tmp_path)) == 2 * 3
    assert all(isinstance(m, IA3Linear) and m.feedforward == n.endswith("down_proj")
               for n, m in ia3_modules(ours).items())
    _assert_same_logits(pm, ours)
    assert trainable_parameters(ours) == sum(p.numel() for n, p in pm.named_parameters() if "ia3_l" in n)


def test_lora_adapter_is_a_clear_error(base_dir, tmp_path):
    ours = _ours(base_dir)
    inject_ia3(ours)
    save_ia3(ours, tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    config["peft_type"] = "LORA"
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="adapter_config.json: field 'peft_type'"):
        load_ia3(_ours(base_dir), tmp_path)
