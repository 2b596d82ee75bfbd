"""Overflow proofs: for every op with an intermediate that lives in a fixed width, the largest magnitude it
can reach over *every* input its input tensors' bit widths allow, beside the limit of that width.

:func:`node_bounds` is the one table the IR validator checks (a bound at or above its limit makes the model
invalid) and ``intonly inspect`` prints. Bounds are exact integer arithmetic, usually the worst case of a
closed formula; for elementwise ops over at most 16-bit inputs (I-BERT's polynomial GELU) every input value
is enumerated, so the bound is the true maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ops import SOFTMAX_OPS

INT32_LIMIT = 2**31 - 1
INT64_LIMIT = 2**63 - 1


@dataclass(frozen=True)
class Bound:
    """``value`` = the largest |intermediate| the op can produce; it must not exceed ``limit``."""

    what: str
    value: int
    limit: int = INT32_LIMIT

    @property
    def holds(self) -> bool:
        return self.value <= self.limit


def _span(model, tensor: str, zp: int = 0) -> int:
    """max |q - zp| over the tensor's bit range."""
    lo, hi = model.tensors[tensor].qrange()
    return max(abs(lo - zp), abs(hi - zp))


def weighted_bound(model, node) -> int:
    """conv2d/dense: ``max_oc (sum |w[oc]| * max|x - zp| + |bias[oc]|)``."""
    w = model.param(node, "weight").astype(np.int64)
    per_channel = np.abs(w.reshape(w.shape[0], -1)).sum(axis=1) * _span(model, node.inputs[0], node.attrs["input_zp"])
    per_channel += np.abs(model.param(node, "bias").astype(np.int64))
    return int(per_channel.max(initial=0))


def producer_map(model) -> dict:
    """tensor name -> the first node (in model order) that writes it: ``model.producer`` for every tensor at
    once, in one pass."""
    return {t: node for node in reversed(model.nodes) for t in node.outputs}


def row_sum_bound(model, tensor: str, zp: int, producers: dict | None = None) -> int:
    """max over rows of sum_k |a[k] - zp| for the left operand of a matmul: probabilities from a softmax
    op sum to less than 2^(bits-1) per row (zp 0); anything else is K * max|a - zp|.

    ``producers``: :func:`producer_map` of ``model``; without it the producer is found by ``model.producer``,
    a scan of the nodes (pass the map when bounding many nodes)."""
    node = model.producer(tensor) if producers is None else producers.get(tensor)
    if node is not None and node.op in SOFTMAX_OPS and zp == 0:
        return (1 << (model.tensors[tensor].bits - 1)) - 1
    return model.tensors[tensor].shape[-1] * _span(model, tensor, zp)


def matmul_bound(model, node, producers: dict | None = None) -> int:
    za, zb = node.attrs["input_zps"]
    return row_sum_bound(model, node.inputs[0], za, producers) * _span(model, node.inputs[1], zb)


def shift_exp_max(x0: int) -> int:
    """I-ViT shift-exp before the ``<< (n - q)``: ``((r - 2*x0) ... ) >> 1`` peaks at r = 0: ``-x0``."""
    return -x0


def iexp_poly_max(x0: int, b_int: int, c_int: int) -> int:
    """max |(r + b_int) * r + c_int| over every integer r in (x0, 0] (I-BERT's i-exp polynomial), exactly: the
    parabola is largest in magnitude at an end of the interval or at the integers next to its vertex -b_int/2
    (closed form in Python integers, so any x0 costs the same)."""
    lo, hi = x0 + 1, 0
    vertex = -b_int // 2
    candidates = [r for r in (lo, hi, vertex, vertex + 1) if lo <= r <= hi]
    return max(abs((r + b_int) * r + c_int) for r in candidates)


def softmax_bounds(model, node) -> list[Bound]:
    a = node.attrs
    n_keys = model.tensors[node.inputs[0]].shape[-1]
    peak = shift_exp_max(a["x0"]) if node.op == "shiftmax" else iexp_poly_max(a["x0"], a["b_int"], a["c_int"])
    return [Bound("exp before shift", peak),
            Bound(f"row sum of exp (N={n_keys} keys, n={a['n']})", n_keys * (peak << a["n"])),
            Bound("exp range clip q_max*x0", abs(a["q_max"] * a["x0"]))]


