"""Output-shape rules several ops share."""

from __future__ import annotations

import math


def window_out(size: int, k: int, s: int, p0: int, p1: int, d: int = 1) -> int:
    """Output length along one axis of a window op: ``(size + p0 + p1 - d*(k-1) - 1) // s + 1``."""
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def of_rank(shape, rank: int, what: str) -> tuple:
    if len(shape) != rank or any(d < 1 for d in shape):
        raise ValueError(f"{what} has shape {tuple(shape)}, expected {rank} dimensions of at least 1")
    return tuple(shape)


def same_as_input(attrs, in_shapes, params) -> tuple:
    """Elementwise ops: the output has the first input's shape."""
    return tuple(in_shapes[0])


def permuted(attrs, in_shapes, params) -> tuple:
    """``perm`` applied to the input's axes (an empty ``perm`` keeps them)."""
    (shape,) = in_shapes
    perm = attrs["perm"] or list(range(len(shape)))
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"perm {perm} does not permute a rank-{len(shape)} tensor")
    return tuple(shape[p] for p in perm)


def pooled(op: str):
    """The shape rule of a 2-D pooling window over an (H, W, C) input (``dilation`` where the op has it)."""
    def shape(attrs, in_shapes, params) -> tuple:
        h, w, c = of_rank(in_shapes[0], 3, f"{op} input (H, W, C)")
        kh, kw = attrs["kernel"]
        sh, sw = attrs["stride"]
        pt, pl, pb, pr = attrs["padding"]
        dh, dw = attrs.get("dilation", [1, 1])
        span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        if max(pt, pb) >= span_h or max(pl, pr) >= span_w:
            raise ValueError(f"padding {attrs['padding']} must be below the window ({span_h}x{span_w}): a window "
                             "entirely in the padding has no input to pool")
        return (window_out(h, kh, sh, pt, pb, dh), window_out(w, kw, sw, pl, pr, dw), c)
    return shape


def batched_product_macs(model, node) -> int:
    """A batched matrix product: output elements x the left operand's inner length."""
    return math.prod(model.tensors[node.outputs[0]].shape) * model.tensors[node.inputs[0]].shape[-1]
