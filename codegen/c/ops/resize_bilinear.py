from intonly.quantize.ops.resize_bilinear import scale_10

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    steps = [scale_10(x.shape[i], y.shape[i], a["align_corners"]) for i in range(2)]
    args = [tensor("x", "in", model, x.name), *ints(h=x.shape[0], w=x.shape[1], c=x.shape[2], step_h=steps[0],
                                                     step_w=steps[1], half_pixel=a["half_pixel_centers"]),
            tensor("y", "out", model, y.name), *ints(oh=y.shape[0], ow=y.shape[1])]
    return [KernelCall("resize_bilinear", (x.dtype,), tuple(args))]
