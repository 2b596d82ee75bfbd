"""tflite_softmax16: TensorFlow Lite's int16 SOFTMAX over the last axis (quantize/ops/tflite_softmax16.py states the
definition; the table lookup is quantize/tflite/lut16.py's ``lut_lookup16``, the gemmlowp primitives
quantize/tflite/fixedpoint.py). Trace: clamp events of the final saturation; no overflow can occur (the validator
bounds the tables, the left shift and the row sum)."""

import numpy as np
from numba import prange

from intonly.quantize.names import DIVIDE, EXP, INT32_ELEMENTWISE
from intonly.quantize.tflite.fixedpoint import count_leading_zeros32, rdbpot, srdhm
from intonly.quantize.tflite.lut16 import lut_lookup16

from ..work import rows
from ._compile import reference_and_parallel, row_max, run_over_rows


def _tflite_softmax16(x, multiplier, left_shift, exp_lut, reciprocal_lut, out):
    """x: (rows, D) int16, the tables (513,) int16, out: (rows, D) int16 (holds the exps until the last loop).
    Returns the number of clamp events."""
    n_rows, depth = x.shape
    up, down = max(left_shift, 0), max(-left_shift, 0)
    clamps = np.zeros(n_rows, dtype=np.int64)
    for r in prange(n_rows):
        top = row_max(x, r)
        total = np.int64(0)
        for c in range(depth):
            scaled = rdbpot(srdhm((np.int64(x[r, c]) - top) << up, multiplier), down)
            e = lut_lookup16(min(max(scaled + 32767, -32768), 32767), exp_lut)
            out[r, c] = e
            total += e
        headroom_plus_one = count_leading_zeros32(total)
        shifted = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
        reciprocal = lut_lookup16(min(max(shifted - 98304, -32768), 32767), reciprocal_lut)
        right_shift = 31 - headroom_plus_one
        events = 0
        for c in range(depth):
            y = (np.int64(out[r, c]) * reciprocal + (np.int64(1) << (right_shift - 1))) >> right_shift
            events += (y < 0) | (y > 32767)
            out[r, c] = min(max(y, 0), 32767)
        clamps[r] = events
    return clamps.sum()


KERNELS = reference_and_parallel(_tflite_softmax16)


def run(model, node, inputs, ctx):
    out, clamps = run_over_rows(KERNELS, inputs[0], ctx.fast, np.int16, node.attrs["multiplier"],
                                node.attrs["left_shift"], model.param(node, "exp_lut"), model.param(node, "reciprocal_lut"))
    ctx.trace.clamp_events = int(clamps)
    return out


def work(model, node):
    """Per element: the max compare, the rescale, the exp lookup with its interpolation, the sum, the product with
    its rounding shift and the clamp (one exp-class evaluation); per row the reciprocal lookup (one division)."""
    n_rows, depth = rows(model, node)
    return {INT32_ELEMENTWISE: 6 * n_rows * depth, EXP: n_rows * depth, DIVIDE: n_rows}
