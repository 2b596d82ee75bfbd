"""requantize: ``y = clamp(R(x - input_zp; multiplier, shift) + output_zp, act_min, act_max)`` elementwise.
Used where a tensor must change scale (e.g. concat inputs brought to the output's scale)."""

import numpy as np
from numba import prange

from ..numerics import requant, saturate
from ..work import REQUANT_OPS, per_element
from ._compile import reference_and_parallel


def _requantize(x, in_zp, mult, shift, out_zp, lo, hi, mode, out):
    fx, fo = x.ravel(), out.ravel()
    counts = np.zeros(fx.size, dtype=np.int64)
    for i in prange(fx.size):
        y = requant(np.int64(fx[i]) - in_zp, mult, shift, mode) + out_zp
        y, event = saturate(y, lo, hi)
        counts[i] = event
        fo[i] = y
    return counts.sum()


requantize_reference, requantize_parallel = reference_and_parallel(_requantize)


def run(model, node, inputs, ctx):
    x = np.ascontiguousarray(inputs[0])
    a = node.attrs
    out = np.empty(x.shape, dtype=model.tensors[node.outputs[0]].dtype)
    kernel = requantize_parallel if ctx.fast else requantize_reference
    events = kernel(x, a["input_zp"], a["multiplier"], a["shift"], a["output_zp"], a["act_min"], a["act_max"],
                    ctx.mode, out)
    ctx.trace.requants = out.size
    ctx.trace.clamp_events = int(events)
    return out


work = per_element(int32_elementwise=REQUANT_OPS)
