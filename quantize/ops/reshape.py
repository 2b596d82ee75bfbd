"""reshape: the same elements in the same order under another shape."""

import math

from ._attrs import Attr, INT32_RANGE
from ._opdef import OpDef


def shape(attrs, in_shapes, params):
    out = tuple(attrs["shape"])
    if math.prod(in_shapes[0]) != math.prod(out):
        raise ValueError(f"reshape {in_shapes[0]} -> {out} changes the element count")
    return out


OP = OpDef(name="reshape", summary="same elements, another shape (data movement)",
           definition="docs/numerics.md#reshape", n_inputs=1, attrs={"shape": Attr("ints", 1, INT32_RANGE[1])},
           shape=shape, elementwise=True)
