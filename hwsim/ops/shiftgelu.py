"""shiftgelu: I-ViT's ShiftGELU, GELU(x) ~ x * sigmoid(1.702 x), per row of the last axis (docs/transformer-ops.md).

Input ``x`` (..., C) int8/int16, zero point 0, scale S; attrs ``x0 = floor(-1/S)``, precision ``n``, range
``q_max`` (default n), ``norm_bits`` M (31 or 62; default 31), ``sig_bits``, and one requant (``multiplier``,
``shift``, ``output_zp``, ``act_min``, ``act_max``). Per row, all in int64::

    z   = x + (x >> 1) + (x >> 3) + (x >> 4)            1.6875 x by shifts (1.702 ~ 1.1011b, the I-ViT paper)
    m   = max(0, max over the row of z)                  (floored at 0: I-ViT's shift-exp(-max) needs max >= 0)
    e1  = shift-exp(z - m) ;  e2 = shift-exp(-m)          hwsim/ops/_exp.py; each <= -x0 * 2^n
    Σ   = e1 + e2                                        int32: 2 * (-x0) * 2^n < 2^31 proven by the validator
                                                         (Σ = 0, both exps below 2^-n with q_max > n: σ = 0)
    σ   = (e1 * ((2^M - 1) // Σ)) >> (M - sig_bits)      int64 product < 2^M; 0 <= σ < 2^sig_bits (I-ViT: 7, M 31)
    y   = clamp(R(x * σ; multiplier, shift) + output_zp, act_min, act_max)   x*σ int32 (proven), scale S*2^-sig_bits

``R`` is the model's requantization in its rounding mode (hwsim/numerics.py). With q_max = n, M = 31 and
sig_bits = 7 this is I-ViT's ShiftGELU (paper form). Trace: one requant per element, divisions (per element e1's
``t // x0`` and, where Σ > 0, ``F``; per row e2's), clamp events of the output clamp, overflow events (Σ or x*σ
outside int32 per element, ``|q_max * x0|`` per row; 0 for a validated model).
"""

import numpy as np
from numba import njit, prange

from ..numerics import INT32_MAX, INT32_MIN, requant, saturate
from ..work import REQUANT_OPS, per_element
from ._exp import exp_range, run_gelu, shift_exp


@njit(inline="always", cache=True)
def times_1_6875(x):
    """1.6875 x by shifts, floored: x + (x >> 1) + (x >> 3) + (x >> 4)."""
    x = np.int64(x)
    return x + (x >> 1) + (x >> 3) + (x >> 4)


@njit(inline="always", cache=True)
def gelu_element(v, m, e2, x0, n, q_max, numerator, norm_bits, sig_bits, mult, shift, out_zp, lo, hi, mode):
    """One element of a row with max ``m`` and ``e2 = shift-exp(-m)``: ``(y, clamp event, overflow events,
    divisions)`` (the division count excludes ``t // x0``, counted per element by the callers)."""
    e1 = shift_exp(times_1_6875(v) - m, x0, n, q_max)
    total = e1 + e2
    # numerator // total as an unsigned division (both > 0): the same value without sign fix-ups
    factor = np.int64(np.uint64(numerator) // np.uint64(total)) if total > 0 else np.int64(0)
    sigma = (e1 * factor) >> (norm_bits - sig_bits)
    acc = np.int64(v) * sigma
    over = np.int64(total > INT32_MAX) + np.int64((acc > INT32_MAX) | (acc < INT32_MIN))
    y, event = saturate(requant(acc, mult, shift, mode) + out_zp, lo, hi)
    return y, event, over, np.int64(total > 0)


@njit(inline="always", cache=True)
def row_max(x, r):
    m = np.int64(0)
    for i in range(x.shape[1]):
        m = max(m, times_1_6875(x[r, i]))
    return m


@njit(cache=True)
def shiftgelu_reference(x, x0, n, q_max, norm_bits, sig_bits, mult, shift, out_zp, lo, hi, mode, out):
    """x, out: (rows, C), element by element. Returns (clamp events, overflow events, divisions)."""
    rows, width = x.shape
    numerator = (np.int64(1) << norm_bits) - 1
    clamps = over = divides = np.int64(0)
    for r in range(rows):
        m = row_max(x, r)
        e2 = shift_exp(-m, x0, n, q_max)
        over += np.int64(abs(np.int64(q_max) * x0) > INT32_MAX)
        divides += 1 + width
        for i in range(width):
            y, event, o, d = gelu_element(x[r, i], m, e2, x0, n, q_max, numerator, norm_bits, sig_bits, mult, shift,
                                          out_zp, lo, hi, mode)
            out[r, i] = y
            clamps += event
            over += o
            divides += d
    return clamps, over, divides


@njit(parallel=True, cache=True)
def shiftgelu_parallel(x, x0, n, q_max, norm_bits, sig_bits, mult, shift, out_zp, lo, hi, mode, out):
    """The fast path: rows in parallel; within a row the output depends only on the element's value (and the
    row's max), so when the row's values span fewer codes than it has elements (int8 rows of 768), each distinct
    value is evaluated once into a table and the elements look it up. Same outputs and counts as the reference."""
    rows, width = x.shape
    numerator = (np.int64(1) << norm_bits) - 1
    counts = np.zeros((rows, 3), dtype=np.int64)
    for r in prange(rows):
        m = row_max(x, r)
        e2 = shift_exp(-m, x0, n, q_max)
        low = high = np.int64(x[r, 0])
        for i in range(width):
            low = min(low, np.int64(x[r, i]))
            high = max(high, np.int64(x[r, i]))
        clamps = over = np.int64(0)
        divides = np.int64(1 + width)
        if high - low + 1 < width:
            table = np.empty((high - low + 1, 4), dtype=np.int64)
            for v in range(low, high + 1):
                table[v - low, 0], table[v - low, 1], table[v - low, 2], table[v - low, 3] = gelu_element(
                    v, m, e2, x0, n, q_max, numerator, norm_bits, sig_bits, mult, shift, out_zp, lo, hi, mode)
            for i in range(width):
                k = np.int64(x[r, i]) - low
                out[r, i] = table[k, 0]
                clamps += table[k, 1]
                over += table[k, 2]
                divides += table[k, 3]
        else:
            for i in range(width):
                y, event, o, d = gelu_element(x[r, i], m, e2, x0, n, q_max, numerator, norm_bits, sig_bits, mult,
                                              shift, out_zp, lo, hi, mode)
                out[r, i] = y
                clamps += event
                over += o
                divides += d
        counts[r, 0] = clamps
        counts[r, 1] = over + np.int64(abs(np.int64(q_max) * x0) > INT32_MAX)
        counts[r, 2] = divides
    return counts[:, 0].sum(), counts[:, 1].sum(), counts[:, 2].sum()


def run(model, node, inputs, ctx):
    a = node.attrs
    return run_gelu(model, node, inputs, ctx, (shiftgelu_reference, shiftgelu_parallel), True, a["x0"], a["n"],
                    *exp_range(a), a["sig_bits"])


# ShiftGELU: 1.6875x by shifts, two shift-exps, sigmoid division and t // x0 per element, requant.
work = per_element(shift=12, int32_elementwise=REQUANT_OPS + 4, divide=2)
