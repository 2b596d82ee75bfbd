import math

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    a = node.attrs
    xa, xb, y = (model.tensors[t] for t in (*node.inputs, node.outputs[0]))
    m, k = xa.shape[-2:]
    n = y.shape[-1]
    args = [tensor("a", "in", model, xa.name), tensor("b", "in", model, xb.name),
            *ints(batch=math.prod(xa.shape[:-2]), m=m, k=k, n=n, transpose_b=a["transpose_b"], zpa=a["input_zps"][0],
                  zpb=a["input_zps"][1], mult=a["multiplier"], shift=a["shift"], out_zp=a["output_zp"],
                  act_min=a["act_min"], act_max=a["act_max"]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("matmul", (xa.dtype, xb.dtype, y.dtype), tuple(args))]
