"""shift_matmul: P·V with log2 probability codes (docs/transformer-ops.md), FQ-ViT's shift-based attention product.

Per sample, ``a`` (..., M, K) holds int8 codes from ``log2_softmax`` (``Z = 2^code_bits``: code c means
probability 2^-c, code Z means exactly 0) and ``b`` (..., K, N) int8/int16 values with zero point ``input_zp``;
leading dimensions are equal::

    acc[m, n] = sum_k [0 <= a[m,k] < Z] * ((b[k, n] - input_zp) << (Z - 1 - a[m, k]))     int32 (proven)
    y = clamp(R(acc; multiplier, shift) + output_zp, act_min, act_max)                     acc scale s_b * 2^-(Z-1)

A code outside ``[0, Z)`` contributes nothing (log2_softmax only writes ``[0, Z]``; reading a negative code as
zero, too, keeps the validator's bound ``K * max|b - zp| * 2^(Z-1)`` true for every int8 input). The acc is
held in int64 and an overflow event is counted for each value outside int32.

Fast path: the codes become exact powers of two (0 for the zero code) in a float GEMM, which is exact because
every partial sum is bounded by the validator's bound (float32 when it is below 2^24, float64 below 2^53; beyond
that the scalar loop runs), then the shared requant epilogue.
"""

import numpy as np
from numba import njit

from intonly.quantize.names import INT32_ELEMENTWISE, SHIFT

from ..numerics import INT32_MAX, INT32_MIN, requant, saturate
from ..work import REQUANT_OPS, elements
from ._weighted import epilogue_constants
from .matmul import requant_batches


@njit(cache=True)
def shift_matmul_reference(a, b, zp, z, mult, shift, out_zp, lo, hi, mode, out):
    """a: (G, M, K) codes, b: (G, K, N), out: (G, M, N). Returns (clamp events, overflow events)."""
    groups, m_rows, k_total = a.shape
    n_cols = b.shape[2]
    events = 0
    overflows = 0
    for g in range(groups):
        for m in range(m_rows):
            for n in range(n_cols):
                acc = np.int64(0)
                for k in range(k_total):
                    code = np.int64(a[g, m, k])
                    if 0 <= code < z:
                        acc += (np.int64(b[g, k, n]) - zp) << (z - 1 - code)
                overflows += (acc > INT32_MAX) | (acc < INT32_MIN)
                y, event = saturate(requant(acc, mult, shift, mode) + out_zp, lo, hi)
                events += event
                out[g, m, n] = y
    return events, overflows


def shift_weights(a, z, ftype):
    """The codes as the exact float factors 2^(Z-1-code) (0 for codes outside [0, Z))."""
    codes = a.astype(np.int64)
    valid = (codes >= 0) & (codes < z)
    return np.where(valid, np.ldexp(1.0, np.where(valid, z - 1 - codes, 0)), 0.0).astype(ftype)


def run(model, node, inputs, ctx):
    a_in, b_in = inputs
    attrs = node.attrs
    zp, z = attrs["input_zp"], 1 << attrs["code_bits"]
    out_info = model.tensors[node.outputs[0]]
    batch_shape = (a_in.shape[0],) + tuple(out_info.shape[:-2])
    a = np.ascontiguousarray(a_in).reshape(-1, *a_in.shape[-2:])
    b = np.ascontiguousarray(b_in).reshape(-1, *b_in.shape[-2:])
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=out_info.dtype)
    lo, hi = attrs["act_min"], attrs["act_max"]
    span = max(abs(q - zp) for q in model.tensors[node.inputs[1]].qrange())
    bound = a.shape[2] * (span << (z - 1))
    if ctx.fast and bound < 2**53:
        ftype = np.float32 if bound < 2**24 else np.float64
        acc = np.matmul(shift_weights(a, z, ftype), b.astype(ftype) - ftype(zp))
        overflows = int(np.count_nonzero((acc > INT32_MAX) | (acc < INT32_MIN)))
        n = b.shape[2]
        bias, mult, shift = (np.zeros(n, np.int64), np.full(n, attrs["multiplier"], np.int64),
                             np.full(n, attrs["shift"], np.int64))
        events = requant_batches(acc, bias, mult, shift, attrs["output_zp"], lo, hi, ctx.mode,
                                 *epilogue_constants(bias, mult, shift, attrs["output_zp"]), out)
    else:
        events, overflows = shift_matmul_reference(a, b, zp, z, attrs["multiplier"], attrs["shift"],
                                                   attrs["output_zp"], lo, hi, ctx.mode, out)
    ctx.trace.requants = out.size
    ctx.trace.clamp_events = int(events)
    ctx.trace.overflows = int(overflows)
    return out.reshape(batch_shape + out.shape[1:])


def work(model, node):
    """The products are shifts by the log2 codes, one per MAC; the requant per output."""
    return {SHIFT: model.node_macs(node), INT32_ELEMENTWISE: REQUANT_OPS * elements(model, node)}
