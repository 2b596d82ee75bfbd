"""negate: ``y = clamp(output_zp - (x - input_zp), act_min, act_max)`` elementwise, in int32, with no rounding:
the real value ``-scale * (x - input_zp)`` on the input's scale. With the same bits in and out and
``output_zp = -1 - input_zp`` no value clamps (``y = -1 - x``, the bitwise complement). The validator proves
``|output_zp| + max|x - input_zp| < 2^31`` for every input the input's bits allow, so the int32 difference
cannot overflow; the clamp saturates to ``[act_min, act_max]``, inside the output's range."""

from ..bounds import Bound, span
from ._attrs import REQUANT
from ._opdef import OpDef
from ._shapes import same_as_input


def bounds(model, node, producers=None):
    a = node.attrs
    return [Bound("output_zp - (x - input_zp)", abs(a["output_zp"]) + span(model, node.inputs[0], a["input_zp"]))]


OP = OpDef(name="negate", summary="elementwise negation on the input's scale (exact, no requant)",
           definition="docs/ops.md#negate", n_inputs=1, attrs=dict(REQUANT), shape=same_as_input, bounds=bounds,
           elementwise=True)
