from ..calls import KernelCall, const, ints, tensor, weighted_dtypes


def calls(model, node):
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    w = model.param(node, "weight")
    args = [tensor("x", "in", model, x.name), *ints(h=x.shape[0], w=x.shape[1], c=x.shape[2]),
            const("wt", model, node.params["weight"]), *ints(oc=w.shape[0], kh=w.shape[1], kw=w.shape[2],
                                                            icg=w.shape[3]),
            const("bias", model, node.params["bias"]), const("mult", model, node.params["multiplier"]),
            const("shift", model, node.params["shift"]),
            *ints(sh=a["stride"][0], sw=a["stride"][1], pt=a["padding"][0], pl=a["padding"][1], dh=a["dilation"][0],
                  dw=a["dilation"][1], groups=a["groups"], in_zp=a["input_zp"], out_zp=a["output_zp"],
                  act_min=a["act_min"], act_max=a["act_max"]),
            tensor("y", "out", model, y.name), *ints(oh=y.shape[0], ow=y.shape[1])]
    return [KernelCall("conv2d", weighted_dtypes(model, node, x, y), tuple(args))]
