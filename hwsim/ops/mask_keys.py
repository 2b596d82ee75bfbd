"""mask_keys: ``out[..., n] = scores[..., n] if mask[n] != 0 else qmin`` (docs/transformer-ops.md).

``scores`` (..., N) int8/int16, ``mask`` (N,) int8 per sample (nonzero = keep). ``qmin`` is the lowest code of
the scores tensor's bit width, the sentinel the masked softmax ops skip (the producer of ``scores`` clamps at
``qmin + 1``, so the sentinel appears nowhere else). Pure selection: no arithmetic, no trace events.
"""

import numpy as np
from numba import prange

from ..work import per_element
from ._compile import reference_and_parallel


def _mask_keys(scores, mask, per_sample, qmin, out):
    """scores, out: (rows, N); mask: (batch, N); row r belongs to sample r // per_sample."""
    rows, keys = scores.shape
    for r in prange(rows):
        keep = mask[r // per_sample]
        for n in range(keys):
            out[r, n] = scores[r, n] if keep[n] != 0 else qmin


mask_keys_reference, mask_keys_parallel = reference_and_parallel(_mask_keys)


def run(model, node, inputs, ctx):
    scores, mask = (np.ascontiguousarray(t) for t in inputs)
    keys = scores.shape[-1]
    out = np.empty(scores.shape, dtype=model.tensors[node.outputs[0]].dtype)
    flat = scores.reshape(-1, keys)
    kernel = mask_keys_parallel if ctx.fast else mask_keys_reference
    kernel(flat, mask.reshape(len(mask), keys), len(flat) // len(mask), model.tensors[node.inputs[0]].qrange()[0],
           out.reshape(-1, keys))
    return out


work = per_element(int32_elementwise=1)  # compare and select
