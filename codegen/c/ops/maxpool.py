from ..calls import KernelCall, ints, tensor


def calls(model, node):
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    args = [tensor("x", "in", model, x.name), *ints(h=x.shape[0], w=x.shape[1], c=x.shape[2]),
            *ints(kh=a["kernel"][0], kw=a["kernel"][1], sh=a["stride"][0], sw=a["stride"][1], pt=a["padding"][0],
                  pl=a["padding"][1], dh=a["dilation"][0], dw=a["dilation"][1]),
            tensor("y", "out", model, y.name), *ints(oh=y.shape[0], ow=y.shape[1])]
    return [KernelCall("maxpool", (x.dtype,), tuple(args))]
