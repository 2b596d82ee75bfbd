import math

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    args = [tensor("x", "in", model, x.name),
            *ints(n=math.prod(y.shape), in_zp=a["input_zp"], out_zp=a["output_zp"], act_min=a["act_min"],
                  act_max=a["act_max"]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("negate", (x.dtype, y.dtype), tuple(args))]
