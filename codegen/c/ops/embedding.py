import math

from ..calls import KernelCall, const, ints, tensor


def calls(model, node):
    ids, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    w = model.param(node, "weight")
    args = [tensor("ids", "in", model, ids.name), const("wt", model, node.params["weight"]),
            *ints(n=math.prod(ids.shape), vocab=w.shape[0], d=w.shape[1]), tensor("y", "out", model, y.name)]
    return [KernelCall("embedding", (ids.dtype, str(w.dtype), y.dtype), tuple(args))]
