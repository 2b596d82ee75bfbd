from quantize.errors import UnsupportedOpError

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    if len(x.shape) != 3:
        raise UnsupportedOpError([(node.name, f"transpose of a rank-{len(x.shape)} tensor (C kernel: rank 3)")])
    p0, p1, p2 = node.attrs["perm"]
    args = [tensor("x", "in", model, x.name), *ints(d0=x.shape[0], d1=x.shape[1], d2=x.shape[2], p0=p0, p1=p1, p2=p2),
            tensor("y", "out", model, y.name)]
    return [KernelCall("transpose", (x.dtype,), tuple(args))]
