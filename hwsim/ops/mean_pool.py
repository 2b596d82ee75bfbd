"""mean_pool: masked mean over the token axis (docs/transformer-ops.md).

``x`` (..., L, D) int8/int16 with zero point ``input_zp``, ``mask`` (L,) int8 per sample (nonzero = the token
counts), ``cnt`` = number of nonzero mask entries::

    total_d = sum_l [mask_l != 0] * (x_ld - input_zp)          int32 (L * max|x - zp| < 2^31, proven)
    out_d   = div_round_away(total_d, cnt) + output_zp          TFLM's average division, ties away from zero
    out_d   = output_zp                                         when cnt == 0 (no division)

The result is stored saturated to the output tensor's bit range (a clamp event if it ever acts; it cannot when
``output_zp == input_zp`` at equal widths, which is what the lowering emits: the output has the input's scale).
``total_d`` is held in int64 and counted as an overflow event outside int32. Trace: one division per output
with ``cnt > 0``.
"""

import math

import numpy as np
from numba import prange

from intonly.quantize.names import DIVIDE, INT32_ELEMENTWISE

from ..numerics import INT32_MAX, INT32_MIN, div_round_away, saturate
from ..work import elements
from ._compile import reference_and_parallel


def _mean_pool(x, mask, per_sample, in_zp, out_zp, lo, hi, out):
    """x: (rows, L, D), mask: (batch, L), out: (rows, D); row r belongs to sample r // per_sample.
    Returns (divisions, clamp events, overflow events)."""
    rows, tokens, dims = x.shape
    counts = np.zeros((rows, 3), dtype=np.int64)
    for r in prange(rows):
        keep = mask[r // per_sample]
        cnt = 0
        for t in range(tokens):
            cnt += keep[t] != 0
        clamps = 0
        over = 0
        for d in range(dims):
            total = np.int64(0)
            for t in range(tokens):
                if keep[t] != 0:
                    total += np.int64(x[r, t, d]) - in_zp
            over += (total > INT32_MAX) | (total < INT32_MIN)
            y = div_round_away(total, cnt) + out_zp if cnt > 0 else np.int64(out_zp)
            y, event = saturate(y, lo, hi)
            clamps += event
            out[r, d] = y
        counts[r, 0] = dims if cnt > 0 else 0
        counts[r, 1] = clamps
        counts[r, 2] = over
    return counts[:, 0].sum(), counts[:, 1].sum(), counts[:, 2].sum()


mean_pool_reference, mean_pool_parallel = reference_and_parallel(_mean_pool)


def run(model, node, inputs, ctx):
    x, mask = (np.ascontiguousarray(t) for t in inputs)
    a = node.attrs
    out_info = model.tensors[node.outputs[0]]
    tokens, dims = x.shape[-2:]
    out = np.empty(x.shape[:-2] + (dims,), dtype=out_info.dtype)
    flat = x.reshape(-1, tokens, dims)
    kernel = mean_pool_parallel if ctx.fast else mean_pool_reference
    divides, clamps, overflows = kernel(flat, mask.reshape(len(mask), tokens), len(flat) // len(mask),
                                        a["input_zp"], a["output_zp"], *out_info.qrange(), out.reshape(-1, dims))
    ctx.trace.divides = int(divides)
    ctx.trace.clamp_events = int(clamps)
    ctx.trace.overflows = int(overflows)
    return out


def work(model, node):
    """One add per input element, centre and clamp per output, one rounded division per output."""
    return {INT32_ELEMENTWISE: math.prod(model.tensors[node.inputs[0]].shape) + 2 * elements(model, node),
            DIVIDE: elements(model, node)}
