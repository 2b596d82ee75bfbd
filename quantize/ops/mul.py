"""mul: ``y = clamp(R((a - za) * (b - zb); multiplier, shift) + output_zp, act_min, act_max)`` elementwise, with
``R`` the model's dyadic requantization (docs/numerics.md) of ``s_a * s_b / s_y``. ``b`` is either ``a``'s shape
or, after dropping its leading 1s, equal to ``a``'s trailing dimensions (a per-channel gate ``(1, 1, C)`` on an
``(H, W, C)`` image, as squeeze-and-excitation blocks multiply): element ``i`` of a sample reads ``b[i mod |b|]``.
The product is int32: the validator proves ``max|a - za| * max|b - zb| < 2^31`` for every input the two bit
widths allow (8-bit operands: at most 255 * 255). The same structure as TFLM's int8 MUL
(``tensorflow/lite/kernels/internal/reference/integer_ops/mul.h``), which multiplies the zero-point-adjusted
operands in int32 and requantizes once."""

from ..bounds import Bound, span
from ._attrs import INPUT_ZPS, REQUANT1
from ._opdef import OpDef


def shape(attrs, in_shapes, params):
    a, b = (tuple(s) for s in in_shapes)
    tail = b
    while len(tail) > 1 and tail[0] == 1:
        tail = tail[1:]
    if b != a and (len(tail) > len(a) or a[len(a) - len(tail):] != tail):
        raise ValueError(f"mul operand b of shape {b} neither matches a {a} nor broadcasts over a's leading axes")
    return a


def bounds(model, node, producers=None):
    za, zb = node.attrs["input_zps"]
    return [Bound("(a - za) * (b - zb)", span(model, node.inputs[0], za) * span(model, node.inputs[1], zb))]


OP = OpDef(name="mul", summary="elementwise product of two tensors (b broadcast over a's leading axes), requantized",
           definition="docs/ops.md#mul", n_inputs=2, attrs={"input_zps": INPUT_ZPS, **REQUANT1}, shape=shape,
           bounds=bounds)
