"""clamp: ``y = min(max(x, act_min), act_max)`` elementwise (a ReLU that could not be fused into a requant)."""

import numpy as np
from ..work import per_element


def run(model, node, inputs, ctx):
    x = inputs[0]
    lo, hi = node.attrs["act_min"], node.attrs["act_max"]
    ctx.trace.clamp_events = int(np.count_nonzero((x < lo) | (x > hi)))
    return np.clip(x, lo, hi).astype(model.tensors[node.outputs[0]].dtype)


work = per_element(int32_elementwise=1)
