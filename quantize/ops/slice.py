"""slice: elements ``start:stop`` of one axis."""

from ._attrs import AXIS, INT
from ._opdef import OpDef


def shape(attrs, in_shapes, params):
    (shape,) = in_shapes
    axis, start, stop = attrs["axis"], attrs["start"], attrs["stop"]
    if not (0 <= axis < len(shape) and 0 <= start < stop <= shape[axis]):
        raise ValueError(f"slice axis={axis} [{start}:{stop}] does not fit shape {tuple(shape)}")
    return tuple(stop - start if i == axis else d for i, d in enumerate(shape))


OP = OpDef(name="slice", summary="a contiguous range of one axis (data movement)",
           definition="docs/transformer-ops.md#embedding-constant-slice-mean_pool", n_inputs=1,
           attrs={"axis": AXIS, "start": INT, "stop": INT}, shape=shape)
