"""matmul: batched ``acc = sum_k (a - zp_a)(b - zp_b)`` over the last axis of ``a`` and the second-to-last of
``b`` (the last with ``transpose_b``), equal leading dimensions; one per-tensor requant and the clamp."""

from ..bounds import Bound, matmul_bound
from ._attrs import CLAMP, FLAG, INPUT_ZPS, INT, MULTIPLIER, SHIFT
from ._opdef import OpDef
from ._shapes import batched_product_macs


def shape(attrs, in_shapes, params):
    a, b = in_shapes
    if len(a) < 2 or len(a) != len(b) or a[:-2] != b[:-2]:
        raise ValueError(f"matmul operands {a} and {b} need equal rank >= 2 and equal leading dimensions")
    k_b, n = (b[-1], b[-2]) if attrs["transpose_b"] else (b[-2], b[-1])
    if a[-1] != k_b:
        raise ValueError(f"matmul inner dimensions differ: {a} x {b} (transpose_b={attrs['transpose_b']})")
    return a[:-1] + (n,)


def bounds(model, node, producers=None):
    return [Bound("int32 accumulator", matmul_bound(model, node, producers))]


OP = OpDef(
    name="matmul", summary="batched integer matrix product of two tensors (attention), per-tensor requant",
    definition="docs/numerics.md#matmul", n_inputs=2,
    attrs={"input_zps": INPUT_ZPS, "transpose_b": FLAG, "multiplier": MULTIPLIER, "shift": SHIFT, "output_zp": INT,
           **CLAMP},
    shape=shape, macs=batched_product_macs, bounds=bounds)
