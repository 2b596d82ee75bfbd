import math

from ..calls import KernelCall, const, ints, tensor, weighted_dtypes


def calls(model, node):
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    w = model.param(node, "weight")
    args = [tensor("x", "in", model, x.name), const("wt", model, node.params["weight"]),
            *ints(rows=math.prod(x.shape[:-1]), n_out=w.shape[0], k=w.shape[1]),
            const("bias", model, node.params["bias"]), const("mult", model, node.params["multiplier"]),
            const("shift", model, node.params["shift"]),
            *ints(in_zp=a["input_zp"], out_zp=a["output_zp"], act_min=a["act_min"], act_max=a["act_max"]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("dense", weighted_dtypes(model, node, x, y), tuple(args))]
