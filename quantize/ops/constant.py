"""constant: a stored integer tensor (a learned position table, a class token), copied to the output."""

from ..names import INT_DTYPES
from ._opdef import OpDef


def shape(attrs, in_shapes, params):
    return tuple(params["value"])


OP = OpDef(name="constant", summary="a stored integer tensor",
           definition="docs/transformer-ops.md#embedding-constant-slice-mean_pool", n_inputs=0, attrs={},
           params={"value": INT_DTYPES}, shape=shape, copies_param="value")
