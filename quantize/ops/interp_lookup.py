"""interp_lookup: an elementwise function of a wide (above 8-bit) input read from a table of its values at every
``2^segment_shift``-th input code, linearly interpolated in between (TFLM's int16 LOGISTIC/TANH interpolate a
513-entry table the same way, tensorflow/lite/kernels/internal/common.h ``LUTLookup``). With
``d = x - input_min``, ``i = d >> segment_shift``, ``r = d & (2^segment_shift - 1)``:
``y = clamp(table[i] + (((table[i + 1] - table[i]) * r + 2^(segment_shift - 1)) >> segment_shift), act_min,
act_max)``; ``input_min`` (the table's first code) is at most the input's lowest code, and may be lower so that a
segment boundary falls on the zero point (``>>`` arithmetic, so the step rounds half up; ``segment_shift = 0``
reads the table directly).
Table entries are output codes of the unclamped function, clipped to ``[act_min - 2^15, act_max + 2^15]`` (so a
segment where the function leaves the output range still interpolates its line, and the final clamp saturates),
so ``|table[i + 1] - table[i]| <= 2^17`` and the product stays below ``2^17 * 2^14 = 2^31``. The lowering picks
the largest ``segment_shift`` (the smallest table) for which every input code's output is within 1 LSB of the
exactly rounded function, checked on every code."""

import numpy as np

from ..bounds import Bound
from ._attrs import CLAMP, Attr
from ._opdef import OpDef
from ._shapes import same_as_input

SEGMENT_SHIFT = Attr("int", 0, 14)
TABLE_MARGIN = 2**15   # how far past the clamp a table entry may lie


def interpolate(x: np.ndarray, table: np.ndarray, input_min: int, shift: int) -> np.ndarray:
    """The unclamped interpolated codes of integer inputs ``x`` (any shape), in int64."""
    d = x.astype(np.int64) - input_min
    i, r = d >> shift, d & ((1 << shift) - 1)
    t = table.astype(np.int64)
    half = (1 << shift) >> 1
    return t[i] + (((t[i + 1] - t[i]) * r + half) >> shift)


def bounds(model, node, producers=None):
    lo, hi = model.tensors[node.inputs[0]].qrange()
    start, s = node.attrs["input_min"], node.attrs["segment_shift"]
    table = model.param(node, "table").astype(int)
    steps = abs(table[1:] - table[:-1]).max(initial=0)
    act_min, act_max = node.attrs["act_min"], node.attrs["act_max"]
    return [Bound("x - input_min (>= 0)", start - lo, 0),
            Bound("table entries (within 2^15 of the clamp)", int(max(act_min - table.min(), table.max() - act_max)),
                  TABLE_MARGIN),
            Bound("segment index + 1 (< table size)", ((hi - start) >> s) + 1, table.size - 1),
            Bound("table step * remainder", int(steps) * ((1 << s) - 1))]


def shape(attrs, in_shapes, params):
    if len(params["table"]) != 1 or params["table"][0] < 2:
        raise ValueError(f"interp_lookup table has shape {tuple(params['table'])}, expected at least 2 entries")
    return same_as_input(attrs, in_shapes, params)


OP = OpDef(name="interp_lookup", summary="elementwise function of a wide input, interpolated from a coarse table",
           definition="docs/ops.md#interp_lookup", n_inputs=1,
           attrs={"input_min": Attr("int", -2**16, 0), "segment_shift": SEGMENT_SHIFT, **CLAMP},
           params={"table": ("int32",)}, shape=shape, bounds=bounds, elementwise=True)
