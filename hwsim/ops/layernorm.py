"""layernorm: integer LayerNorm with an exact square root (docs/transformer-ops.md, I-ViT / I-BERT I-LayerNorm).

Per row (the last axis, C channels) of ``x`` (int8/int16; its zero point cancels in ``x - mean``), with
params ``weight`` γ (int16, C), ``bias`` (int32, C), ``multiplier``/``shift`` (int32, C) and attr ``norm_shift`` k::

    s      = sum_c x_c                                   int32 (C * 2^15 < 2^31, proven)
    mean   = s / C rounded by the model's rounding mode: half_up floor((2s + C) / (2C)) (ties up),
             double ties away from zero, half_even ties to even
    y_c    = x_c - mean
    V      = sum_c y_c^2                                 int64, exact
    σ      = isqrt(V) = floor(sqrt(V)), σ = 1 if V == 0
    F      = (2^31 - 1) // σ
    nrm_c  = (y_c * F) >> (31 - k)                       int64 product; |nrm| <= 2^k since |y_c| <= σ
    acc_c  = nrm_c * weight_c + bias_c                   int32 (proven by the validator)
    out_c  = clamp(R(acc_c; multiplier_c, shift_c) + output_zp, act_min, act_max)

Intermediates are held in int64; an overflow event is counted for every row sum ``s`` and every ``acc_c`` outside
int32 (``V`` cannot leave int64: the validator bounds it by C * (hi - lo)^2). Trace: one requant per output, two
integer divisions per row (the mean and F), clamp events of the output clamp.
"""

import numpy as np
from numba import njit, prange

from intonly.quantize.names import DIVIDE, INT32_ELEMENTWISE

from ..numerics import INT32_MAX, INT32_MIN, div_round_away, isqrt, requant, saturate
from ..work import ISQRT_DIVIDES, REQUANT_OPS, elements, rows
from ._compile import reference_and_parallel


@njit(inline="always", cache=True)
def rounded_mean(s, c, mode):
    """s / c (c > 0) to nearest: ties up (mode 0, half_up), away from zero (1, double), to even (2, half_even)."""
    if mode == 0:
        return (2 * s + c) // (2 * c)
    if mode == 1:
        return div_round_away(s, c)
    q = s // c
    r2 = 2 * (s - q * c)
    if r2 > c or (r2 == c and (q & 1) == 1):
        q += 1
    return q


def _layernorm(x, weight, bias, mult, shift, k, out_zp, lo, hi, mode, out):
    """x, out: (rows, C). Returns (clamp events, overflow events)."""
    rows, channels = x.shape
    events = np.zeros((rows, 2), dtype=np.int64)
    for r in prange(rows):
        s = np.int64(0)
        for c in range(channels):
            s += np.int64(x[r, c])
        over = np.int64((s > INT32_MAX) | (s < INT32_MIN))
        mean = rounded_mean(s, np.int64(channels), mode)
        var = np.int64(0)
        for c in range(channels):
            y = np.int64(x[r, c]) - mean
            var += y * y
        sigma = isqrt(var) if var > 0 else np.int64(1)
        f = np.int64(INT32_MAX) // sigma
        clamps = np.int64(0)
        for c in range(channels):
            nrm = ((np.int64(x[r, c]) - mean) * f) >> (31 - k)
            acc = nrm * np.int64(weight[c]) + np.int64(bias[c])
            over += np.int64((acc > INT32_MAX) | (acc < INT32_MIN))
            v, event = saturate(requant(acc, mult[c], shift[c], mode) + out_zp, lo, hi)
            clamps += event
            out[r, c] = v
        events[r, 0] = clamps
        events[r, 1] = over
    return events[:, 0].sum(), events[:, 1].sum()


layernorm_reference, layernorm_parallel = reference_and_parallel(_layernorm)


def run(model, node, inputs, ctx):
    x = np.ascontiguousarray(inputs[0])
    a = node.attrs
    channels = x.shape[-1]
    out = np.empty(x.shape, dtype=model.tensors[node.outputs[0]].dtype)
    weight, bias, mult, shift = (model.param(node, r).astype(np.int64) for r in ("weight", "bias", "multiplier",
                                                                                  "shift"))
    kernel = layernorm_parallel if ctx.fast else layernorm_reference
    clamps, overflows = kernel(x.reshape(-1, channels), weight, bias, mult, shift, a["norm_shift"], a["output_zp"],
                               a["act_min"], a["act_max"], ctx.mode, out.reshape(-1, channels))
    ctx.trace.requants = out.size
    ctx.trace.divides = 2 * (out.size // channels)
    ctx.trace.clamp_events = int(clamps)
    ctx.trace.overflows = int(overflows)
    return out


def work(model, node):
    """Per element sum, centre, square-accumulate, normalise-multiply plus the requant; per row the mean and
    normalisation divisions and the exact integer square root (ISQRT_DIVIDES Newton divisions, the worst case
    for a 62-bit variance)."""
    n_rows, _ = rows(model, node)
    return {INT32_ELEMENTWISE: (4 + REQUANT_OPS) * elements(model, node), DIVIDE: n_rows * (2 + ISQRT_DIVIDES)}
