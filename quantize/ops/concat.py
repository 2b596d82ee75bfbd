"""concat: the inputs joined along ``axis`` (they share the output's quantization; lowering requantizes any that
do not)."""

from ._attrs import AXIS
from ._opdef import OpDef


def shape(attrs, in_shapes, params):
    axis = attrs["axis"]
    first = in_shapes[0]
    if not 0 <= axis < len(first):
        raise ValueError(f"concat axis {axis} is outside the inputs' rank {len(first)}")
    for s in in_shapes[1:]:
        if len(s) != len(first) or any(x != y for i, (x, y) in enumerate(zip(s, first)) if i != axis):
            raise ValueError(f"concat inputs {in_shapes} differ outside axis {axis}")
    return tuple(sum(s[axis] for s in in_shapes) if i == axis else d for i, d in enumerate(first))


OP = OpDef(name="concat", summary="join tensors along one axis (data movement)", definition="docs/numerics.md#concat",
           n_inputs=None, attrs={"axis": AXIS}, shape=shape)
