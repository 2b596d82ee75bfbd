import math

from ..calls import KernelCall, ints, tensor


def softmax_call(model, node, exp_constants: dict, out_constant: dict) -> list[KernelCall]:
    """The one kernel call of a softmax op (templates/generic/_softmax.c.j2): rows of ``width`` keys, the mask
    sentinel (the input's lowest code), the exp's constants and the output's (``out_shift`` or ``code_bits``)."""
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    args = [tensor("x", "in", model, x.name),
            *ints(rows=math.prod(x.shape[:-1]), width=x.shape[-1], masked=node.attrs["masked"], sentinel=x.qrange()[0],
                  **exp_constants, **out_constant),
            tensor("y", "out", model, y.name)]
    return [KernelCall(node.op, (x.dtype, y.dtype), tuple(args))]


def calls(model, node):
    a = node.attrs
    return softmax_call(model, node, {"x0": a["x0"], "n": a["n"]},
                        {"out_shift": 32 - model.tensors[node.outputs[0]].bits})
