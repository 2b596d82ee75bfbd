"""transpose: permutes the per-sample axes (pure data movement)."""

import numpy as np
from ..work import per_element


def batched_perm(perm):
    return (0,) + tuple(p + 1 for p in perm)


def run(model, node, inputs, ctx):
    return np.ascontiguousarray(np.transpose(inputs[0], batched_perm(node.attrs["perm"])))


work = per_element(int32_elementwise=1)  # a strided gather: one address step per element
