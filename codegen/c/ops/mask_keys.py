import math

from ..calls import KernelCall, ints, tensor


def calls(model, node):
    scores, mask, y = (model.tensors[t] for t in (*node.inputs, node.outputs[0]))
    keys = scores.shape[-1]
    args = [tensor("scores", "in", model, scores.name), tensor("mask", "in", model, mask.name),
            *ints(rows=math.prod(scores.shape) // keys, n=keys, qmin=scores.qrange()[0]),
            tensor("y", "out", model, y.name)]
    return [KernelCall("mask_keys", (scores.dtype, mask.dtype), tuple(args))]
