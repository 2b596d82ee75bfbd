import math

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    a = node.attrs
    x, mask, y = (model.tensors[t] for t in (*node.inputs, node.outputs[0]))
    tokens, d = x.shape[-2:]
    lo, hi = y.qrange()
    args = [tensor("x", "in", model, x.name), tensor("mask", "in", model, mask.name),
            *ints(rows=math.prod(x.shape[:-2]), tokens=tokens, d=d, in_zp=a["input_zp"], out_zp=a["output_zp"], lo=lo,
                  hi=hi),
            tensor("y", "out", model, y.name)]
    return [KernelCall("mean_pool", (x.dtype, mask.dtype, y.dtype), tuple(args))]
