"""tflite_softmax: TensorFlow Lite's int8 SOFTMAX over the last axis (quantize/ops/tflite_softmax.py states the
definition; the gemmlowp primitives are quantize/tflite/fixedpoint.py, the same functions the importer fills
``exp_table`` with). Trace: clamp events of the final saturation; no overflow can occur (the validator bounds
the row sum)."""

import numpy as np
from numba import prange

from intonly.quantize.names import DIVIDE, EXP, INT32_ELEMENTWISE
from intonly.quantize.tflite.fixedpoint import rdbpot, reciprocal, srdhm

from ..work import rows
from ._compile import reference_and_parallel, row_max, run_over_rows


def _tflite_softmax(x, table, out):
    """x: (rows, D) int8, table: (256,) int32, out: (rows, D) int8. Returns the number of clamp events."""
    n_rows, depth = x.shape
    clamps = np.zeros(n_rows, dtype=np.int64)
    for r in prange(n_rows):
        top = row_max(x, r)
        total = np.int64(0)
        for c in range(depth):
            total += rdbpot(np.int64(table[top - x[r, c]]), 12)
        scale, bits_over_unit = reciprocal(total, 12)
        events = 0
        for c in range(depth):
            y = rdbpot(srdhm(scale, np.int64(table[top - x[r, c]])), bits_over_unit + 23) - 128
            events += (y < -128) | (y > 127)
            out[r, c] = min(max(y, -128), 127)
        clamps[r] = events
    return clamps.sum()


KERNELS = reference_and_parallel(_tflite_softmax)


def run(model, node, inputs, ctx):
    out, clamps = run_over_rows(KERNELS, inputs[0], ctx.fast, np.int8, model.param(node, "exp_table"))
    ctx.trace.clamp_events = int(clamps)
    return out


def work(model, node):
    """Per element: the max compare, two table loads, the sum, the product with its rounding shift and the clamp
    (one exp-class evaluation); per row the Newton reciprocal (counted as one division)."""
    n_rows, depth = rows(model, node)
    return {INT32_ELEMENTWISE: 4 * n_rows * depth, EXP: n_rows * depth, DIVIDE: n_rows}
