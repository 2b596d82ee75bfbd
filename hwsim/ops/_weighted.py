"""What conv2d and dense share: their integer parameters, and the fast path's exact-GEMM epilogue."""

import numpy as np
from numba import njit, prange

from ..numerics import requant, saturate


@njit(parallel=True, cache=True)
def requant_rows(acc_f, bias, mult, shift, out_zp, lo, hi, mode, out):
    """out[m, n] = clamp(R(int(acc_f[m, n]) + bias[n]; mult[n], shift[n]) + out_zp, lo, hi).

    ``acc_f`` holds integers exactly (float32 or float64 GEMM proven exact by the caller).
    Returns the number of clamp events (outputs whose unclamped value lay outside [lo, hi]).
    """
    rows, cols = acc_f.shape
    counts = np.zeros(rows, dtype=np.int64)
    for m in prange(rows):
        events = 0
        for n in range(cols):
            acc = np.int64(acc_f[m, n]) + bias[n]
            y = requant(acc, mult[n], shift[n], mode) + out_zp
            y, event = saturate(y, lo, hi)
            events += event
            out[m, n] = y
        counts[m] = events
    return counts.sum()


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


def weighted_params(model, node):
    """``(weight, bias, multiplier, shift, max|x - input_zp|)`` of a conv2d/dense node, integers widened to int64."""
    lo, hi = model.tensors[node.inputs[0]].qrange()
    zp = node.attrs["input_zp"]
    return (model.param(node, "weight"), *(model.param(node, r).astype(np.int64) for r in ("bias", "multiplier",
                                                                                           "shift")),
            max(abs(lo - zp), abs(hi - zp)))
