from ..calls import KernelCall, ints, tensor


def calls(model, node):
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    sh, sw = node.attrs["scale"]
    args = [tensor("x", "in", model, x.name), *ints(h=x.shape[0], w=x.shape[1], c=x.shape[2], sh=sh, sw=sw),
            tensor("y", "out", model, y.name)]
    return [KernelCall("resize_nearest", (x.dtype,), tuple(args))]
