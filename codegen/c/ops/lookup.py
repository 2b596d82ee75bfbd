import math

from ..calls import KernelCall, const, ints, tensor


def calls(model, node):
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    table = model.param(node, "table")
    args = [tensor("x", "in", model, x.name), const("table", model, node.params["table"]),
            *ints(n=math.prod(y.shape), input_min=node.attrs["input_min"]), tensor("y", "out", model, y.name)]
    return [KernelCall("lookup", (x.dtype, str(table.dtype), y.dtype), tuple(args))]
