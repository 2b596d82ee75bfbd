import math

from ..shared_calls import copy_call


def calls(model, node):
    """One strided block copy per input: ``outer`` rows of the input's slice of the output row."""
    axis = node.attrs["axis"]
    out_shape = model.tensors[node.outputs[0]].shape
    outer = math.prod(out_shape[:axis])
    row = math.prod(out_shape[axis:])
    offset, result = 0, []
    for t in node.inputs:
        part = math.prod(model.tensors[t].shape[axis:])
        result.append(copy_call(model, t, node.outputs[0], part, offset, outer, part, row))
        offset += part
    return result
