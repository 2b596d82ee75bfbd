"""add (TFLite ADD): each input ``s_i = R((x_i - zp_i) << left_shift; b_i, c_i)``, then
``y = clamp(R(s_a + s_b; b_o, c_o) + zp_o)``; ``multipliers``/``shifts`` are (input a, input b, output)."""

from ..bounds import Bound, span
from ._attrs import Attr, CLAMP, INPUT_ZPS, INT
from ._opdef import OpDef


def shape(attrs, in_shapes, params):
    a, b = in_shapes
    if tuple(a) != tuple(b):
        raise ValueError(f"add inputs differ in shape: {a} vs {b}")
    return tuple(a)


def bounds(model, node, producers=None):
    a = node.attrs
    result, scaled = [], 0
    for t, zp, mult, shift in zip(node.inputs, a["input_zps"], a["multipliers"], a["shifts"]):
        shifted = span(model, t, zp) << a["left_shift"]
        result.append(Bound(f"input {t!r} << left_shift", shifted))
        scaled += ((shifted * mult) >> shift) + 1
    return result + [Bound("sum of the rescaled inputs", scaled)]


OP = OpDef(
    name="add", summary="elementwise sum of two tensors at a common intermediate scale (TFLite ADD)",
    definition="docs/numerics.md#add", n_inputs=2,
    attrs={"input_zps": INPUT_ZPS, "left_shift": Attr("int", 0, 30),
           "multipliers": Attr("ints", 0, 2**31 - 1, length=3), "shifts": Attr("ints", 1, 62, length=3),
           "output_zp": INT, **CLAMP},
    shape=shape, bounds=bounds, elementwise=True)
