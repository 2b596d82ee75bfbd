import math

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    args = [tensor("x", "in", model, x.name),
            *ints(count=math.prod(x.shape), b_int=a["b_int"], c_int=a["c_int"], erf_shift=a["erf_shift"],
                  one_int=a["one_int"], mult=a["multiplier"], shift=a["shift"], out_zp=a["output_zp"],
                  act_min=a["act_min"], act_max=a["act_max"]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("igelu", (x.dtype, y.dtype), tuple(args))]
