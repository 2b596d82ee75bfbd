"""igelu: I-BERT's i-GELU, GELU(x) = x/2 (1 + erf(x/sqrt 2)) with a second-order erf, elementwise
(docs/transformer-ops.md).

Input ``x`` (zero point 0, scale S), ``S' = S/1.4142``; attrs ``b_int = floor(-1.769/S')``,
``c_int = floor((1/-0.2888)/S'^2)``, ``erf_shift`` (I-BERT: 14), ``one_int = floor(1/S_erf)`` with
``S_erf = -0.2888 S'^2 2^erf_shift`` (negative), and one requant. All in int64::

    u   = min(|x|, -b_int)
    L   = sign(x) * ((u + b_int)^2 + c_int)              int32 (every input enumerated by the validator)
    erf = L >> erf_shift                                 arithmetic (flooring) shift
    g   = x * (erf + one_int)                            int32 (enumerated); GELU = g * S * S_erf / 2
    y   = clamp(R(-g; multiplier, shift) + output_zp, act_min, act_max)      -g has scale S * |S_erf| / 2

``R`` is the model's requantization in its rounding mode. Trace: one requant per element, no division, clamp
events of the output clamp, overflow events (L or g outside int32; 0 for a validated model).
"""

import numpy as np
from numba import prange

from ..numerics import INT32_MAX, INT32_MIN, requant, saturate
from ..work import REQUANT_OPS, per_element
from ._exp import reference_and_parallel, run_gelu


def _igelu(x, b_int, c_int, erf_shift, one_int, mult, shift, out_zp, lo, hi, mode, out):
    """x, out: flat. Returns (clamp events, overflow events)."""
    counts = np.zeros((x.size, 2), dtype=np.int64)
    for i in prange(x.size):
        v = np.int64(x[i])
        u = min(abs(v), -b_int)
        poly = (u + b_int) * (u + b_int) + c_int
        erf = ((np.int64(v > 0) - np.int64(v < 0)) * poly) >> erf_shift
        g = v * (erf + one_int)
        y, event = saturate(requant(-g, mult, shift, mode) + out_zp, lo, hi)
        counts[i, 0] = event
        counts[i, 1] = np.int64((poly > INT32_MAX) | (poly < INT32_MIN)) + np.int64((g > INT32_MAX) | (g < INT32_MIN))
        out[i] = y
    return counts[:, 0].sum(), counts[:, 1].sum()


igelu_reference, igelu_parallel = reference_and_parallel(_igelu)


def run(model, node, inputs, ctx):
    a = node.attrs
    return run_gelu(model, node, inputs, ctx, (igelu_reference, igelu_parallel), False, a["b_int"], a["c_int"],
                    a["erf_shift"], a["one_int"])


# i-GELU: the erf polynomial (exp class), sign/clip/multiply, requant; no division.
work = per_element(exp=1, int32_elementwise=REQUANT_OPS + 3)
