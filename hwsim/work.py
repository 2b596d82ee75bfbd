"""What each IR op costs one sample, in the op classes of ``targets.spec.OP_CLASSES``: a table, one row per op.

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

A new op adds one row to :data:`WORK`; :func:`op_work` refuses an op without one.
"""

from __future__ import annotations

import math
from collections import Counter

from intonly.quantize.errors import UnsupportedOpError
from intonly.quantize.ir import IntModel, Node

REQUANT_OPS = 4
ISQRT_DIVIDES = 32


def _elements(model: IntModel, node: Node) -> int:
    return math.prod(model.tensors[node.outputs[0]].shape)


def _rows(model: IntModel, node: Node) -> tuple[int, int]:
    shape = model.tensors[node.outputs[0]].shape
    return math.prod(shape[:-1]), shape[-1]


def _valid_taps(size: int, out: int, k: int, stride: int, pad: int, dilation: int) -> int:
    """Along one axis: the (output position, kernel tap) pairs that land inside the input, not in padding."""
    return sum(1 for o in range(out) for t in range(k) if 0 <= o * stride - pad + t * dilation < size)


def _conv(model, node):
    """Executed MACs: the kernels skip taps in the padding, so only in-bounds taps count (this matters for
    small feature maps); plus one window step (address and padding test) per tap and the requant per output."""
    cls = "int8_depthwise" if node.attrs["groups"] > 1 else "int8_conv"
    oc, kh, kw, icg = model.param(node, "weight").shape
    h, w, _ = model.tensors[node.inputs[0]].shape
    oh, ow, _ = model.tensors[node.outputs[0]].shape
    (sh, sw), (dh, dw), (pt, pl, _, _) = node.attrs["stride"], node.attrs["dilation"], node.attrs["padding"]
    taps = _valid_taps(h, oh, kh, sh, pt, dh) * _valid_taps(w, ow, kw, sw, pl, dw) * oc
    return {cls: taps * icg, "int32_elementwise": (REQUANT_OPS + 1) * _elements(model, node) + taps}


def _dense(model, node):
    return {"int8_dense": model.node_macs(node), "int32_elementwise": (REQUANT_OPS + 1) * _elements(model, node)}


def _matmul(model, node):
    return {"int8_dense": model.node_macs(node), "int32_elementwise": REQUANT_OPS * _elements(model, node)}


def _shift_matmul(model, node):
    return {"shift": model.node_macs(node), "int32_elementwise": REQUANT_OPS * _elements(model, node)}


def _window(model, node, divide: bool):
    kh, kw = node.attrs["kernel"]
    n = _elements(model, node)
    return {"int32_elementwise": n * (kh * kw + 1), "divide": n if divide else 0}  # window adds/compares, clamp


def _per_element(**per):
    """A row whose counts are ``per[class]`` operations for every output element."""
    return lambda model, node: {cls: k * _elements(model, node) for cls, k in per.items()}


def _softmax(shift: int, exp: int, elementwise: int, divides_per_element: int):
    def work(model, node):
        rows, length = _rows(model, node)
        n = rows * length
        return {"shift": shift * n, "exp": exp * n, "int32_elementwise": elementwise * n,
                "divide": divides_per_element * n + rows}
    return work


def _no_arithmetic(model, node):
    """Block copies and constants: bytes only (charged by the memory term of hwsim/cost.py)."""
    return {}


def _mean_pool(model, node):
    return {"int32_elementwise": math.prod(model.tensors[node.inputs[0]].shape) + 2 * _elements(model, node),
            "divide": _elements(model, node)}


def _layernorm(model, node):
    rows, _ = _rows(model, node)
    return {"int32_elementwise": (4 + REQUANT_OPS) * _elements(model, node), "divide": rows * (2 + ISQRT_DIVIDES)}


WORK = {
    "conv2d": _conv,
    "dense": _dense,
    "matmul": _matmul,
    "shift_matmul": _shift_matmul,
    "add": _per_element(int32_elementwise=2 * REQUANT_OPS + 1),
    "requantize": _per_element(int32_elementwise=REQUANT_OPS),
    "clamp": _per_element(int32_elementwise=1),
    "avgpool": lambda m, n: _window(m, n, divide=True),
    "maxpool": lambda m, n: _window(m, n, divide=False),
    "mean_pool": _mean_pool,
    "quantize": _per_element(int32_elementwise=1),
    "dequantize": _per_element(int32_elementwise=1),
    "concat": _no_arithmetic,
    "reshape": _no_arithmetic,
    "transpose": _per_element(int32_elementwise=1),
    "slice": _no_arithmetic,
    "embedding": _no_arithmetic,
    "mask_keys": _per_element(int32_elementwise=1),
    "constant": _no_arithmetic,
    # shift-exp: d + (d>>1) - (d>>4), the range-reduction shift pair, the normalisation shift (6 shifts);
    # row max, running sum, normalising multiply (3 elementwise); t // x0 per element, F per row.
    "shiftmax": _softmax(shift=6, exp=0, elementwise=3, divides_per_element=1),
    # i-exp: one second-order polynomial per element (exp), max/sum/multiply, t // x0 per element, F per row.
    "iexp_softmax": _softmax(shift=2, exp=1, elementwise=3, divides_per_element=1),
    # log2 softmax: shift-exp sum as shiftmax, then round(Σ/e) (a division) and a bit-length per element.
    "log2_softmax": _softmax(shift=8, exp=1, elementwise=2, divides_per_element=2),
    # ShiftGELU: 1.6875x by shifts, two shift-exps, sigmoid division and t // x0 per element, requant.
    "shiftgelu": _per_element(shift=12, int32_elementwise=REQUANT_OPS + 4, divide=2),
    # i-GELU: the erf polynomial (exp class), sign/clip/multiply, requant; no division.
    "igelu": _per_element(exp=1, int32_elementwise=REQUANT_OPS + 3),
    "layernorm": _layernorm,
}


def op_work(model: IntModel, node: Node) -> Counter:
    """Operations per sample of ``node``, by op class (classes with a zero count omitted)."""
    if node.op not in WORK:
        raise UnsupportedOpError([(node.name, f"op {node.op!r} has no work row in hwsim/work.py")])
    return Counter({k: int(v) for k, v in WORK[node.op](model, node).items() if v})
