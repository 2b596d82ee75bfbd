"""mul: ``y = clamp(R((a - za) * (b - zb); multiplier, shift) + output_zp)`` elementwise, ``b`` read at
``i mod |b|`` within each sample (quantize/ops/mul.py). The product is formed in int64 and equals the int32
definition because the validator proves it below 2^31."""

import numpy as np
from numba import prange

from ..numerics import requant, saturate
from ..work import REQUANT_OPS, per_element
from ._compile import reference_and_parallel


def _mul(a, b, za, zb, mult, shift, zo, lo, hi, mode, out):
    """a, out: (N, Sa); b: (N, Sb) with Sa a multiple of Sb. Returns the number of clamped outputs."""
    n, sa = a.shape
    sb = b.shape[1]
    counts = np.zeros(n * sa, dtype=np.int64)
    for k in prange(n * sa):
        s, i = k // sa, k % sa
        y = requant((np.int64(a[s, i]) - za) * (np.int64(b[s, i % sb]) - zb), mult, shift, mode) + zo
        y, event = saturate(y, lo, hi)
        counts[k] = event
        out[s, i] = y
    return counts.sum()


mul_reference, mul_parallel = reference_and_parallel(_mul)


def run(model, node, inputs, ctx):
    a_in, b_in = inputs
    n = len(a_in)
    at = node.attrs
    out = np.empty(a_in.shape, dtype=model.tensors[node.outputs[0]].dtype)
    kernel = mul_parallel if ctx.fast else mul_reference
    events = kernel(np.ascontiguousarray(a_in).reshape(n, -1), np.ascontiguousarray(b_in).reshape(n, -1),
                    at["input_zps"][0], at["input_zps"][1], at["multiplier"], at["shift"], at["output_zp"],
                    at["act_min"], at["act_max"], ctx.mode, out.reshape(n, -1))
    ctx.trace.requants = out.size
    ctx.trace.clamp_events = int(events)
    return out


work = per_element(int32_elementwise=REQUANT_OPS + 3)  # two zero-point subtractions and the product
