"""
The training objectives of both papers, as plain functions of tensors.

- mntp_mask / mntp_loss: masked next-token prediction, LLM2Vec stage 1.
- simcse_loss: unsupervised SimCSE, LLM2Vec stage 2.
- supervised_contrastive_loss: radiology vs. matched pathology report, alignment stage 3.
- balanced_class_weights / multitask_cross_entropy: the MTL paper's joint loss, Eq. (6) and (7).

The LLM2Vec defaults quoted below are facts read from its public code and configs
(McGill-NLP/llm2vec: experiments/run_mntp.py, run_simcse.py, run_supervised.py,
train_configs/*/MetaLlama3.json, llm2vec/loss/HardNegativeNLLLoss.py).
"""

import torch
import torch.nn.functional as F

IGNORE = -100  # label of a position / sample that carries no loss (PyTorch's ignore_index)
MASK_TOKEN = "_"  # LLM2Vec's stand-in mask token for Llama-3 (mask_token_type "blank"); id 62 in Llama-3

# -----------------------------------------------------------------------------
# MNTP: masked next-token prediction (LLM2Vec stage 1)

def mntp_mask(input_ids, attention_mask, mask_token_id, special_ids, prob=0.2,
              vocab_size=None, generator=None):
    """Choose a fraction `prob` of the real, non-special tokens as MNTP targets and corrupt them BERT-style.

    LLM2Vec's Llama-3 config: mlm_probability 0.2 and mask_token_type "blank", i.e. the ordinary token "_"
    serves as mask token (Llama-3 has none). Of the chosen tokens 80% become the mask token, 10% a random
    token, 10% stay unchanged (transformers' DataCollatorForLanguageModeling, which LLM2Vec uses).
    Padding, special tokens and the first real token of each row (it has no real predecessor at i-1 to be
    predicted from) are never chosen. Returns (masked_input_ids, labels), labels = -100 where not chosen.
    """
    if vocab_size is None:
        raise ValueError("mntp_mask: vocab_size is required (the 10% random replacements are drawn from it)")
    B, T = input_ids.shape
    real = attention_mask.bool()
    first_real = real & (attention_mask.long().cumsum(-1) == 1)  # (B, T)
    special = torch.isin(input_ids, torch.as_tensor(list(special_ids), dtype=input_ids.dtype,
                                                    device=input_ids.device))
    candidate = real & ~special & ~first_real

    def coin(p):  # (B, T) Bernoulli(p) draws
        return torch.rand(B, T, generator=generator, device=input_ids.device) < p

    chosen = candidate & coin(prob)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))

    to_mask = chosen & coin(0.8)                   # 80% -> mask token
    to_random = chosen & ~to_mask & coin(0.5)      # half of the remaining 20% -> random token
    random_ids = torch.randint(vocab_size, (B, T), generator=generator, device=input_ids.device)
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    masked[to_random] = random_ids[to_random]
    return masked, labels                          # the rest (10%) stays unchanged


def mntp_loss(logits, labels):
    """Cross-entropy over the masked tokens only, each token i predicted from the output at position i-1.

    logits (B, T, V) from the bidirectional model, labels (B, T) from mntp_mask. Only the selected rows of the
    logits are up-cast to float32, so the full (B, T, V) tensor is never copied.
    """
    targets = labels[:, 1:]                        # token i ...
    selected = targets != IGNORE
    if not selected.any():
        return logits.sum() * 0.0                  # nothing masked: zero loss (not NaN), graph kept
    preds = logits[:, :-1][selected]               # ... from position i-1: (N, V)
    return F.cross_entropy(preds.float(), targets[selected])

# -----------------------------------------------------------------------------
# contrastive losses (LLM2Vec stages 2 and 3)

def _cosine_logits(q, d, temperature):
    """(Nq, Nd) cosine similarities divided by the temperature."""
    q = F.normalize(q.float(), dim=-1)
    d = F.normalize(d.float(), dim=-1)
    return q @ d.T / temperature


