import math

from ..calls import KernelCall, const, ints, tensor


def calls(model, node):
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    args = [tensor("x", "in", model, x.name), const("table", model, node.params["table"]),
            *ints(n=math.prod(y.shape), input_min=a["input_min"], shift=a["segment_shift"], act_min=a["act_min"],
                  act_max=a["act_max"]), tensor("y", "out", model, y.name)]
    return [KernelCall("interp_lookup", (x.dtype, y.dtype), tuple(args))]
