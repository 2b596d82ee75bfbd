import math

from ..calls import KernelCall, ints, tensor
from ..shared_calls import exp_range


def calls(model, node):
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    q_max, norm_bits = exp_range(a)
    args = [tensor("x", "in", model, x.name),
            *ints(rows=math.prod(x.shape[:-1]), width=x.shape[-1], x0=a["x0"], n=a["n"], q_max=q_max,
                  norm_bits=norm_bits, sig_bits=a["sig_bits"],
                  mult=a["multiplier"], shift=a["shift"], out_zp=a["output_zp"], act_min=a["act_min"],
                  act_max=a["act_max"]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("shiftgelu", (x.dtype, y.dtype), tuple(args))]