def simcse_loss(z1, z2, temperature=0.05):
    """Unsupervised SimCSE: z1, z2 (B, D) are the same batch encoded twice with dropout active.

    Row i of z1 must pick its own second view z2[i] among all B (in-batch negatives). One direction only, as in
    LLM2Vec's HardNegativeNLLLoss; its Llama-3 SimCSE config uses loss_scale 20 = 1 / temperature 0.05, with
    attention dropout 0.3 and LoRA dropout 0.05.
    """
    logits = _cosine_logits(z1, z2, temperature)   # (B, B)
    return F.cross_entropy(logits, torch.arange(len(z1), device=logits.device))


def supervised_contrastive_loss(z_rad, z_path, temperature=0.02, symmetric=True, z_neg=None):
    """Supervised contrastive alignment: radiology report i vs. its matched pathology report i.

    z_rad, z_path (B, D); the other B-1 pathology reports are in-batch negatives, z_neg (N, D) optional extra
    hard negatives appended as columns (as LLM2Vec's supervised stage does). LLM2Vec's supervised default is
    loss_scale 50 = 1 / temperature 0.02, one direction; symmetric=True (our default, as the alignment recipe
    pairs two report kinds) adds the pathology -> radiology direction over the in-batch square and averages.
    """
    docs = z_path if z_neg is None else torch.cat([z_path, z_neg])
    logits = _cosine_logits(z_rad, docs, temperature)   # (B, B + N)
    target = torch.arange(len(z_rad), device=logits.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        B = len(z_rad)
        loss = 0.5 * (loss + F.cross_entropy(logits[:, :B].T, target))
    return loss

# -----------------------------------------------------------------------------
# multi-task cross-entropy (MTL paper, Eq. 6-7)

def balanced_class_weights(label_ids, num_classes):
    """w_c = S_valid / (C * s_c), Eq. (7): balanced inverse frequency over the training split.

    label_ids: class ids, None or -100 for "not stated" (they do not count in S_valid).
    A class absent from the split (s_c = 0) gets weight 1.0, the neutral weight of an unweighted task:
    it trains nothing (no sample has it) but keeps a finite, visible loss if it appears in validation.
    """
    valid = [y for y in label_ids if y is not None and y != IGNORE]
    for y in valid:
        if not 0 <= y < num_classes:
            raise ValueError(f"balanced_class_weights: label id {y} outside 0..{num_classes - 1}")
    counts = torch.bincount(torch.tensor(valid, dtype=torch.long), minlength=num_classes).float()
    S_valid, C = float(len(valid)), num_classes
    weights = torch.ones(C)
    present = counts > 0
    weights[present] = S_valid / (C * counts[present])
    return weights


def multitask_cross_entropy(logits, labels, weights=None):
    """Joint loss, Eq. (6): sum over tasks t of the (class-weighted) mean cross-entropy of task t.

    logits {t: (B, C_t)}, labels {t: (B,) long, -100 = not stated}, weights {t: (C_t,)} for the tasks that
    have them (the paper weights HER2 only). Within a task the mean is weighted like F.cross_entropy(weight=):
    sum_i w_{y_i} nll_i / sum_i w_{y_i}. A task with no valid label in the batch contributes 0, never NaN.
    """
    weights = weights or {}
    total = 0.0
    for task, task_logits in logits.items():
        y = labels[task].to(task_logits.device)
        valid = y != IGNORE
        nll = F.cross_entropy(task_logits.float(), y, ignore_index=IGNORE, reduction="none")  # (B,), 0 if missing
        w = weights.get(task)
        w_y = torch.ones_like(nll) if w is None else w.to(nll.device, torch.float32)[y.clamp(min=0)]
        w_y = w_y * valid
        total = total + (w_y * nll).sum() / w_y.sum().clamp(min=1e-12)
    return total
