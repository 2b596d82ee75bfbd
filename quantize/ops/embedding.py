"""embedding: row ``ids[i]`` of the integer weight table for every id (a gather)."""

from ..names import WEIGHT_DTYPES
from ._opdef import OpDef
from ._shapes import of_rank


def shape(attrs, in_shapes, params):
    (ids,) = in_shapes
    of_rank(params["weight"], 2, "embedding weight")
    return tuple(ids) + (params["weight"][1],)


OP = OpDef(name="embedding", summary="table lookup: one weight row per integer id",
           definition="docs/transformer-ops.md#embedding-constant-slice-mean_pool", n_inputs=1, attrs={},
           params={"weight": WEIGHT_DTYPES}, shape=shape, copies_param="weight")
