"""Kernel calls shared by several IR ops (each op's own module is ``codegen/c/ops/<op>.py``).

* :func:`copy_call` — the ``copy`` kernel (templates/generic/copy.c.j2): reshape, concat.
* :func:`softmax_call` — the softmax kernel (templates/generic/_softmax.c.j2): shiftmax, iexp_softmax, log2_softmax.
* :func:`exp_range` — the integer exp's range attributes: the softmax ops and shiftgelu.
"""

import math

from .calls import KernelCall, ints, tensor


def copy_call(model, src: str, dst: str, count: int, dst_offset: int = 0, outer: int = 1, src_stride: int = 0,
              dst_stride: int = 0) -> KernelCall:
    """``outer`` blocks of ``count`` elements: y[o*dst_stride + dst_offset + i] = x[o*src_stride + i]."""
    args = [tensor("x", "in", model, src),
            *ints(outer=outer, count=count, src_stride=src_stride or count, dst_stride=dst_stride or count,
                  dst_offset=dst_offset),
            tensor("y", "out", model, dst)]
    return KernelCall("copy", (model.tensors[src].dtype,), tuple(args))


def exp_range(attrs) -> tuple[int, int]:
    """(q_max, norm_bits); log2_softmax has no normalisation (its norm_bits slot is unused: 0)."""
    return attrs["q_max"], attrs.get("norm_bits", 0)


def softmax_call(model, node, exp_constants: tuple[str, ...]) -> list[KernelCall]:
    """The one kernel call of a softmax op (templates/generic/_softmax.c.j2): rows of ``width`` keys, the mask
    sentinel (the input's lowest code), the exp's constants (``x0``, ``n``, ``q_max`` and ``exp_constants``), then
    ``norm_bits`` and ``out_shift`` (linear outputs) or ``code_bits`` (log2)."""
    a = node.attrs
    x, y = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    q_max, norm_bits = exp_range(a)
    out = {"code_bits": a["code_bits"]} if node.op == "log2_softmax" else \
        {"norm_bits": norm_bits, "out_shift": norm_bits + 1 - y.bits}
    args = [tensor("x", "in", model, x.name),
            *ints(rows=math.prod(x.shape[:-1]), width=x.shape[-1], masked=a["masked"], sentinel=x.qrange()[0],
                  x0=a["x0"], n=a["n"], q_max=q_max, **{k: a[k] for k in exp_constants}, **out),
            tensor("y", "out", model, y.name)]
    return [KernelCall(node.op, (x.dtype, y.dtype), tuple(args))]
