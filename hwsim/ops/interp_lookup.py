"""interp_lookup: the table value of the input's segment plus the interpolated step, rounded half up by an
arithmetic shift, clamped (quantize/ops/interp_lookup.py). numpy in int64 is its own reference (every
intermediate is proven below 2^31)."""

import numpy as np

from intonly.quantize.ops.interp_lookup import interpolate

from ..work import per_element


def run(model, node, inputs, ctx):
    a = node.attrs
    y = interpolate(inputs[0], model.param(node, "table"), a["input_min"], a["segment_shift"])
    out = np.clip(y, a["act_min"], a["act_max"])
    ctx.trace.clamp_events = int(np.count_nonzero(out != y))
    return out.astype(model.tensors[node.outputs[0]].dtype)


work = per_element(int32_elementwise=6)   # index, remainder, step, product, shift, clamp
