"""NF4: 4-bit NormalFloat weights (QLoRA, Dettmers et al. 2023), written by hand, bit for bit as bitsandbytes.

A weight is cut into blocks of 64 values; each block stores its absmax in fp32 and every value as the 4-bit
index of the nearest of 16 code values. The codes are quantiles of N(0, 1) scaled to [-1, 1], so equal
probability mass falls in every bin. Equal to bitsandbytes.functional.quantize_4bit(quant_type="nf4") on the
same input; llama.load_model quantizes the block linears with it while loading.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# QLoRA eq. 4: q_i = 1/2 (Q_X(i / (2^k + 1)) + Q_X((i + 1) / (2^k + 1))), Q_X the N(0, 1) quantile function.
# bitsandbytes (and so we) use its asymmetric form with an exact zero, create_normal_map(offset=0.9677083):
# 8 positive and 7 negative quantiles of N(0, 1) plus 0, divided by the largest; the fp32 values are written
# out here so that no scipy is needed.
NF4_CODE = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
], dtype=torch.float32)
# a scaled value x gets code i = #{midpoints < x}: a tie on a midpoint goes to the lower code
NF4_MIDPOINTS = (NF4_CODE[:-1] + NF4_CODE[1:]) / 2
# byte b -> (code[b >> 4], code[b & 15]), the first value in the high nibble; the fp32 pair is
# viewed as one int64 so that a single gather unpacks both values of a byte
NF4_PAIRS = torch.stack([NF4_CODE.repeat_interleave(16), NF4_CODE.repeat(16)], dim=1).view(torch.int64).view(-1)
NF4_ZERO = 7  # index of 0.0, the filler nibble of an odd-sized tensor

# Fast exact search: torch.bucketize is slow on CPU, so [-1, 1] is cut into 256 bins, each
# far narrower than the gap between midpoints. From a value's bin g we know its code is
# NF4_LO[g] or the next one, and one comparison with NF4_THR[g] decides (the bin may be
# off by one from rounding, so NF4_LO counts the midpoints below the bin before it).
GRID = 256
NF4_LO = torch.bucketize((-1 + 2 * torch.arange(-1, GRID + 1, dtype=torch.float64) / GRID).float(),
                         NF4_MIDPOINTS).to(torch.uint8)  # [g] = #{midpoints < left edge of bin g - 1}
NF4_THR = torch.cat([NF4_MIDPOINTS, torch.tensor([math.inf])])[NF4_LO.long()]

CHUNK = 1 << 18  # elements quantized at a time: fp32 temporaries of 1 MB stay in cache


def _pack(q):
    """Two 4-bit codes per byte, the first in the high nibble (bnb's order)."""
    return (q[0::2] << 4) | q[1::2]


def quantize_nf4(w, blocksize=64):
    """Quantize any float tensor to NF4: (packed uint8 (ceil(numel/2),), absmax fp32 (ceil(numel/blocksize),))."""
    flat = w.detach().reshape(-1)
    n = flat.numel()
    full = n - n % blocksize  # elements in complete blocks
    dev = w.device
    packed = torch.empty((n + 1) // 2, dtype=torch.uint8, device=dev)
    absmax = torch.empty(-(-n // blocksize), dtype=torch.float32, device=dev)
    lo, thr, half = NF4_LO.to(dev), NF4_THR.to(dev), torch.tensor(GRID / 2, device=dev)
    step = CHUNK // blocksize * blocksize
    threads = torch.get_num_threads()
    # a dozen cheap passes over cache-sized chunks: intra-op threads cost more in synchronisation than
    # they save (5-10x slower with 2 threads on a shared 2-core machine), so the loop runs on one
    torch.set_num_threads(1)
    try:
        for s in range(0, full, step):
            e = min(s + step, full)
            blocks = flat[s:e].float().view(-1, blocksize)  # (nb, 64)
            amax = blocks.abs().amax(dim=1)
            # x / absmax as bnb computes it: times the reciprocal; 1e-38 keeps all-zero blocks finite
            inv = 1.0 / amax.clamp(min=1e-38)
            scaled = (blocks * inv.unsqueeze(1)).view(-1)  # no clamp to [-1, 1]: it moves nothing across a midpoint
            g = torch.addcmul(half, scaled, half).to(torch.int32).clamp_(0, GRID)  # bin of x (clamp: inf, nan)
            q = lo.index_select(0, g) + (scaled > thr.index_select(0, g))  # code = #{midpoints < x}
            packed[s // 2:e // 2] = _pack(q)
            absmax[s // blocksize:e // blocksize] = amax
    finally:
        torch.set_num_threads(threads)
    if full < n:  # last, partial block: bnb divides by its clamped absmax and stores the clamped value
        tail = flat[full:].float()
        amax = tail.abs().max().clamp(min=1e-38)
        q = torch.bucketize(tail / amax, NF4_MIDPOINTS.to(dev), out_int32=True).to(torch.uint8)
        if q.numel() % 2:
            q = torch.cat([q, q.new_full((1,), NF4_ZERO)])
        packed[full // 2:] = _pack(q)
        absmax[-1] = amax
    return packed, absmax


def dequantize_nf4(packed, absmax, shape, blocksize=64, dtype=torch.float32):
    """Inverse of quantize_nf4: code[index] * absmax of its block, in fp32, then cast to dtype (as bnb)."""
    n = math.prod(shape)
    full = n - n % blocksize
    vals = NF4_PAIRS.to(packed.device).index_select(0, packed.int()).view(torch.float32)[:n]  # (n,) codes
    vals[:full].view(-1, blocksize).mul_(absmax[:full // blocksize].unsqueeze(1))
    if full < n:
        vals[full:].mul_(absmax[-1])
    return vals.view(shape).to(dtype)


# -----------------------------------------------------------------------------
# Double quantization (QLoRA section 3): the fp32 absmax values are themselves
# quantized to 8 bits in blocks of 256 after subtracting their mean, which cuts
# their cost from 32/64 = 0.5 to 8/64 + 32/(64 * 256) = 0.127 bits per weight.

def dynamic_code():
    """bnb's signed 8-bit dynamic map (create_dynamic_map): a sign, 0-7 zero bits as exponent, the rest as fraction."""
    values = [0.0, 1.0]
    for e in range(7):  # magnitude 10^(e-6) * linearly spaced fractions, 2^e of them
        edges = torch.linspace(0.1, 1, 2 ** e + 1, dtype=torch.float32)
        means = (edges[:-1] + edges[1:]) / 2.0
        values += (10 ** (e - 6) * means).tolist() + (-(10 ** (e - 6)) * means).tolist()  # fp32 products, as bnb
    return torch.tensor(sorted(values), dtype=torch.float32)  # (256,)


DYNAMIC_CODE = dynamic_code()


def _dynamic_lut():
    """bnb's CPU 8-bit quantizer maps [-1, 1] onto 65536 bins and each bin to the code nearest its left edge
    (so not always the code nearest the value itself); to be bit-exact we do the same."""
    grid = -1.0 + (2.0 * torch.arange(65536, dtype=torch.float32)) / 65535
    mids = 0.5 * (DYNAMIC_CODE[:-1] + DYNAMIC_CODE[1:])
    return torch.bucketize(grid, mids).to(torch.uint8)  # (65536,)


DYNAMIC_LUT = _dynamic_lut()


def quantize_blockwise_8bit(x, blocksize=256):
    """8-bit blockwise quantization with the dynamic map, as bnb's CPU quantize_blockwise.

    Returns (codes uint8 (n,), absmax fp32 (ceil(n/blocksize),))."""
    x = x.detach().float().reshape(-1)
    n = x.numel()
    pad = -n % blocksize
    blocks = F.pad(x, (0, pad)).view(-1, blocksize)  # zero padding changes no block max
    amax = blocks.abs().amax(dim=1)
    scaled = (blocks * (1.0 / amax.clamp(min=1e-38)).unsqueeze(1)).clamp(-1, 1)
    idx = ((scaled + 1.0) * 0.5 * 65535 + 0.5).long()  # bin of the 65536-bin grid, as bnb's C (truncation)
    q = DYNAMIC_LUT.to(x.device)[idx]
    q[amax == 0] = 0  # bnb writes code 0 for an all-zero block
    return q.view(-1)[:n], amax


def double_quantize(absmax):
    """QLoRA double quantization of the NF4 absmax (bnb's compress_statistics).

    Returns (codes uint8 (nb,), absmax2 fp32 (ceil(nb/256),), offset fp32 ())."""
    offset = absmax.mean()
    q, absmax2 = quantize_blockwise_8bit(absmax - offset, blocksize=256)
    return q, absmax2, offset


def double_dequantize(q, absmax2, offset, blocksize=256):
    """Recover the fp32 absmax: dynamic_code[q] * absmax2 of the block + offset."""
    n = q.numel()
    vals = DYNAMIC_CODE.to(q.device)[q.long()]
    vals = F.pad(vals, (0, -n % blocksize)).view(-1, blocksize) * absmax2.unsqueeze(1)
    return vals.view(-1)[:n] + offset


# -----------------------------------------------------------------------------
# The layer: a frozen NF4 weight, dequantized to the compute dtype on every call.

class NF4Linear(nn.Module):
    """A bias-free linear layer whose weight is stored in NF4 (optionally double-quantized); not trainable."""

    def __init__(self, in_features, out_features, double_quant=False, compute_dtype=torch.bfloat16, blocksize=64):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.double_quant, self.compute_dtype, self.blocksize = double_quant, compute_dtype, blocksize
        self.bias = None  # Llama's projections have none
        n = in_features * out_features
        nb = -(-n // blocksize)
        self.register_buffer("weight", torch.zeros((n + 1) // 2, dtype=torch.uint8))  # two codes per byte
        if double_quant:
            self.register_buffer("absmax", torch.zeros(nb, dtype=torch.uint8))
            self.register_buffer("absmax2", torch.zeros(-(-nb // 256), dtype=torch.float32))
            self.register_buffer("offset", torch.zeros((), dtype=torch.float32))
        else:
            self.register_buffer("absmax", torch.zeros(nb, dtype=torch.float32))

    @classmethod
    def from_weight(cls, weight, double_quant=False, compute_dtype=torch.bfloat16):
        """Quantize a (out, in) weight into a new NF4Linear on the weight's device."""
        out_features, in_features = weight.shape
        layer = cls(in_features, out_features, double_quant, compute_dtype).to(weight.device)
        packed, absmax = quantize_nf4(weight)
        layer.weight.copy_(packed)
        if double_quant:
            q, absmax2, offset = double_quantize(absmax)
            layer.absmax.copy_(q)
            layer.absmax2.copy_(absmax2)
            layer.offset.copy_(offset)
        else:
            layer.absmax.copy_(absmax)
        return layer

    def block_absmax(self):
        """The fp32 absmax of every block of 64 (undoing double quantization if used)."""
        if self.double_quant:
            return double_dequantize(self.absmax, self.absmax2, self.offset)
        return self.absmax

    def dequantize(self):
        """The (out, in) weight in the compute dtype."""
        shape = (self.out_features, self.in_features)
        return dequantize_nf4(self.weight, self.block_absmax(), shape, self.blocksize, self.compute_dtype)

    def forward(self, x):
        if x.is_cuda and _have_bnb():  # fast path: the same numbers from bitsandbytes' fused CUDA kernels
            return _bnb_matmul_nf4(x, self)
        return F.linear(x, self.dequantize().to(x.dtype))

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, nf4, "
                f"double_quant={self.double_quant}")


def _have_bnb():
    """bitsandbytes is optional: only the CUDA fast path uses it."""
    try:
        import bitsandbytes  # noqa: F401
        return True
    except ImportError:
        return False


def _bnb_matmul_nf4(x, layer):
    """y = x W^T with bitsandbytes' 4-bit kernels; the QuantState is built from our buffers."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import QuantState
    state2 = None
    if layer.double_quant:
        state2 = QuantState(layer.absmax2, code=DYNAMIC_CODE.to(x.device), blocksize=256, dtype=torch.float32)
    qs = QuantState(layer.absmax, shape=torch.Size((layer.out_features, layer.in_features)),
                    code=NF4_CODE.to(x.device), blocksize=layer.blocksize, quant_type="nf4",
                    dtype=layer.compute_dtype, offset=layer.offset if layer.double_quant else None, state2=state2)
    return bnb.matmul_4bit(x, layer.weight.view(-1, 1).t(), qs).to(x.dtype)
