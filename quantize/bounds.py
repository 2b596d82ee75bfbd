"""Overflow proofs: for every op with an intermediate that lives in a fixed width, the largest magnitude it
can reach over *every* input its input tensors' bit widths allow, beside the limit of that width.

Each op states its own bounds (``OpDef.bounds`` in quantize/ops/<op>.py) from the building blocks here;
:func:`node_bounds` is what the IR validator checks (a bound at or above its limit makes the model
invalid) and ``intonly inspect`` prints. Bounds are exact integer arithmetic, usually the worst case of a
closed formula; for elementwise ops over at most 16-bit inputs (I-BERT's polynomial GELU) every input value
is enumerated, so the bound is the true maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def span(model, tensor: str, zp: int = 0) -> int:
    """max |q - zp| over the tensor's bit range."""
    lo, hi = model.tensors[tensor].qrange()
    return max(abs(lo - zp), abs(hi - zp))


def row_abs_sums(w: np.ndarray) -> np.ndarray:
    """``sum |w[oc]|`` per output channel (first axis) of integer weights, in int64."""
    return np.abs(w.reshape(w.shape[0], -1).astype(np.int64)).sum(axis=1)


def weighted_bound(model, node) -> int:
    """conv2d/dense: ``max_oc (sum |w[oc]| * max|x - zp| + |bias[oc]|)``."""
    per_channel = row_abs_sums(model.param(node, "weight")) * span(model, node.inputs[0], node.attrs["input_zp"])
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
    from .ops import OPS
    node = model.producer(tensor) if producers is None else producers.get(tensor)
    if node is not None and OPS[node.op].probabilities and zp == 0:
        return (1 << (model.tensors[tensor].bits - 1)) - 1
    return model.tensors[tensor].shape[-1] * span(model, tensor, zp)


def matmul_bound(model, node, producers: dict | None = None) -> int:
    za, zb = node.attrs["input_zps"]
    return row_sum_bound(model, node.inputs[0], za, producers) * span(model, node.inputs[1], zb)


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


def node_bounds(model, node, producers: dict | None = None) -> list[Bound]:
    """Every fixed-width intermediate of ``node`` with its proven worst case (empty: nothing can overflow): the
    op's own ``bounds`` (quantize/ops/<op>.py). ``producers``: :func:`producer_map` of ``model``, to bound every
    node of a large model in linear time."""
    from .ops import OPS
    return OPS[node.op].bounds(model, node, producers)
