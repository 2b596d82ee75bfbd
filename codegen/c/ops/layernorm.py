import math

from ..calls import KernelCall, const, ints, tensor


def calls(model, node):
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    channels = x.shape[-1]
    args = [tensor("x", "in", model, x.name), const("wt", model, node.params["weight"]),
            const("bias", model, node.params["bias"]), const("mult", model, node.params["multiplier"]),
            const("shift", model, node.params["shift"]),
            *ints(rows=math.prod(x.shape) // channels, c=channels, k=a["norm_shift"], out_zp=a["output_zp"],
                  act_min=a["act_min"], act_max=a["act_max"]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("layernorm", (x.dtype, y.dtype), tuple(args))]
