"""What each IR op costs one sample, in the op classes of ``quantize.names.OP_CLASSES``: each hwsim/ops/<op>.py
has a ``work(model, node)`` row built from the helpers here.

The counts are a function of the graph alone (shapes, groups, attributes), never of the data, so an estimate
needs no input. They are derived from the exact op definitions (docs/numerics.md, docs/transformer-ops.md) and
the kernels that implement them (hwsim/ops/, codegen/c/templates/generic/):

* ``REQUANT_OPS`` = 4 elementwise operations per requantized element: the int64 product ``acc * b``, the rounding
  add and shift, the output zero-point add, the clamp.
* A MAC (multiply-accumulate of 8- or 16-bit operands into int32) is counted once, in the class of the layer:
  ``int8_conv`` (groups = 1), ``int8_depthwise`` (groups > 1), ``int8_dense`` (dense, matmul). Bias adds are
  1 elementwise op per output. ``shift_matmul``'s products are shifts (the log2 codes), one per MAC.
* Contiguous data movement (reshape, concat, slice, embedding rows: block copies) does no arithmetic: it costs
  only its bytes, in the memory term of hwsim/cost.py. A transpose (strided gather), the attention mask
  (compare and select) and the graph-boundary quantize / dequantize are 1 elementwise op per output element.
* Softmax and GELU families: per element the shift/exp/divide work of their definition; ``t // x0`` (the
  integer exp's range reduction) is a division per element, as the kernels perform it.
* LayerNorm: per element sum, centre, square-accumulate, normalise-multiply plus the requant; per row the mean
  and normalisation divisions and the exact integer square root (``ISQRT_DIVIDES`` Newton divisions, the
  worst case for a 62-bit variance).

:func:`op_work` refuses an op without a row.
"""

from __future__ import annotations

import math
from collections import Counter

from intonly.quantize.errors import UnsupportedOpError
from intonly.quantize.ir import IntModel, Node
from intonly.quantize.names import DIVIDE, EXP, INT32_ELEMENTWISE, OP_CLASSES, SHIFT

REQUANT_OPS = 4
ISQRT_DIVIDES = 32


def elements(model: IntModel, node: Node) -> int:
    return math.prod(model.tensors[node.outputs[0]].shape)


def rows(model: IntModel, node: Node) -> tuple[int, int]:
    shape = model.tensors[node.outputs[0]].shape
    return math.prod(shape[:-1]), shape[-1]


def valid_taps(size: int, out: int, k: int, stride: int, pad: int, dilation: int) -> int:
    """Along one axis: the (output position, kernel tap) pairs that land inside the input, not in padding."""
    return sum(1 for o in range(out) for t in range(k) if 0 <= o * stride - pad + t * dilation < size)


def window(divide: bool):
    """A pooling row: per output the window's adds or compares and the clamp, and one division with ``divide``."""
    def work(model, node):
        kh, kw = node.attrs["kernel"]
        n = elements(model, node)
        return {INT32_ELEMENTWISE: n * (kh * kw + 1), DIVIDE: n if divide else 0}
    return work


def adaptive_window(model, node):
    """adaptive_avgpool: one add per tap of every (uneven) window, the clamp and one division per output."""
    h, w, c = model.tensors[node.inputs[0]].shape
    oh, ow, _ = model.tensors[node.outputs[0]].shape

    def taps(size, out):
        return sum(((o + 1) * size + out - 1) // out - (o * size) // out for o in range(out))
    n = elements(model, node)
    return {INT32_ELEMENTWISE: taps(h, oh) * taps(w, ow) * c + n, DIVIDE: n}


def per_element(**per):
    """A row whose counts are ``per[class]`` operations for every output element."""
    unknown = set(per) - set(OP_CLASSES)
    if unknown:
        raise ValueError(f"work row names op classes {sorted(unknown)} outside quantize.names.OP_CLASSES")
    return lambda model, node: {cls: k * elements(model, node) for cls, k in per.items()}


def softmax(shift: int, exp: int, elementwise: int, divides_per_element: int):
    """A softmax row: per element the given shifts, exps, elementwise ops and divisions, and one division per row
    (the normalisation)."""
    def work(model, node):
        n_rows, length = rows(model, node)
        n = n_rows * length
        return {SHIFT: shift * n, EXP: exp * n, INT32_ELEMENTWISE: elementwise * n,
                DIVIDE: divides_per_element * n + n_rows}
    return work


def no_arithmetic(model, node):
    """Block copies and constants: bytes only (charged by the memory term of hwsim/cost.py)."""
    return {}


def op_work(model: IntModel, node: Node) -> Counter:
    """Operations per sample of ``node``, by op class (classes with a zero count omitted): the ``work`` row of
    hwsim/ops/<op>.py."""
    from .ops import executor
    module = executor(node.op)
    if module is None:
        raise UnsupportedOpError([(node.name, f"op {node.op!r} has no hwsim kernel and work row (hwsim/ops/)")])
    return Counter({k: int(v) for k, v in module.work(model, node).items() if v})