def shiftgelu_bounds(model, node) -> list[Bound]:
    a = node.attrs
    span = _span(model, node.inputs[0])
    return [Bound(f"sigmoid sum e1 + e2 (n={a['n']})", 2 * (shift_exp_max(a["x0"]) << a["n"])),
            Bound("exp range clip q_max*x0", abs(a["q_max"] * a["x0"])),
            Bound("1.6875*x by shifts", span * 2),
            Bound(f"x * sigmoid ({a['sig_bits']}-bit sigmoid)", span * ((1 << a["sig_bits"]) - 1))]


def igelu_bounds(model, node) -> list[Bound]:
    """Every input of the (at most 16-bit) input tensor enumerated; the attributes are int32
    (:func:`quantize.ops.check_attrs`), so the polynomial fits int64 and the last product is taken in Python
    integers (it can exceed int64 for a hostile file, and must then be reported, not wrap)."""
    a = node.attrs
    lo, hi = model.tensors[node.inputs[0]].qrange()
    x = np.arange(lo, hi + 1, dtype=np.int64)
    u = np.minimum(np.abs(x), -a["b_int"])
    poly = (u + a["b_int"]) ** 2 + a["c_int"]
    erf = (np.sign(x) * poly) >> a["erf_shift"]
    product = np.abs(x.astype(object) * (erf + a["one_int"]).astype(object))
    return [Bound("erf polynomial (every input enumerated)", int(np.abs(poly).max())),
            Bound("x * (erf + 1) (every input enumerated)", int(product.max()))]


def layernorm_bounds(model, node) -> list[Bound]:
    info = model.tensors[node.inputs[0]]
    channels, span = info.shape[-1], _span(model, node.inputs[0])
    lo, hi = info.qrange()
    w = np.abs(model.param(node, "weight").astype(np.int64))
    b = np.abs(model.param(node, "bias").astype(np.int64))
    k = node.attrs["norm_shift"]
    return [Bound(f"sum over {channels} channels", channels * span),
            Bound("variance sum of (x - mean)^2 (int64)", channels * (hi - lo) ** 2, INT64_LIMIT),
            Bound(f"normalized * gamma + beta (norm_shift={k})", int(((w << k) + b).max(initial=0)))]


def attr_errors(node) -> list[str]:
    """Relations between attributes that their ranges (:data:`quantize.ops.ATTR_LIMITS`) do not cover."""
    if "sig_bits" in node.attrs and node.attrs["sig_bits"] >= node.attrs["norm_bits"]:
        return [f"sig_bits={node.attrs['sig_bits']} must be below norm_bits={node.attrs['norm_bits']}"]
    return []


def node_bounds(model, node, producers: dict | None = None) -> list[Bound]:
    """Every fixed-width intermediate of ``node`` with its proven worst case (empty: nothing can overflow).
    ``producers``: :func:`producer_map` of ``model``, to bound every node of a large model in linear time."""
    op, a = node.op, node.attrs
    if op in ("conv2d", "dense"):
        return [Bound("int32 accumulator", weighted_bound(model, node))]
    if op == "matmul":
        return [Bound("int32 accumulator", matmul_bound(model, node, producers))]
    if op == "shift_matmul":
        k = model.tensors[node.inputs[1]].shape[-2]
        top = (1 << a["code_bits"]) - 1
        return [Bound("int32 accumulator of shifted values", k * (_span(model, node.inputs[1], a["input_zp"]) << top))]
    if op == "add":
        bounds, scaled = [], 0
        for t, zp, mult, shift in zip(node.inputs, a["input_zps"], a["multipliers"], a["shifts"]):
            shifted = _span(model, t, zp) << a["left_shift"]
            bounds.append(Bound(f"input {t!r} << left_shift", shifted))
            scaled += ((shifted * mult) >> shift) + 1
        return bounds + [Bound("sum of the rescaled inputs", scaled)]
    if op in ("shiftmax", "iexp_softmax", "log2_softmax"):
        return softmax_bounds(model, node)
    if op == "shiftgelu":
        return shiftgelu_bounds(model, node)
    if op == "igelu":
        return igelu_bounds(model, node)
    if op == "layernorm":
        return layernorm_bounds(model, node)
    if op == "mean_pool":
        info = model.tensors[node.inputs[0]]
        return [Bound(f"sum over {info.shape[-2]} tokens", info.shape[-2] * _span(model, node.inputs[0], a["input_zp"]))]
    return []
