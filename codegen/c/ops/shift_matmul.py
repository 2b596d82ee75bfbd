import math

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    a = node.attrs
    xa, xb, y = (model.tensors[t] for t in (*node.inputs, node.outputs[0]))
    m, k = xa.shape[-2:]
    args = [tensor("a", "in", model, xa.name), tensor("b", "in", model, xb.name),
            *ints(batch=math.prod(xa.shape[:-2]), m=m, k=k, n=y.shape[-1], z=1 << a["code_bits"], zp=a["input_zp"],
                  mult=a["multiplier"], shift=a["shift"], out_zp=a["output_zp"], act_min=a["act_min"],
                  act_max=a["act_max"]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("shift_matmul", (xa.dtype, xb.dtype, y.dtype), tuple(args))]
