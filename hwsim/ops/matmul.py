"""matmul: batched integer matrix product (attention's Q·Kᵀ and P·V).

Per sample, ``a`` is (..., M, K) and ``b`` is (..., K, N), or (..., N, K) with ``transpose_b``; leading
dimensions are equal (no broadcasting). ``acc[..., m, n] = sum_k (a[..., m, k] - zp_a) * (b[..., k, n] - zp_b)``
in int32 (the validator proves the bound of quantize/bounds.py ``matmul_bound``: ``K * max|a - zp_a| * max|b - zp_b|``,
or, when ``a`` is a softmax's probabilities, their row-sum bound ``2^(bits-1) * max|b - zp_b|``), then
``y = clamp(R(acc; multiplier, shift) + output_zp, act_min, act_max)`` with one per-tensor multiplier.
The fast path is an exact float GEMM per batch entry, one entry per Numba thread (float32 when that same bound,
which bounds every partial sum, is below 2**24, else float64), and the shared requant epilogue; the reference
is the scalar loop.
"""

import numpy as np
from numba import njit, prange

from intonly.quantize.bounds import matmul_bound

from intonly.quantize.names import INT8_DENSE, INT32_ELEMENTWISE

from ..numerics import requant, saturate
from ..work import REQUANT_OPS, elements
from ._weighted import epilogue_constants, requant_block


@njit(cache=True)
def matmul_reference(a, b, zpa, zpb, mult, shift, out_zp, lo, hi, mode, out):
    """a: (B, M, K), b: (B, K, N) (already transposed to K-major), out: (B, M, N)."""
    batch, m_rows, k_total = a.shape
    n_cols = b.shape[2]
    events = 0
    for g in range(batch):
        for m in range(m_rows):
            for n in range(n_cols):
                acc = np.int64(0)
                for k in range(k_total):
                    acc += (np.int64(a[g, m, k]) - zpa) * (np.int64(b[g, k, n]) - zpb)
                y, event = saturate(requant(acc, mult, shift, mode) + out_zp, lo, hi)
                events += event
                out[g, m, n] = y
    return events


@njit(parallel=True, cache=True)
def requant_batches(acc, bias, mult, shift, out_zp, lo, hi, mode, rnd, shr, off, out):
    """out[g] = requant(acc[g]) for accumulators already computed (integers held in floats), in parallel."""
    events = np.zeros(acc.shape[0], dtype=np.int64)
    for g in prange(acc.shape[0]):
        events[g] = requant_block(acc[g], bias, mult, shift, out_zp, lo, hi, mode, rnd, shr, off, out[g], 0, 0)
    return events.sum()


@njit(parallel=True, cache=True)
def gemm_requant_batches(a, b, bias, mult, shift, out_zp, lo, hi, mode, rnd, shr, off, out):
    """a: (B, M, K), b: (B, K, N) floats already offset by their zero points; out[g] = requant(a[g] @ b[g])."""
    events = np.zeros(a.shape[0], dtype=np.int64)
    for g in prange(a.shape[0]):
        acc = np.dot(a[g], b[g])
        events[g] = requant_block(acc, bias, mult, shift, out_zp, lo, hi, mode, rnd, shr, off, out[g], 0, 0)
    return events.sum()


def run(model, node, inputs, ctx):
    a_in, b_in = inputs
    attrs = node.attrs
    zpa, zpb = attrs["input_zps"]
    out_info = model.tensors[node.outputs[0]]
    batch_shape = (a_in.shape[0],) + tuple(out_info.shape[:-2])
    a = np.ascontiguousarray(a_in).reshape(-1, *a_in.shape[-2:])
    b = np.asarray(b_in).reshape(-1, *b_in.shape[-2:])
    b = np.ascontiguousarray(b.transpose(0, 2, 1) if attrs["transpose_b"] else b)
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=out_info.dtype)
    lo, hi = attrs["act_min"], attrs["act_max"]
    if ctx.fast:
        ftype = np.float32 if matmul_bound(model, node) < 2**24 else np.float64
        n = b.shape[2]
        bias, mult, shift = np.zeros(n, np.int64), np.full(n, attrs["multiplier"], np.int64), np.full(
            n, attrs["shift"], np.int64)
        events = gemm_requant_batches(a.astype(ftype) - ftype(zpa), b.astype(ftype) - ftype(zpb), bias, mult, shift,
                                      attrs["output_zp"], lo, hi, ctx.mode,
                                      *epilogue_constants(bias, mult, shift, attrs["output_zp"]), out)
    else:
        events = matmul_reference(a, b, zpa, zpb, attrs["multiplier"], attrs["shift"], attrs["output_zp"], lo, hi,
                                  ctx.mode, out)
    ctx.trace.requants = out.size
    ctx.trace.clamp_events = int(events)
    return out.reshape(batch_shape + out.shape[1:])


def work(model, node):
    """Every MAC (class int8_dense), the requant per output."""
    return {INT8_DENSE: model.node_macs(node), INT32_ELEMENTWISE: REQUANT_OPS * elements(model, node)}
