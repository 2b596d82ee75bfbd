"""conv2d: grouped 2-D convolution (HWC activations, OHWI weights), int32 accumulate, requant, clamp.

``acc[oc] = bias[oc] + sum_{ky,kx,i} w[oc,ky,kx,i] * (x[iy,ix,g*ICg+i] - input_zp)`` over in-bounds taps
(padding contributes 0, i.e. pads with input_zp), with ``iy = oy*sh - pt + ky*dh``; group ``g = oc // (OC/groups)``.
``y = clamp(R(acc; multiplier[oc], shift[oc]) + output_zp, act_min, act_max)``.
The model validator proves |acc| < 2**31, so int32 accumulation never overflows; a 16x8 layer (int64 bias,
quantize/ops/_weighted.py) accumulates in int64 (|acc| < 2**47) and requantizes as TFLite's 16x8 kernels.
"""

import numpy as np
from numba import njit, prange

from intonly.quantize.bounds import weighted_bound
from intonly.quantize.names import INT8_CONV, INT8_DEPTHWISE, INT32_ELEMENTWISE

from ..numerics import requant, saturate
from ..work import REQUANT_OPS, elements, valid_taps
from ._weighted import epilogue_constants, gemm_fast_path, node_mode, requant_block, weighted_params


@njit(cache=True)
def conv_reference(x, w, bias, mult, shift, sh, sw, pt, pl, dh, dw, groups, in_zp, out_zp, lo, hi, mode, out):
    """The scalar definition, serial and int64 throughout; every fast path is tested equal to it."""
    n_batch, height, width, _ = x.shape
    oc_total, kh, kw, icg = w.shape
    _, oh, ow, _ = out.shape
    ocg = oc_total // groups
    events = 0
    for n in range(n_batch):
        for oy in range(oh):
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
                    y, event = saturate(requant(acc, mult[oc], shift[oc], mode) + out_zp, lo, hi)
                    events += event
                    out[n, oy, ox, oc] = y
    return events


@njit(parallel=True, cache=True)
def depthwise_rows(x, wt, bias, mult, shift, sh, sw, pt, pl, dh, dw, dm, in_zp, out_zp, lo, hi, mode, rnd, shr, off,
                   out):
    """Depthwise fast path (groups = C, one input channel per group, ``dm`` outputs per input channel): per output
    row, int32 accumulators with channels innermost (contiguous in HWC, so the inner loop vectorizes), then the
    requant epilogue. ``wt`` is the weight as [kh, kw, OC] int32; ``acc`` excludes the bias (folded in ``rnd``)."""
    n_batch, height, width, _ = x.shape
    kh, kw, oc_total = wt.shape
    _, oh, ow, _ = out.shape
    out2 = out.reshape(n_batch * oh * ow, oc_total)
    counts = np.zeros(n_batch * oh, dtype=np.int64)
    zp = np.int32(in_zp)
    for row in prange(n_batch * oh):
        n = row // oh
        oy = row % oh
        acc = np.zeros((ow, oc_total), dtype=np.int32)
        for ky in range(kh):
            iy = oy * sh - pt + ky * dh
            if iy < 0 or iy >= height:
                continue
            for kx in range(kw):
                for ox in range(ow):
                    ix = ox * sw - pl + kx * dw
                    if ix < 0 or ix >= width:
                        continue
                    if dm == 1:  # the common case, kept free of the division so it vectorizes
                        for c in range(oc_total):
                            acc[ox, c] += wt[ky, kx, c] * (np.int32(x[n, iy, ix, c]) - zp)
                    else:
                        for c in range(oc_total):
                            acc[ox, c] += wt[ky, kx, c] * (np.int32(x[n, iy, ix, c // dm]) - zp)
        counts[row] = requant_block(acc, bias, mult, shift, out_zp, lo, hi, mode, rnd, shr, off, out2, row * ow, 0)
    return counts.sum()


def run(model, node, inputs, ctx):
    (x,) = inputs
    a = node.attrs
    w, bias, mult, shift, max_abs_x = weighted_params(model, node)
    out_info = model.tensors[node.outputs[0]]
    out = np.empty((x.shape[0],) + tuple(out_info.shape), dtype=out_info.dtype)
    groups = a["groups"]
    mode = node_mode(model, node, ctx.mode)
    if not ctx.fast:
        events = conv_reference(x, w, bias, mult, shift, *a["stride"], *a["padding"][:2], *a["dilation"], groups,
                                a["input_zp"], a["output_zp"], a["act_min"], a["act_max"], mode, out)
    elif groups > 1 and groups == x.shape[3] and w.shape[3] == 1 and weighted_bound(model, node) < 2**31:
        rnd, shr, off = epilogue_constants(bias, mult, shift, a["output_zp"])
        wt = np.ascontiguousarray(w[:, :, :, 0].transpose(1, 2, 0), dtype=np.int32)
        events = depthwise_rows(x, wt, bias, mult, shift, *a["stride"], *a["padding"][:2], *a["dilation"],
                                w.shape[0] // groups, a["input_zp"], a["output_zp"], a["act_min"], a["act_max"],
                                mode, rnd, shr, off, out)
    else:   # also a 16x8 depthwise layer whose sums need int64: the float64 GEMM holds them exactly (< 2^47)
        events = gemm_fast_path(x, w, bias, mult, shift, max_abs_x, a, mode, out, groups)
    ctx.trace.requants = out.size
    ctx.trace.clamp_events = int(events)
    return out


def work(model, node):
    """Executed MACs: the kernels skip taps in the padding, so only in-bounds taps count (this matters for small
    feature maps); plus one window step (address and padding test) per tap and the requant and bias add per
    output. Class int8_depthwise for groups > 1, else int8_conv."""
    cls = INT8_DEPTHWISE if node.attrs["groups"] > 1 else INT8_CONV
    oc, kh, kw, icg = model.param(node, "weight").shape
    h, w, _ = model.tensors[node.inputs[0]].shape
    oh, ow, _ = model.tensors[node.outputs[0]].shape
    (sh, sw), (dh, dw), (pt, pl, _, _) = node.attrs["stride"], node.attrs["dilation"], node.attrs["padding"]
    taps = valid_taps(h, oh, kh, sh, pt, dh) * valid_taps(w, ow, kw, sw, pl, dw) * oc
    return {cls: taps * icg, INT32_ELEMENTWISE: (REQUANT_OPS + 1) * elements(model, node) + taps}
