"""shift_matmul: P·V with log2-coded probabilities: ``acc = sum_k (v - input_zp) << (top - code)`` (a shift per
product, code past the top contributes 0), one per-tensor requant and the clamp. Input 0: codes, input 1: values."""

from ..bounds import Bound, span
from ._attrs import CLAMP, CODE_BITS, INT, MULTIPLIER, SHIFT
from ._opdef import OpDef
from ._shapes import batched_product_macs


def shape(attrs, in_shapes, params):
    a, b = in_shapes
    if len(a) < 2 or len(a) != len(b) or a[:-2] != b[:-2] or a[-1] != b[-2]:
        raise ValueError(f"shift_matmul operands {a} and {b} do not chain")
    return a[:-1] + b[-1:]


def bounds(model, node, producers=None):
    a = node.attrs
    k = model.tensors[node.inputs[1]].shape[-2]
    top = (1 << a["code_bits"]) - 1
    return [Bound("int32 accumulator of shifted values", k * (span(model, node.inputs[1], a["input_zp"]) << top))]


OP = OpDef(name="shift_matmul", summary="P·V with log2-coded probabilities: products become shifts",
           definition="docs/transformer-ops.md#shift_matmul-pv-with-log2-probabilities", n_inputs=2,
           attrs={"input_zp": INT, "code_bits": CODE_BITS, "multiplier": MULTIPLIER, "shift": SHIFT,
                  "output_zp": INT, **CLAMP},
           shape=shape, macs=batched_product_macs, bounds=bounds, input_zp_of=1)
