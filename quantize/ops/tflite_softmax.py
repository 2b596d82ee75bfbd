"""tflite_softmax: TensorFlow Lite's int8 SOFTMAX over the last axis, exactly (docs/numerics.md#tflite_softmax).

Per row, with ``m`` the row maximum and ``e = exp_table[m - x]`` (``exp_table`` holds, for every code difference
``d = 0 .. 255``, ``exp(-d · s_in · beta)`` in Q0.31 as gemmlowp computes it, or 0 where TFLite skips the element)::

    sum   = Σ RDBPOT(e, 12)                         the exps in Q12.19 (gemmlowp Rescale<12>)
    scale, bits_over_unit = GetReciprocal(sum, 12)  1/sum in Q0.31 (Newton-Raphson), and its exponent
    y     = clamp(RDBPOT(SRDHM(scale, e), bits_over_unit + 23) - 128, -128, 127)

The output has TFLite's fixed quantization, scale 1/256 and zero point -128. Bounds: ``sum <= D · 2^19`` must stay
below ``2^28`` so the final shift is at most 31 (TFLite checks the same at run time), so rows hold at most 511
elements."""

import numpy as np

from ..bounds import Bound
from ._opdef import OpDef
from ._shapes import same_as_input

EXP_TABLE_SIZE = 256  # one entry per code difference of an int8 input


def bounds(model, node, producers=None):
    """The row sum; every table entry non-negative and the maximum's entry (d = 0) at least 2^12, so every row
    sum is positive (the reciprocal's leading-zero count stays below 32)."""
    depth = model.tensors[node.inputs[0]].shape[-1]
    table = model.param(node, "exp_table").astype(np.int64)
    return [Bound(f"row sum of exps (D={depth}) in Q12.19", depth << 19, (1 << 28) - 1),
            Bound("exp_table entries below 0", max(0, -int(table.min())), 0),
            Bound("2^12 - exp_table[0] (the row maximum's exp must count)", max(0, (1 << 12) - int(table[0])), 0)]


def shape(attrs, in_shapes, params):
    if tuple(params["exp_table"]) != (EXP_TABLE_SIZE,):
        raise ValueError(f"exp_table has shape {tuple(params['exp_table'])}, expected ({EXP_TABLE_SIZE},)")
    return same_as_input(attrs, in_shapes, params)


OP = OpDef(name="tflite_softmax", summary="TensorFlow Lite's int8 softmax (gemmlowp fixed point), last axis",
           definition="docs/numerics.md#tflite_softmax", n_inputs=1, attrs={}, params={"exp_table": ("int32",)},
           shape=shape, bounds=bounds)
