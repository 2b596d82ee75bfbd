"""What conv2d and dense share: their integer parameters, a vectorizable requant epilogue, and the fast path
(block-wise im2col + exact float GEMM + integer epilogue, one block per Numba thread)."""

import numpy as np
from numba import njit, prange

from intonly.quantize.ops._weighted import is_16x8

from ..numerics import REQUANT_16X8, requant, saturate

GEMM_BLOCK_ROWS = 256  # output pixels per task: small blocks stay in cache and balance the threads (measured)


def weighted_params(model, node):
    """``(weight, bias, multiplier, shift, max|x - input_zp|)`` of a conv2d/dense node, integers widened to int64."""
    lo, hi = model.tensors[node.inputs[0]].qrange()
    zp = node.attrs["input_zp"]
    return (model.param(node, "weight"), *(model.param(node, r).astype(np.int64) for r in ("bias", "multiplier",
                                                                                           "shift")),
            max(abs(lo - zp), abs(hi - zp)))


def node_mode(model, node, mode: int) -> int:
    """The requant mode of a conv2d/dense node: TFLite's 16x8 requant for an int64 bias, else the run's ``mode``."""
    return REQUANT_16X8 if is_16x8(model, node) else mode


def exact_gemm_dtype(weight_2d: np.ndarray, max_abs_x: int):
    """float32 if every partial sum of the GEMM is provably below 2**24 in magnitude, else float64.

    Each product w*x is an integer of at most 15+1 bits; a partial sum over any subset of k is
    bounded by ``sum_k |w[n, k]| * max|x|``, so if that bound is < 2**24 (resp. 2**53) every
    float32 (float64) addition and FMA is exact whatever order BLAS sums in.
    """
    bound = int(np.abs(weight_2d.astype(np.int64)).sum(axis=1).max(initial=0)) * int(max_abs_x)
    if bound < 2**24:
        return np.float32
    if bound < 2**53:
        return np.float64
    raise OverflowError("GEMM bound exceeds 2**53")


def epilogue_constants(bias, mult, shift, out_zp):
    """Per-channel constants that let :func:`requant_block` do ``half_up`` with one multiply-add and a logical shift.

    ``rnd = 2**62 + 2**(c-1) + bias*b`` and ``off = 2**(62-c) - out_zp`` (uint64 / int64). For |acc + bias| < 2**31
    (the validator's accumulator bound) and b < 2**31, ``acc*b + rnd`` lies in ``[0, 2**64)``, so its uint64 value
    (wrap-around is defined for unsigned) is exact, and since 2**c divides 2**62,
    ``(acc*b + rnd) >> c == floor(((acc + bias)*b + 2**(c-1)) / 2**c) + 2**(62-c)``.
    """
    bias, mult, shift = (np.asarray(a, np.int64) for a in (bias, mult, shift))
    rnd = ((np.int64(1) << 62) + (np.int64(1) << (shift - 1)) + bias * mult).astype(np.uint64)
    off = (np.int64(1) << (62 - shift)) - np.int64(out_zp)
    return rnd, shift.astype(np.uint64), off


@njit(inline="always", cache=True)
def requant_block(acc, bias, mult, shift, out_zp, lo, hi, mode, rnd, shr, off, out2, r0, o0):
    """``out2[r0 + i, o0 + j] = clamp(R(acc[i, j] + bias[j]) + out_zp, lo, hi)`` for a block of accumulators
    (integers, possibly held in floats); ``half_up`` by the folded constants of :func:`epilogue_constants`.
    The mode test sits outside the loops so that each loop vectorizes. Returns the clamp events."""
    rows, cols = acc.shape
    events = 0
    if mode == 0:
        for i in range(rows):
            for j in range(cols):
                y, event = saturate(np.int64((np.uint64(np.int64(acc[i, j]) * mult[j]) + rnd[j]) >> shr[j]) - off[j],
                                    lo, hi)
                events += event
                out2[r0 + i, o0 + j] = y
    else:
        for i in range(rows):
            for j in range(cols):
                y, event = saturate(requant(np.int64(acc[i, j]) + bias[j], mult[j], shift[j], mode) + out_zp, lo, hi)
                events += event
                out2[r0 + i, o0 + j] = y
    return events


@njit(parallel=True, cache=True)
def conv_gemm_blocks(x, wT, kh, kw, sh, sw, pt, pl, dh, dw, c0, in_zp, bias, mult, shift, out_zp, lo, hi, mode,
                     rnd, shr, off, out2, o0, oh, ow, block):
    """One group of a convolution (dense = 1x1 conv on a 1x1 image) as an exact float GEMM, block by block.

    For each block of output pixels (one Numba task each): im2col into ``cols[r, (ky*kw + kx)*ICg + i] =
    x[n, iy, ix, c0 + i] - in_zp`` (0 where padded) in ``wT``'s float type, ``acc = cols @ wT`` (BLAS, exact by
    :func:`exact_gemm_dtype`), then ``out2[r, o0 + j] = clamp(R(acc + bias[j]) + out_zp, lo, hi)``.
    Returns the number of clamp events.
    """
    n_batch, height, width, _ = x.shape
    k_total, n_out = wT.shape
    icg = k_total // (kh * kw)
    rows = n_batch * oh * ow
    n_blocks = (rows + block - 1) // block
    counts = np.zeros(n_blocks, dtype=np.int64)
    for b in prange(n_blocks):
        r0 = b * block
        r1 = min(rows, r0 + block)
        cols = np.zeros((r1 - r0, k_total), dtype=wT.dtype)
        for r in range(r0, r1):
            n = r // (oh * ow)
            oy = (r // ow) % oh
            ox = r % ow
            for ky in range(kh):
                iy = oy * sh - pt + ky * dh
                if iy < 0 or iy >= height:
                    continue
                for kx in range(kw):
                    ix = ox * sw - pl + kx * dw
                    if ix < 0 or ix >= width:
                        continue
                    k0 = (ky * kw + kx) * icg
                    for i in range(icg):
                        cols[r - r0, k0 + i] = np.int32(x[n, iy, ix, c0 + i]) - in_zp
        counts[b] = requant_block(np.dot(cols, wT), bias, mult, shift, out_zp, lo, hi, mode, rnd, shr, off, out2, r0,
                                  o0)
    return counts.sum()


def gemm_fast_path(x, w, bias, mult, shift, max_abs_x, a, mode, out, groups=1):
    """conv2d (any groups) or dense through :func:`conv_gemm_blocks`; ``x`` is N,H,W,C and ``out`` N,OH,OW,OC."""
    oc_total, kh, kw, icg = w.shape
    _, oh, ow, _ = out.shape
    ocg = oc_total // groups
    w2 = w.reshape(oc_total, kh * kw * icg)
    ftype = exact_gemm_dtype(w2, max_abs_x)
    rnd, shr, off = epilogue_constants(bias, mult, shift, a["output_zp"])
    out2 = out.reshape(-1, oc_total)
    events = 0
    for g in range(groups):
        sl = slice(g * ocg, (g + 1) * ocg)
        wT = np.ascontiguousarray(w2[sl].T, dtype=ftype)
        events += conv_gemm_blocks(x, wT, kh, kw, *a.get("stride", (1, 1)), *a.get("padding", (0, 0))[:2],
                                   *a.get("dilation", (1, 1)), g * icg, a["input_zp"], bias[sl], mult[sl], shift[sl],
                                   a["output_zp"], a["act_min"], a["act_max"], mode, rnd[sl], shr[sl], off[sl], out2,
                                   g * ocg, oh, ow, GEMM_BLOCK_ROWS)
    return events
