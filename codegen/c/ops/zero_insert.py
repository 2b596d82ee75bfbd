from ..calls import KernelCall, ints, tensor


def calls(model, node):
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    (sh, sw) = node.attrs["stride"]
    args = [tensor("x", "in", model, x.name), *ints(h=x.shape[0], w=x.shape[1], c=x.shape[2], sh=sh, sw=sw,
                                                     pad_value=node.attrs["pad_value"]),
            tensor("y", "out", model, y.name), *ints(oh=y.shape[0], ow=y.shape[1])]
    return [KernelCall("zero_insert", (x.dtype,), tuple(args))]
