"""Prefix tuning in lora.py against peft's PREFIX_TUNING on a tiny random transformers Llama (fp32, GQA):
hidden states under right and left padding, gradients of the prefix table, adapter files in both directions."""
import json

import pytest
import torch

from lora import PrefixTuning, inject_prefix, load_prefix, save_prefix, trainable_parameters
from test_lora import _ours

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

P = 5
ATOL = 1e-5


@pytest.fixture(scope="module")
def base_dir(make_tiny_llama):
    return make_tiny_llama()[0]  # 4 query heads over 2 key/value heads


def _peft_model(base_dir, seed=1):
    hf = transformers.LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    pm = peft.get_peft_model(hf, peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=P)).eval()
    with torch.no_grad():
        pm.prompt_encoder["default"].embedding.weight.copy_(
            torch.randn(pm.prompt_encoder["default"].embedding.weight.shape, generator=torch.Generator().manual_seed(seed)))
    return pm


def _batch(padding_side):
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 128, (2, 9), generator=g)
    attn = torch.ones(2, 9, dtype=torch.long)
    if padding_side == "right":
        attn[1, 6:] = 0
    else:
        attn[1, :3] = 0
    return ids, attn


def _hidden(pm, ids, attn):
    """peft's last hidden state. Both place the report after the P virtual tokens; under left padding we also
    number the real tokens from there where transformers counts the pads, so peft gets our position_ids
    (peft adds P to them)."""
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    return pm(input_ids=ids, attention_mask=attn, position_ids=position_ids,
              output_hidden_states=True).hidden_states[-1]


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_hidden_states_and_gradient_match_peft(base_dir, padding_side):
    pm = _peft_model(base_dir)
    ours = _ours(base_dir)
    prefix = inject_prefix(ours, num_virtual_tokens=P)
    table = pm.prompt_encoder["default"].embedding.weight
    assert prefix.prompt_embeddings.shape == table.shape == (P, 2 * 2 * 2 * 16)  # P x (2 blocks x k,v x n_kv x hd)
    with torch.no_grad():
        prefix.prompt_embeddings.copy_(table)
    ids, attn = _batch(padding_side)
    ref, got = _hidden(pm, ids, attn), ours(ids, attention_mask=attn)
    valid = attn.bool()
    torch.testing.assert_close(got[valid], ref[valid], atol=ATOL, rtol=1e-4)
    without = _ours(base_dir)(ids, attention_mask=attn)
    assert (got[valid] - without[valid]).abs().max() > 100 * ATOL  # the prefix changes the output

    weight = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3))
    (ref[valid] * weight[valid]).sum().backward()
    (got[valid] * weight[valid]).sum().backward()
    torch.testing.assert_close(prefix.prompt_embeddings.grad, table.grad, atol=ATOL, rtol=1e-4)
    assert [n for n, p in ours.named_parameters() if p.requires_grad] == ["prefix.prompt_embeddings"]
    assert trainable_parameters(ours) == pm.get_nb_trainable_parameters()[0]


def test_no_padding_and_bidirectional_run_with_a_prefix(base_dir):
    """Without padding the model normally takes SDPA's causal kernel; with a prefix it must build the mask."""
    pm = _peft_model(base_dir, seed=4)
    ours = _ours(base_dir)
    with torch.no_grad():
        inject_prefix(ours, P).prompt_embeddings.copy_(pm.prompt_encoder["default"].embedding.weight)
    ids = _batch("right")[0]
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), _hidden(pm, ids, torch.ones_like(ids)), atol=ATOL, rtol=1e-4)
        bidi = ours(ids, attention="bidirectional")
    assert not torch.allclose(bidi[:, 0], ours(ids)[:, 0], atol=1e-3)  # token 0 now sees the whole report


def test_our_prefix_loads_in_peft_and_peft_prefix_loads_here(base_dir, tmp_path):
    ours = _ours(base_dir)
    inject_prefix(ours, P)
    save_prefix(ours, tmp_path / "ours", base_model_name_or_path=base_dir)
    hf = transformers.LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    pm = peft.PeftModel.from_pretrained(hf, tmp_path / "ours").eval()
    assert pm.peft_config["default"].peft_type == peft.PeftType.PREFIX_TUNING
    ids, attn = _batch("right")
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, attention_mask=attn)[attn.bool()],
                                   _hidden(pm, ids, attn)[attn.bool()], atol=ATOL, rtol=1e-4)

    _peft_model(base_dir, seed=5).save_pretrained(tmp_path / "peft")
    back = _ours(base_dir)
    assert isinstance(load_prefix(back, tmp_path / "peft"), PrefixTuning)
    pm = peft.PeftModel.from_pretrained(transformers.LlamaForCausalLM.from_pretrained(base_dir), tmp_path / "peft")
    with torch.no_grad():
        torch.testing.assert_close(back(ids, attention_mask=attn)[attn.bool()],
                                   _hidden(pm.eval(), ids, attn)[attn.bool()], atol=ATOL, rtol=1e-4)


def test_mismatched_prefix_file_is_a_clear_error(base_dir, tmp_path):
    ours = _ours(base_dir)
    inject_prefix(ours, P)
    save_prefix(ours, tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps({**config, "num_layers": 3}))
    with pytest.raises(ValueError, match="adapter_config.json: field 'num_layers' = 3, this model needs 2"):
        load_prefix(_ours(base_dir), tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({**config, "peft_type": "LORA"}))
    with pytest.raises(ValueError, match="field 'peft_type'"):
        load_prefix(_ours(base_dir), tmp_path)
