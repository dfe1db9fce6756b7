"""heads.py: pooling of a padded batch (left and right) equals pooling each sequence alone through the real
model, instruction tokens attend but are left out of the mean, and the heads' outputs and prediction records."""
import json

import pytest
import torch
import torch.nn.functional as F

import llama
from heads import MultiTaskHeads, attention_pool, instruction_free_mask, last_token_pool, mean_pool, span_pool

TINY = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
            rope_scaling=None, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=None)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = llama.Llama(llama.LlamaConfig.from_dict(TINY)).eval()
    with torch.no_grad():  # give the norms non-trivial weights too
        for p in m.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    return m


SEQS = [[1, 5, 9, 14, 33, 2], [1, 71, 8], [1, 40, 41, 42, 43, 44, 45, 46]]


def _batch(seqs, side, pad_id=0):
    T = max(map(len, seqs))
    ids = torch.full((len(seqs), T), pad_id)
    attn = torch.zeros(len(seqs), T, dtype=torch.long)
    for b, s in enumerate(seqs):
        sl = slice(0, len(s)) if side == "right" else slice(T - len(s), T)
        ids[b, sl], attn[b, sl] = torch.tensor(s), 1
    return ids, attn


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("mask", ["causal", "bidirectional"])
def test_pooling_padded_equals_alone(model, side, mask):
    ids, attn = _batch(SEQS, side)
    with torch.no_grad():
        h = model(ids, attention_mask=attn, attention=mask)
        last, mean = last_token_pool(h, attn), mean_pool(h, attn)
        for b, s in enumerate(SEQS):
            alone = model(torch.tensor([s]), attention=mask)  # (1, T_b, D), no padding at all
            torch.testing.assert_close(last[b], alone[0, -1], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(mean[b], alone[0].mean(0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("side", ["left", "right"])
def test_mean_pool_without_instruction_tokens(model, side):
    n_instr = torch.tensor([2, 1, 4])  # the first n real tokens of each row are the instruction
    ids, attn = _batch(SEQS, side)
    with torch.no_grad():
        h = model(ids, attention_mask=attn, attention="bidirectional")
        pooled = mean_pool(h, attn, pool_mask=instruction_free_mask(attn, n_instr))
        for b, s in enumerate(SEQS):
            alone = model(torch.tensor([s]), attention="bidirectional")[0]  # instruction still attended to
            torch.testing.assert_close(pooled[b], alone[n_instr[b]:].mean(0), atol=1e-5, rtol=1e-5)
            assert not torch.allclose(pooled[b], alone.mean(0), atol=1e-4)


def test_pooling_pure_tensors_and_empty_row():
    h = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    attn = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]])
    torch.testing.assert_close(last_token_pool(h, attn)[0], h[0, 2])
    torch.testing.assert_close(mean_pool(h, attn)[0], h[0, 1:3].mean(0))
    assert torch.equal(mean_pool(h, attn)[1], torch.zeros(3))  # nothing to pool: zeros, not NaN


def test_span_pool_reads_each_tasks_own_tokens(model):
    """Right-padded batch: span (n-1, n) is the last token, (0, n) the mean, any (s, e) the mean of alone[s:e]."""
    ids, attn = _batch(SEQS, "right")
    spans = torch.tensor([[[5, 6], [0, 6], [2, 5]], [[2, 3], [0, 3], [1, 2]], [[7, 8], [0, 8], [3, 8]]])
    with torch.no_grad():
        h = model(ids, attention_mask=attn)
        z = span_pool(h, spans)                                             # (B, K, D)
        assert z.shape == (3, 3, 32)
        torch.testing.assert_close(z[:, 0], last_token_pool(h, attn))
        torch.testing.assert_close(z[:, 1], mean_pool(h, attn), atol=1e-6, rtol=1e-6)
        for b, s in enumerate(SEQS):
            alone = model(torch.tensor([s]))[0]
            lo, hi = spans[b, 2].tolist()
            torch.testing.assert_close(z[b, 2], alone[lo:hi].mean(0), atol=1e-5, rtol=1e-5)
    heads = MultiTaskHeads(32, {"a": ["x", "y"], "b": ["x", "y", "z"], "c": ["x", "y"]})
    per_task = heads(z)                                                     # task k reads z[:, k]
    for k, (task, head) in enumerate(heads.heads.items()):
        torch.testing.assert_close(per_task[task], head(z[:, k]))


def test_attention_pool_weighs_only_its_span():
    """A zero query is span_pool; otherwise each task's weights are softmax(h . q / sqrt(D)) over its own span
    (computed here token by token), nothing outside the span counts, and an empty span gives zeros."""
    torch.manual_seed(0)
    h = torch.randn(2, 6, 8)
    spans = torch.tensor([[[1, 4], [0, 6], [5, 6]], [[2, 3], [0, 2], [3, 3]]])
    torch.testing.assert_close(attention_pool(h, spans, torch.zeros(3, 8)), span_pool(h, spans))
    q = torch.randn(3, 8) * 3
    z = attention_pool(h, spans, q)
    for b in range(2):
        for k in range(3):
            lo, hi = spans[b, k].tolist()
            if lo == hi:
                assert torch.equal(z[b, k], torch.zeros(8))
                continue
            w = torch.tensor([float(h[b, t] @ q[k]) / 8 ** 0.5 for t in range(lo, hi)]).softmax(0)
            torch.testing.assert_close(z[b, k], (w[:, None] * h[b, lo:hi]).sum(0), atol=1e-5, rtol=1e-5)
    q.requires_grad_(True)
    attention_pool(h, spans, q).sum().backward()
    assert q.grad.abs().sum() > 0 and torch.isfinite(q.grad).all()


def test_multitask_heads_forward_and_predict():
    torch.manual_seed(0)
    label_sets = {"T": ["Tis", "T0", "T1", "T2", "T3", "T4"], "M": ["M0", "M1"], "HER2": ["Positive", "Negative",
                                                                                       "Equivocal"]}
    heads = MultiTaskHeads(16, label_sets)
    pooled = torch.randn(5, 16)
    logits = heads(pooled)
    assert {t: tuple(v.shape) for t, v in logits.items()} == {"T": (5, 6), "M": (5, 2), "HER2": (5, 3)}
    for t, head in heads.heads.items():
        torch.testing.assert_close(logits[t], F.linear(pooled, head.weight, head.bias))
    records = heads.predict(logits)
    assert len(records) == 5
    for b, rec in enumerate(records):
        assert set(rec) == set(label_sets)
        for t, out in rec.items():
            probs = torch.softmax(logits[t][b], -1)
            assert out["label"] == label_sets[t][int(probs.argmax())]
            assert list(out["probs"]) == label_sets[t]
            assert sum(out["probs"].values()) == pytest.approx(1.0, abs=1e-6)
            assert out["probs"][out["label"]] == pytest.approx(probs.max().item(), abs=1e-6)


def test_not_stated_class_predicts_null_with_its_probability():
    """The head's extra class means 'the report does not state it': label None, probability kept under its name."""
    label_sets = {"M": ["M0", "M1", "not stated"]}
    heads = MultiTaskHeads(4, label_sets)
    logits = {"M": torch.tensor([[0.0, 0.0, 3.0], [2.0, 0.0, 1.0]])}
    first, second = heads.predict(logits)
    assert first["M"]["label"] is None and second["M"]["label"] == "M0"
    assert first["M"]["probs"]["not stated"] == pytest.approx(torch.softmax(logits["M"][0], -1)[2].item())
    assert json.loads(json.dumps(first))["M"]["label"] is None
