import math

from ..calls import KernelCall, const, ints, tensor


def calls(model, node):
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    args = [tensor("x", "in", model, x.name), const("exp_table", model, node.params["exp_table"]),
            *ints(rows=math.prod(x.shape[:-1]), d=x.shape[-1]), tensor("y", "out", model, y.name)]
    return [KernelCall("tflite_softmax", (x.dtype, y.dtype), tuple(args))]
