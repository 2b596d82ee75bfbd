import math

from ..calls import KernelCall, const, ints, tensor


def calls(model, node):
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    args = [tensor("x", "in", model, x.name), *ints(multiplier=node.attrs["multiplier"],
                                                    left_shift=node.attrs["left_shift"]),
            const("exp_lut", model, node.params["exp_lut"]),
            const("reciprocal_lut", model, node.params["reciprocal_lut"]),
            *ints(rows=math.prod(x.shape[:-1]), d=x.shape[-1]), tensor("y", "out", model, y.name)]
    return [KernelCall("tflite_softmax16", (x.dtype, y.dtype), tuple(args))]
