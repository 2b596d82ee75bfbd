import math

from ..calls import KernelCall, const, ints, tensor


def calls(model, node):
    """The ``value`` array copied into the output (the ``copy`` kernel's loop, with a const source)."""
    value, y = model.param(node, "value"), model.tensors[node.outputs[0]]
    count = math.prod(y.shape)
    args = [const("x", model, node.params["value"]),
            *ints(outer=1, count=count, src_stride=count, dst_stride=count, dst_offset=0),
            tensor("y", "out", model, y.name)]
    return [KernelCall("constant", (str(value.dtype), y.dtype), tuple(args))]
