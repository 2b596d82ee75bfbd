"""maxpool: maximum over the in-bounds taps of each window (padding never wins); same scale in and out."""

import numpy as np
from numba import prange

from ..work import window
from ._compile import reference_and_parallel, run_kernel


def _maxpool(x, kh, kw, sh, sw, pt, pl, dh, dw, out):
    n_batch, height, width, channels = x.shape
    _, oh, ow, _ = out.shape
    for row in prange(n_batch * oh):
        n = row // oh
        oy = row % oh
        for ox in range(ow):
            for c in range(channels):
                best = np.int64(-(1 << 40))
                for ky in range(kh):
                    iy = oy * sh - pt + ky * dh
                    for kx in range(kw):
                        ix = ox * sw - pl + kx * dw
                        if 0 <= iy < height and 0 <= ix < width and x[n, iy, ix, c] > best:
                            best = x[n, iy, ix, c]
                out[n, oy, ox, c] = best


maxpool_reference, maxpool_parallel = reference_and_parallel(_maxpool)


def run(model, node, inputs, ctx):
    a = node.attrs
    out, _ = run_kernel(model, node, inputs[0], ctx.fast, (maxpool_reference, maxpool_parallel), *a["kernel"],
                        *a["stride"], *a["padding"][:2], *a["dilation"])
    return out


work = window(divide=False)
