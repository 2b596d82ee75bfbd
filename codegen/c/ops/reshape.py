import math

from ..calls import KernelCall, ints, tensor


def copy_call(model, src: str, dst: str, count: int, dst_offset: int = 0, outer: int = 1, src_stride: int = 0,
              dst_stride: int = 0) -> KernelCall:
    """``outer`` blocks of ``count`` elements: y[o*dst_stride + dst_offset + i] = x[o*src_stride + i]."""
    args = [tensor("x", "in", model, src),
            *ints(outer=outer, count=count, src_stride=src_stride or count, dst_stride=dst_stride or count,
                  dst_offset=dst_offset),
            tensor("y", "out", model, dst)]
    return KernelCall("copy", (model.tensors[src].dtype,), tuple(args))


def calls(model, node):
    return [copy_call(model, node.inputs[0], node.outputs[0], math.prod(model.tensors[node.inputs[0]].shape))]
