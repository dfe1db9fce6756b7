"""CPU speed paths for llama.py, the same math as its textbook code; llama.FAST switches them on.

oneDNN's GEMM for frozen fp32 linears, a written-out bf16 attention for short sequences, RoPE as a roll.
Each falls back to the plain torch call where it does not pay (measured in BENCHMARKS.md). A reader can skip this.
"""
import torch
import torch.nn.functional as F

ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def linear(x, weight):
    """llama.linear; a frozen fp32 weight on CPU outside autocast (a LoRA base layer, the tied LM head) goes through
    oneDNN's GEMM, faster there than the MKL sgemm behind F.linear."""
    if (weight.requires_grad or not ONEDNN or not torch.backends.mkldnn.enabled or x.device.type != "cpu"
            or x.dtype != torch.float32 or weight.dtype != torch.float32 or torch.is_autocast_enabled("cpu")):
        return F.linear(x, weight)
    return FrozenLinear.apply(x, weight) if x.requires_grad else onednn_linear(x, weight)


def onednn_linear(x, weight):  # x @ weight.T, no bias, no fused activation
    return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")


class FrozenLinear(torch.autograd.Function):
    """y = x W^T for a frozen W: the backward forms only dx = dy W, through oneDNN as well."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(weight)
        return onednn_linear(x, weight)

    @staticmethod
    def backward(ctx, dy):
        weight, = ctx.saved_tensors
        return onednn_linear(dy, weight.t()), None


def attention(q, k, v, attn_mask, is_causal, dropout_p):
    """llama.attention; in a bf16 training step on CPU with at most 512 x 512 scores per head, written out (SDPA's
    fused CPU kernel is slower there). Longer, or without a backward, the (T, S) scores cost more than they save."""
    T, S = q.shape[2], k.shape[2]
    if q.dtype == torch.bfloat16 and q.device.type == "cpu" and q.requires_grad and T * S <= 512 * 512 \
            and dropout_p == 0:
        return eager_attention(q, k, v, attn_mask, is_causal)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, dropout_p=dropout_p,
                                          enable_gqa=k.shape[1] != q.shape[1])


def eager_attention(q, k, v, attn_mask, is_causal):
    """softmax(q k^T / sqrt(hd) + mask) v as two GEMMs and a softmax (transformers' eager numerics), GQA by grouping
    the queries of one key/value head into one matrix instead of repeating k and v."""
    B, nh, T, hd = q.shape
    n_kv, S = k.shape[1], k.shape[2]
    g = nh // n_kv  # heads j g ... j g + g - 1 read kv head j
    s = (q.reshape(B, n_kv, g * T, hd) @ k.transpose(-1, -2) * hd ** -0.5).view(B, nh, T, S)  # (B, nh, T, S)
    # the mask is added as 0 / -inf, not applied with masked_fill: the same scores, and no masking pass backward
    if is_causal:
        s = s + torch.full((T, S), float("-inf"), dtype=s.dtype, device=s.device).triu_(1)
    elif attn_mask is not None:
        s = s + torch.zeros(attn_mask.shape, dtype=s.dtype, device=s.device).masked_fill_(~attn_mask, float("-inf"))
    p = torch.softmax(s, dim=-1)  # (B, nh, T, S)
    return (p.view(B, n_kv, g * T, S) @ v).view(B, nh, T, hd)


def rope_cos_sin(inv_freq, position_ids, dtype):
    """llama.rope_cos_sin with rotate_half's minus sign folded into the first half of the sin table."""
    freqs = position_ids[..., None].float() * inv_freq  # (B, T, hd/2)
    cos, sin = freqs.cos(), freqs.sin()
    return torch.cat([cos, cos], dim=-1).to(dtype), torch.cat([-sin, sin], dim=-1).to(dtype)  # (B, T, hd)


def apply_rope(x, cos, sin):
    """llama.apply_rope with the tables above: rotate_half(x) = (-x2, x1) is x rolled by hd/2, its minus in sin."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin
