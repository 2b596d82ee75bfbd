"""quantize (graph boundary, the only op that reads floats): ``q = clamp(round(x / scale) + zp, qmin, qmax)``.

The division and the rounding are the ``form``'s (quantize/ops/quantize.py): float64 and half to even (intonly),
float32 and half away from zero (TFLite), float32 and half to even (ONNX). The result is then permuted by ``perm``
(e.g. CHW -> HWC). Generated C receives already-quantized inputs.
"""

import numpy as np

from intonly.quantize.ops.quantize import FORMS

from ..work import per_element
from .transpose import batched_perm


def quantize_array(x, info, form: int):
    lo, hi = info.qrange()
    if form == FORMS["intonly"]:
        q = np.rint(np.asarray(x, dtype=np.float64) / np.float64(np.float32(info.scale)))
    else:
        d = np.asarray(x, dtype=np.float32) / np.float32(info.scale)
        # half away from zero: |d| + 0.5 is exact in float64 for a float32 d
        q = np.rint(d) if form == FORMS["onnx"] else np.copysign(np.floor(np.abs(d.astype(np.float64)) + 0.5), d)
    return np.clip(q + info.zero_point, lo, hi).astype(info.dtype)


def run(model, node, inputs, ctx):
    info = model.tensors[node.outputs[0]]
    x = np.asarray(inputs[0])
    perm = node.attrs["perm"]
    if perm:
        x = np.transpose(x, batched_perm(perm))
    return np.ascontiguousarray(quantize_array(x, info, node.attrs["form"]))


work = per_element(int32_elementwise=1)
