"""quantize (graph boundary, the only op that reads floats): ``q = clamp(rint(x / scale) + zp, qmin, qmax)``.

``x`` and ``scale`` are taken to float64 and divided there; ``rint`` rounds half to even. The result is
then permuted by ``perm`` (e.g. CHW -> HWC). Generated C receives already-quantized inputs.
"""

import numpy as np

from ..work import per_element
from .transpose import batched_perm


def quantize_array(x, info):
    lo, hi = info.qrange()
    q = np.rint(np.asarray(x, dtype=np.float64) / np.float64(np.float32(info.scale))) + info.zero_point
    return np.clip(q, lo, hi).astype(info.dtype)


def run(model, node, inputs, ctx):
    info = model.tensors[node.outputs[0]]
    x = np.asarray(inputs[0])
    perm = node.attrs["perm"]
    if perm:
        x = np.transpose(x, batched_perm(perm))
    return np.ascontiguousarray(quantize_array(x, info))


work = per_element(int32_elementwise=1)
