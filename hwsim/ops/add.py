"""add: elementwise sum of two quantized tensors, TFLM-style (and, with ``sign = -1``, the difference of
hwsim/ops/sub.py).

For each input i: ``s_i = R((x_i - zp_i) * 2**left_shift; b_i, c_i)`` (the shift is exact: the validator
proves it fits int32); ``y = clamp(R(s_a + s_b; b_out, c_out) + output_zp, act_min, act_max)``.
All three requants use the model's rounding mode; in ``double`` mode this is TFLM's ADD bit for bit.
The validator proves |s_a| + |s_b| < 2**31 (TFLM's input multipliers are below 1/2), so the int32 sum cannot wrap.
"""

import numpy as np
from numba import prange

from ..numerics import requant, saturate
from ..work import REQUANT_OPS, per_element
from ._compile import reference_and_parallel


def _add(xa, xb, sign, zpa, zpb, left, ma, ca, mb, cb, mo, co, out_zp, lo, hi, mode, out):
    fa, fb, fo = xa.ravel(), xb.ravel(), out.ravel()
    counts = np.zeros(fa.size, dtype=np.int64)
    for i in prange(fa.size):
        sa = requant((np.int64(fa[i]) - zpa) << left, ma, ca, mode)
        sb = requant((np.int64(fb[i]) - zpb) << left, mb, cb, mode)
        y = requant(sa + sign * sb, mo, co, mode) + out_zp
        y, event = saturate(y, lo, hi)
        counts[i] = event
        fo[i] = y
    return counts.sum()


add_reference, add_parallel = reference_and_parallel(_add)


def run(model, node, inputs, ctx, sign: int = 1):
    xa, xb = (np.ascontiguousarray(t) for t in inputs)
    a = node.attrs
    out_info = model.tensors[node.outputs[0]]
    out = np.empty(xa.shape, dtype=out_info.dtype)
    kernel = add_parallel if ctx.fast else add_reference
    (zpa, zpb), (ma, mb, mo), (ca, cb, co) = a["input_zps"], a["multipliers"], a["shifts"]
    events = kernel(xa, xb, sign, zpa, zpb, a["left_shift"], ma, ca, mb, cb, mo, co, a["output_zp"], a["act_min"],
                    a["act_max"], ctx.mode, out)
    ctx.trace.requants = 3 * out.size
    ctx.trace.clamp_events = int(events)
    return out


# two input rescales and the output requant, and the sum
work = per_element(int32_elementwise=2 * REQUANT_OPS + 1)
