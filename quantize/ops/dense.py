"""dense: ``acc = bias[n] + sum_k w[n, k] * (x[k] - input_zp)`` over the last axis, one requant per output
feature, the clamp."""

import math

from ._attrs import REQUANT
from ._opdef import OpDef
from ._shapes import of_rank
from ._weighted import WEIGHTED_PARAMS, accumulator_bounds


def shape(attrs, in_shapes, params):
    (x,) = in_shapes
    n, wk = of_rank(params["weight"], 2, "dense weight (N, K)")
    if wk != x[-1]:
        raise ValueError(f"weight {params['weight']} does not fit input of {x[-1]} features")
    return tuple(x[:-1]) + (n,)


def macs(model, node) -> int:
    return int(model.param(node, "weight").size) * math.prod(model.tensors[node.inputs[0]].shape[:-1])


OP = OpDef(
    name="dense", summary="fully connected layer over the last axis, int32 accumulator, per-channel requant",
    definition="docs/numerics.md#dense", n_inputs=1, attrs=dict(REQUANT), params=WEIGHTED_PARAMS, shape=shape,
    macs=macs, bounds=accumulator_bounds)
