"""
From hidden states to predictions: pooling and the parallel task heads.

- last_token_pool: the MTL paper's "terminal hidden state" z^(p) of the causal model.
- mean_pool: LLM2Vec's masked mean, optionally without the instruction tokens.
- span_pool: the mean over one token span per task, so each head reads its own part of one forward pass.
- attention_pool: a learned softmax-weighted mean over the same span, one query per task.
- length_batches: a corpus in batches of similar length, for pooled features and embeddings.
- MultiTaskHeads: one linear head per task, y_t = Softmax(W_t z + b_t) (MTL paper Eq. 5),
  all fed by the same pooled vector of one forward pass.
All pooling is correct for left and right padding (attention_mask: 1 = token, 0 = pad).
"""

import sys

import torch
import torch.nn as nn
from tqdm import tqdm

from data import NOT_STATED

# -----------------------------------------------------------------------------
# pooling

def last_token_pool(hidden, attention_mask):
    """The hidden state of the last real token of each row: (B, T, D) -> (B, D)."""
    T = attention_mask.shape[1]
    positions = torch.arange(T, device=hidden.device) * attention_mask.to(hidden.device).long()  # (B, T)
    last = positions.argmax(-1)                                                                # (B,)
    return hidden[torch.arange(len(hidden), device=hidden.device), last]


def instruction_free_mask(attention_mask, n_instruction):
    """Pooling mask that drops the first n_instruction[b] real tokens of row b (LLM2Vec's embed_mask).

    The instruction tokens still attend and are attended to; they are only left out of the mean.
    n_instruction: int or (B,) long. Works for left and right padding (counts real tokens, not positions).
    """
    rank = attention_mask.long().cumsum(-1)                    # 1-based index among real tokens, (B, T)
    n = torch.as_tensor(n_instruction, device=attention_mask.device).reshape(-1, 1)
    return (attention_mask.bool() & (rank > n)).long()


def mean_pool(hidden, attention_mask, pool_mask=None):
    """Masked mean over the real tokens (or over pool_mask's tokens if given): (B, T, D) -> (B, D).

    Summed in float32, returned in hidden's dtype; a row with nothing to pool gives zeros, not NaN.
    """
    m = attention_mask if pool_mask is None else pool_mask * attention_mask
    m = m.to(hidden.device, torch.float32).unsqueeze(-1)       # (B, T, 1)
    summed = (hidden.float() * m).sum(1)                       # (B, D)
    return (summed / m.sum(1).clamp(min=1.0)).to(hidden.dtype)


def in_span(hidden, spans):
    """(B, K, T) bool: which positions of hidden (B, T, D) lie in each row's span [start, end) per task (B, K, 2)."""
    pos = torch.arange(hidden.shape[1], device=hidden.device)
    spans = spans.to(hidden.device)
    return (pos >= spans[..., :1]) & (pos < spans[..., 1:])


def span_pool(hidden, spans):
    """Mean of each row's token span per task: hidden (B, T, D), spans (B, K, 2) [start, end) -> (B, K, D).

    Positions are those of the unpadded sequence (right padding). A span (n-1, n) is last-token pooling,
    (0, n) is mean pooling, a task's own Hints line is field pooling (train_mtl.py).
    """
    m = in_span(hidden, spans).float()                                 # (B, K, T)
    summed = torch.einsum("bkt,btd->bkd", m, hidden.float())           # (B, K, D)
    return (summed / m.sum(-1, keepdim=True).clamp(min=1.0)).to(hidden.dtype)


def attention_pool(hidden, spans, query):
    """A learned softmax-weighted mean over each row's span per task: hidden (B, T, D), spans (B, K, 2), query
    (K, D) -> (B, K, D). Weights a = softmax_t(h_t . q_k / sqrt(D)) over the span, so a head can read the value
    in its line and pass over the rest; a zero query weighs the span evenly, which is span_pool."""
    inside = in_span(hidden, spans)                                                    # (B, K, T)
    scores = torch.einsum("btd,kd->bkt", hidden.float(), query.float()) / hidden.shape[-1] ** 0.5
    a = scores.masked_fill(~inside, float("-inf")).softmax(-1).nan_to_num(0.0)        # (B, K, T), empty span: 0
    return torch.einsum("bkt,btd->bkd", a, hidden.float()).to(hidden.dtype)


def length_batches(lengths, batch, desc=None):
    """Index lists of up to `batch` inputs of similar length (little padding), shortest first; a bar if desc."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches = [order[k:k + batch] for k in range(0, len(order), batch)]
    return tqdm(batches, desc=desc, disable=desc is None, unit="batch", leave=False, file=sys.stderr)

# -----------------------------------------------------------------------------
# parallel task heads

class MultiTaskHeads(nn.Module):
    """One nn.Linear(dim, C_t) per task t over the shared pooled vector (MTL paper Fig. 1c, Eq. 5)."""

    def __init__(self, dim, label_sets):
        super().__init__()
        self.label_sets = {task: list(labels) for task, labels in label_sets.items()}
        self.heads = nn.ModuleDict({task: nn.Linear(dim, len(labels))
                                    for task, labels in self.label_sets.items()})

    def forward(self, pooled):
        """pooled (B, dim), shared by all heads, or (B, K, dim), one vector per task -> {task: logits (B, C_t)}."""
        if pooled.dim() == 2:
            pooled = pooled[:, None].expand(-1, len(self.heads), -1)   # (B, K, dim)
        return {task: head(pooled[:, k].to(head.weight.dtype)) for k, (task, head) in enumerate(self.heads.items())}

    @torch.no_grad()
    def predict(self, logits):
        """{task: (B, C_t)} -> one record per row: [{task: {"label": str, "probs": {label: p}}}]; the label is
        None (JSON null) where the head's answer is NOT_STATED, and "probs" then says how sure it is."""
        B = len(next(iter(logits.values())))
        records = [{} for _ in range(B)]
        for task, task_logits in logits.items():
            labels = self.label_sets[task]
            probs = task_logits.float().softmax(-1).cpu()      # (B, C_t)
            for b in range(B):
                p = probs[b].tolist()
                label = labels[int(probs[b].argmax())]
                records[b][task] = {"label": None if label == NOT_STATED else label, "probs": dict(zip(labels, p))}
        return records
