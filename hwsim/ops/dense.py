"""dense: fully connected layer, ``acc[n] = bias[n] + sum_k w[n,k] * (x[k] - input_zp)`` in int32,
``y = clamp(R(acc; multiplier[n], shift[n]) + output_zp, act_min, act_max)``.

The per-sample input is (..., K): every leading index is one row (a token of a sequence), output (..., N)."""

import numba
import numpy as np
from numba import njit, prange

from intonly.quantize.names import INT8_DENSE, INT32_ELEMENTWISE

from ..numerics import requant, saturate
from ..work import REQUANT_OPS, elements
from ._weighted import GEMM_BLOCK_ROWS, epilogue_constants, exact_gemm_dtype, node_mode, requant_block, weighted_params


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


@njit(parallel=True, cache=True)
def dense_gemm_blocks(xf, wT, bias, mult, shift, out_zp, lo, hi, mode, rnd, shr, off, out, block):
    """The fast path: ``out[r] = clamp(R(xf[r] @ wT + bias) + out_zp, lo, hi)`` for blocks of ``block`` rows, one
    block per Numba thread (the caller makes blocks as large as an even split over the threads: one big
    single-threaded GEMM per thread measured faster than many small ones). ``xf`` holds ``x - input_zp`` as floats; the GEMM is exact by
    :func:`exact_gemm_dtype` (every partial sum below 2^24 for float32, 2^53 for float64)."""
    n_blocks = (xf.shape[0] + block - 1) // block
    events = np.zeros(n_blocks, dtype=np.int64)
    for i in prange(n_blocks):
        r0 = i * block
        r1 = min(xf.shape[0], r0 + block)
        events[i] = requant_block(np.dot(xf[r0:r1], wT), bias, mult, shift, out_zp, lo, hi, mode, rnd, shr, off,
                                  out, r0, 0)
    return events.sum()


def run(model, node, inputs, ctx):
    a = node.attrs
    w, bias, mult, shift, max_abs_x = weighted_params(model, node)
    x = np.ascontiguousarray(inputs[0]).reshape(-1, w.shape[1])
    out_shape = inputs[0].shape[:-1] + (w.shape[0],)
    out = np.empty((x.shape[0], w.shape[0]), dtype=model.tensors[node.outputs[0]].dtype)
    mode = node_mode(model, node, ctx.mode)   # TFLite's 16x8 requant for an int64 bias
    if ctx.fast:
        ftype = exact_gemm_dtype(w, max_abs_x)
        xf = x.astype(ftype) - ftype(a["input_zp"])
        events = dense_gemm_blocks(xf, np.ascontiguousarray(w.T, dtype=ftype), bias, mult, shift, a["output_zp"],
                                   a["act_min"], a["act_max"], mode,
                                   *epilogue_constants(bias, mult, shift, a["output_zp"]), out,
                                   max(GEMM_BLOCK_ROWS, -(-len(x) // numba.get_num_threads())))
    else:
        events = dense_reference(x, w, bias, mult, shift, a["input_zp"], a["output_zp"], a["act_min"], a["act_max"],
                                 mode, out)
    ctx.trace.requants = out.size
    ctx.trace.clamp_events = int(events)
    return out.reshape(out_shape)


def work(model, node):
    """Every MAC (class int8_dense), the requant and bias add per output."""
    return {INT8_DENSE: model.node_macs(node), INT32_ELEMENTWISE: (REQUANT_OPS + 1) * elements(model, node)}
