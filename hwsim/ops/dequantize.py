"""dequantize (graph boundary): ``real = float32(scale) * (q - zp)`` as float32, then permuted by ``perm``."""

import numpy as np

from ..work import per_element
from .transpose import batched_perm


def run(model, node, inputs, ctx):
    info = model.tensors[node.inputs[0]]
    x = (inputs[0].astype(np.float32) - np.float32(info.zero_point)) * np.float32(info.scale)
    perm = node.attrs["perm"]
    return np.ascontiguousarray(np.transpose(x, batched_perm(perm))) if perm else x


work = per_element(int32_elementwise=1)
