from ..calls import KernelCall, ints, tensor


def calls(model, node):
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    args = [tensor("x", "in", model, x.name), *ints(h=x.shape[0], w=x.shape[1], c=x.shape[2]),
            *ints(act_min=a["act_min"], act_max=a["act_max"]), tensor("y", "out", model, y.name),
            *ints(oh=y.shape[0], ow=y.shape[1])]
    return [KernelCall("adaptive_avgpool", (x.dtype,), tuple(args))]
