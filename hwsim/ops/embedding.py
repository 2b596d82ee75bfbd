"""embedding: ``out[..., l, :] = weight[clamp(ids[..., l], 0, V - 1)]`` (docs/transformer-ops.md).

``ids`` (..., L) int16 token ids (scale 1), ``weight`` the (V, D) table (int8/int16, the output's codes). An id
outside ``[0, V)`` is clamped to the nearest row and counted as a clamp event.
"""

import numpy as np
from numba import prange

from ..work import no_arithmetic
from ._compile import reference_and_parallel


def _embedding(ids, weight, out):
    """ids: (n,), out: (n, D). Returns the number of clamped ids."""
    n_ids = ids.shape[0]
    vocab = weight.shape[0]
    counts = np.zeros(n_ids, dtype=np.int64)
    for i in prange(n_ids):
        row = np.int64(ids[i])
        if row < 0 or row >= vocab:
            counts[i] = 1
            row = min(max(row, 0), vocab - 1)
        out[i, :] = weight[row, :]
    return counts.sum()


embedding_reference, embedding_parallel = reference_and_parallel(_embedding)


def run(model, node, inputs, ctx):
    ids = np.ascontiguousarray(inputs[0])
    weight = np.ascontiguousarray(model.param(node, "weight"))
    out_dtype = model.tensors[node.outputs[0]].dtype
    out = np.empty(ids.shape + weight.shape[1:], dtype=out_dtype)
    kernel = embedding_parallel if ctx.fast else embedding_reference
    events = kernel(ids.ravel(), weight.astype(out_dtype, copy=False), out.reshape(ids.size, -1))
    ctx.trace.clamp_events = int(events)
    return out


work = no_arithmetic  # row copies: bytes only
