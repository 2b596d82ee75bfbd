"""log2_softmax: FQ-ViT's log-int-softmax over the last axis (docs/transformer-ops.md).

Input and attrs as ``iexp_softmax`` (``q_max`` included, no ``norm_bits``) plus ``code_bits`` b (FQ-ViT: 4),
``Z = 2^b``. Per row, all in int64::

    e_i, Σ as iexp_softmax                              (Σ int32, proven)
    e_i == 0 or masked:  c_i = Z                        the "exactly zero" code
    else: v = (2Σ + e_i) // (2 e_i)                     round(Σ / e_i), ties up; v >= 1
          f = floor(log2 v)                             bit length of v minus 1
          c_i = f + (1 if f >= 1 and bit (f-1) of v is set else 0)
          c_i = Z if c_i > Z - 1

Output: int8 codes in [0, Z] (tensor ``encoding="log2"``), probability ``2^-c`` (Z: 0). A row whose every key
is masked outputs Z everywhere. Codes past Z - 1 are the encoding's zero, not a clamp (as a linear softmax's
p = 0 is not): no clamp events. Trace: divisions (one per unmasked key, one per nonzero e), overflow events
(Σ, q_max*x0 or z outside int32); no requantization.

Kernels: hwsim/ops/_exp.py's ``softmax_kernels`` (scalar reference and prange fast path of one row kernel,
shared by the three softmax ops).
"""

from ..work import softmax
from ._exp import I_EXP, LOG2, run_softmax


def run(model, node, inputs, ctx):
    return run_softmax(model, node, inputs, ctx, I_EXP, node.attrs["b_int"], node.attrs["c_int"], LOG2)


# log2 softmax: shift-exp sum as shiftmax, then round(sum/e) (a division) and a bit-length per element.
work = softmax(shift=8, exp=1, elementwise=2, divides_per_element=2)
