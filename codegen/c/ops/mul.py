import math

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    at = node.attrs
    a, b, y = (model.tensors[t] for t in (*node.inputs, node.outputs[0]))
    args = [tensor("a", "in", model, a.name), tensor("b", "in", model, b.name),
            *ints(n=math.prod(y.shape), nb=math.prod(b.shape), za=at["input_zps"][0], zb=at["input_zps"][1],
                  mult=at["multiplier"], shift=at["shift"], out_zp=at["output_zp"], act_min=at["act_min"],
                  act_max=at["act_max"]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("mul", (a.dtype, b.dtype, y.dtype), tuple(args))]
