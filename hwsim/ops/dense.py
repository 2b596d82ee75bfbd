"""dense: fully connected layer, ``acc[n] = bias[n] + sum_k w[n,k] * (x[k] - input_zp)`` in int32,
``y = clamp(R(acc; multiplier[n], shift[n]) + output_zp, act_min, act_max)``.

The per-sample input is (..., K): every leading index is one row (a token of a sequence), output (..., N)."""

import numpy as np
from numba import njit

from ..numerics import requant, saturate
from ._weighted import gemm_fast_path, weighted_params


@njit(cache=True)
def dense_reference(x, w, bias, mult, shift, in_zp, out_zp, lo, hi, mode, out):
    n_batch, k_total = x.shape
    n_out = w.shape[0]
    events = 0
    for b in range(n_batch):
        for n in range(n_out):
            acc = np.int64(bias[n])
            for k in range(k_total):
                acc += np.int64(w[n, k]) * (np.int64(x[b, k]) - in_zp)
            y = requant(acc, mult[n], shift[n], mode) + out_zp
            y, event = saturate(y, lo, hi)
            events += event
            out[b, n] = y
    return events


def run(model, node, inputs, ctx):
    a = node.attrs
    w, bias, mult, shift, max_abs_x = weighted_params(model, node)
    x = np.ascontiguousarray(inputs[0]).reshape(-1, w.shape[1])
    out_shape = inputs[0].shape[:-1] + (w.shape[0],)
    out = np.empty((x.shape[0], w.shape[0]), dtype=model.tensors[node.outputs[0]].dtype)
    if ctx.fast:  # a 1x1 convolution of a 1x1 image
        events = gemm_fast_path(x.reshape(len(x), 1, 1, -1), w.reshape(w.shape[0], 1, 1, -1), bias, mult, shift,
                                max_abs_x, a, ctx.mode, out.reshape(len(x), 1, 1, -1))
    else:
        events = dense_reference(x, w, bias, mult, shift, a["input_zp"], a["output_zp"], a["act_min"], a["act_max"],
                                 ctx.mode, out)
    ctx.trace.requants = out.size
    ctx.trace.clamp_events = int(events)
    return out.reshape(out_shape)
