import math

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    args = [tensor("x", "in", model, x.name),
            *ints(n=math.prod(y.shape), act_min=node.attrs["act_min"], act_max=node.attrs["act_max"]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("clamp", (x.dtype,), tuple(args))]
