"""shiftmax: I-ViT's Shiftmax (docs/transformer-ops.md), softmax over the last axis with the shift-exp.

Input ``x`` (..., N) int8/int16 scores, zero point 0, scale S; attrs ``x0 = floor(-1/S)``, precision ``n``,
range ``q_max`` (default n), ``norm_bits`` M (31 or 62; default 31), ``masked`` (1: the input's lowest code
``qmin`` is the mask sentinel). Output: ``k = bits`` of the output tensor (8 or 16), scale ``2^-(k-1)``.
Per row, all in int64::

    m   = max over the row's unmasked x                 (every key masked: the row outputs 0)
    e_i = shift-exp(x_i - m; x0, n, q_max)              0 for masked keys; 0 <= e_i <= -x0 * 2^n
    Σ   = sum_i e_i                                     int32: N * (-x0) * 2^n < 2^31 proven by the validator
    F   = (2^M - 1) // Σ
    p_i = (e_i * F) >> (M + 1 - k)                      e_i * F < 2^M; 0 <= p_i, sum_i p_i <= 2^(k-1) - 1

shift-exp (hwsim/ops/_exp.py): ``t = d + (d >> 1) - (d >> 4)`` (d·log2 e), ``t = max(t, q_max*x0)``,
``q = t // x0``, ``r = t - x0*q``, ``e = ((r - 2*x0) << n) >> (q + 1)`` (I-ViT's ``floor((r/2 - x0) 2^(n-q))``,
exactly). With q_max = n and M = 31 this is I-ViT's Shiftmax formula. No rounding, no clamp. Trace: divisions
(one per unmasked key, one per row with Σ > 0), overflow events (Σ or q_max*x0 outside int32: 0 for a validated
model).

Kernels: hwsim/ops/_exp.py's ``softmax_kernels`` (scalar reference and prange fast path of one row kernel,
shared by the three softmax ops).
"""

from ..work import softmax
from ._exp import LINEAR, SHIFT_EXP, run_softmax


def run(model, node, inputs, ctx):
    return run_softmax(model, node, inputs, ctx, SHIFT_EXP, 0, 0, LINEAR)


# shift-exp: d + (d>>1) - (d>>4), the range-reduction shift pair, the normalisation shift (6 shifts);
# row max, running sum, normalising multiply (3 elementwise); t // x0 per element, F per row.
work = softmax(shift=6, exp=0, elementwise=3, divides_per_element=1)
