"""conv2d: grouped 2-D convolution (HWC activations, OHWI weights), int32 accumulate, requant, clamp.

``acc[oc] = bias[oc] + sum_{ky,kx,i} w[oc,ky,kx,i] * (x[iy,ix,g*ICg+i] - input_zp)`` over in-bounds taps
(padding contributes 0, i.e. pads with input_zp), with ``iy = oy*sh - pt + ky*dh``; group ``g = oc // (OC/groups)``.
``y = clamp(R(acc; multiplier[oc], shift[oc]) + output_zp, act_min, act_max)``.
The model validator proves |acc| < 2**31, so int32 accumulation never overflows.
"""

import numpy as np
from numba import njit, prange

from ..numerics import requant, saturate
from ._weighted import exact_gemm_dtype, requant_rows, weighted_params


def _conv_direct(x, w, bias, mult, shift, sh, sw, pt, pl, dh, dw, groups, in_zp, out_zp, lo, hi, mode, out):
    n_batch, height, width, _ = x.shape
    oc_total, kh, kw, icg = w.shape
    _, oh, ow, _ = out.shape
    ocg = oc_total // groups
    counts = np.zeros(n_batch * oh, dtype=np.int64)
    for row in prange(n_batch * oh):
        n = row // oh
        oy = row % oh
        events = 0
        for ox in range(ow):
            for oc in range(oc_total):
                base = (oc // ocg) * icg
                acc = np.int64(bias[oc])
                for ky in range(kh):
                    iy = oy * sh - pt + ky * dh
                    if iy < 0 or iy >= height:
                        continue
                    for kx in range(kw):
                        ix = ox * sw - pl + kx * dw
                        if ix < 0 or ix >= width:
                            continue
                        for i in range(icg):
                            acc += np.int64(w[oc, ky, kx, i]) * (np.int64(x[n, iy, ix, base + i]) - in_zp)
                y = requant(acc, mult[oc], shift[oc], mode) + out_zp
                y, event = saturate(y, lo, hi)
                events += event
                out[n, oy, ox, oc] = y
        counts[row] = events
    return counts.sum()


conv_reference = njit(cache=True)(_conv_direct)  # the scalar definition, serial
conv_direct_parallel = njit(parallel=True, cache=True)(_conv_direct)


@njit(parallel=True, cache=True)
def im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, c0, icg, in_zp, oh, ow, cols):
    """cols[n*oh*ow + oy*ow + ox, (ky*kw + kx)*icg + i] = x[n, iy, ix, c0+i] - in_zp (0 when padded)."""
    n_batch, height, width, _ = x.shape
    for row in prange(n_batch * oh):
        n = row // oh
        oy = row % oh
        for ox in range(ow):
            r = (n * oh + oy) * ow + ox
            for ky in range(kh):
                iy = oy * sh - pt + ky * dh
                for kx in range(kw):
                    ix = ox * sw - pl + kx * dw
                    k0 = (ky * kw + kx) * icg
                    if iy < 0 or iy >= height or ix < 0 or ix >= width:
                        for i in range(icg):
                            cols[r, k0 + i] = 0
                    else:
                        for i in range(icg):
                            cols[r, k0 + i] = x[n, iy, ix, c0 + i] - in_zp


def conv_gemm(x, w, bias, mult, shift, a, mode, out, max_abs_x):
    """Fast path: per group, im2col + exact float GEMM (BLAS) + integer requant epilogue."""
    n_batch = x.shape[0]
    oc_total, kh, kw, icg = w.shape
    _, oh, ow, _ = out.shape
    groups = a["groups"]
    ocg = oc_total // groups
    (sh, sw), (pt, pl, _, _), (dh, dw) = a["stride"], a["padding"], a["dilation"]
    w2 = w.reshape(oc_total, kh * kw * icg)
    ftype = exact_gemm_dtype(w2, max_abs_x)
    cols = np.empty((n_batch * oh * ow, kh * kw * icg), dtype=ftype)
    events = 0
    out2 = out.reshape(n_batch * oh * ow, oc_total)
    for g in range(groups):
        sl = slice(g * ocg, (g + 1) * ocg)
        im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, g * icg, icg, a["input_zp"], oh, ow, cols)
        acc_f = cols @ w2[sl].astype(ftype).T
        res = np.empty((cols.shape[0], ocg), dtype=out.dtype)
        events += requant_rows(acc_f, bias[sl], mult[sl], shift[sl], a["output_zp"], a["act_min"], a["act_max"],
                               mode, res)
        out2[:, sl] = res
    return events


def run(model, node, inputs, ctx):
    (x,) = inputs
    a = node.attrs
    w, bias, mult, shift, max_abs_x = weighted_params(model, node)
    out_info = model.tensors[node.outputs[0]]
    out = np.empty((x.shape[0],) + tuple(out_info.shape), dtype=out_info.dtype)
    depthwise = a["groups"] > 1 and w.shape[3] == 1
    if ctx.fast and not depthwise:
        events = conv_gemm(x, w, bias, mult, shift, a, ctx.mode, out, max_abs_x)
    else:
        kernel = conv_direct_parallel if ctx.fast else conv_reference
        events = kernel(x, w, bias, mult, shift, *a["stride"], *a["padding"][:2], *a["dilation"], a["groups"],
                        a["input_zp"], a["output_zp"], a["act_min"], a["act_max"], ctx.mode, out)
    ctx.trace.requants = out.size
    ctx.trace.clamp_events = int(events)
    return out
