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
from ._exp import exp_range, reference_and_parallel, run_gelu, shift_exp


@njit(inline="always", cache=True)
def times_1_6875(x):
    x = np.int64(x)
    return x + (x >> 1) + (x >> 3) + (x >> 4)


def _shiftgelu(x, x0, n, q_max, norm_bits, sig_bits, mult, shift, out_zp, lo, hi, mode, out):
    """x, out: (rows, C). Returns (clamp events, overflow events, divisions)."""
    rows, width = x.shape
    counts = np.zeros((rows, 3), dtype=np.int64)
    numerator = (np.int64(1) << norm_bits) - 1
    for r in prange(rows):
        m = np.int64(0)
        for i in range(width):
            m = max(m, times_1_6875(x[r, i]))
        e2 = shift_exp(-m, x0, n, q_max)
        clamps = np.int64(0)
        over = np.int64(abs(np.int64(q_max) * x0) > INT32_MAX)
        divides = np.int64(1 + width)
        for i in range(width):
            e1 = shift_exp(times_1_6875(x[r, i]) - m, x0, n, q_max)
            total = e1 + e2
            divides += total > 0
            sigma = (e1 * (numerator // total)) >> (norm_bits - sig_bits) if total > 0 else np.int64(0)
            acc = np.int64(x[r, i]) * sigma
            over += np.int64(total > INT32_MAX) + np.int64((acc > INT32_MAX) | (acc < INT32_MIN))
            y, event = saturate(requant(acc, mult, shift, mode) + out_zp, lo, hi)
            clamps += event
            out[r, i] = y
        counts[r, 0] = clamps
        counts[r, 1] = over
        counts[r, 2] = divides
    return counts[:, 0].sum(), counts[:, 1].sum(), counts[:, 2].sum()


shiftgelu_reference, shiftgelu_parallel = reference_and_parallel(_shiftgelu)


def run(model, node, inputs, ctx):
    a = node.attrs
    return run_gelu(model, node, inputs, ctx, (shiftgelu_reference, shiftgelu_parallel), True, a["x0"], a["n"],
                    *exp_range(a), a["sig_bits"])
