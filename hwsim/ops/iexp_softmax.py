"""iexp_softmax: softmax over the last axis with I-BERT's i-exp (docs/transformer-ops.md).

Input ``x`` (..., N) int8/int16 scores, zero point 0, scale S; attrs ``x0 = floor(-0.6931/S)``,
``b_int = floor((0.96963238/0.35815147)/S)``, ``c_int = floor((1/0.35815147)/S^2)``, precision ``n``, range
``q_max`` (default n), ``norm_bits`` M (31 or 62; default 31), ``masked``. Output: ``k = bits`` of the output
tensor, scale ``2^-(k-1)``. Per row, all in int64::

    m   = max over the row's unmasked x                 (every key masked: the row outputs 0)
    e_i = i-exp(x_i - m)                                0 for masked keys; scale a*S^2 / 2^n
    Σ   = sum_i e_i                                     int32: N * max|z| * 2^n < 2^31 proven by the validator
    F   = (2^M - 1) // Σ                                (Σ = 0, only if c_int <= 0: the row outputs 0)
    p_i = (e_i * F) >> (M + 1 - k)                      0 <= p_i, sum_i p_i <= 2^(k-1) - 1

i-exp (hwsim/ops/_exp.py): ``t = max(d, q_max*x0)``, ``q = t // x0``, ``r = t - x0*q``,
``z = (r + b_int)*r + c_int`` (int32, proven), ``e = max((z << n) >> q, 0)``. With q_max = n this is I-BERT's
i-exp; unlike I-BERT: n is the lowering's (I-BERT's fixed 30 overflows int32), no 16-bit requantization of e,
and F = (2^M-1)//Σ instead of 2^32//Σ (which reaches 256 at 8 bits). Trace: divisions (one per unmasked key,
one per row with Σ > 0), overflow events (Σ, q_max*x0 or z outside int32); no requantization, no clamp.

Kernels: hwsim/ops/_exp.py's ``softmax_kernels`` (scalar reference and prange fast path of one row kernel,
shared by the three softmax ops).
"""

from ..work import softmax
from ._exp import I_EXP, LINEAR, run_softmax


def run(model, node, inputs, ctx):
    return run_softmax(model, node, inputs, ctx, I_EXP, node.attrs["b_int"], node.attrs["c_int"], LINEAR)


# i-exp: one second-order polynomial per element (exp), max/sum/multiply, t // x0 per element, F per row.
work = softmax(shift=2, exp=1, elementwise=3, divides_per_element=1)
