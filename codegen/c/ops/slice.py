import math

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    """x[..., start:stop, ...] as ``outer`` contiguous blocks: each one ``(stop - start) * inner`` elements taken
    at ``start * inner`` of an input block of ``shape[axis] * inner``."""
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    axis = a["axis"]
    inner = math.prod(x.shape[axis + 1:])
    args = [tensor("x", "in", model, x.name),
            *ints(outer=math.prod(x.shape[:axis]), count=(a["stop"] - a["start"]) * inner,
                  src_stride=x.shape[axis] * inner, src_offset=a["start"] * inner),
            tensor("y", "out", model, y.name)]
    return [KernelCall("slice", (x.dtype,), tuple(args))]
