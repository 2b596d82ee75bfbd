"""resize_bilinear: TFLite's integer bilinear resize with 10-bit coordinates (quantize/ops/resize_bilinear.py)."""

import numpy as np
from numba import njit, prange

from intonly.quantize.ops.resize_bilinear import scale_10

from ..numerics import div_round_away
from ..work import per_element
from ._compile import reference_and_parallel, run_kernel


@njit(cache=True)
def _c_div(a, b):
    """C's truncating division of a possibly negative ``a`` by a positive ``b``."""
    q = abs(a) // b
    return q if a >= 0 else -q


@njit(cache=True)
def _source(o, step, half_pixel, size_in):
    s = o * step + (step // 2 - (1 << 9) if half_pixel else 0)
    lower = max(_c_div(s, 1 << 10), 0)
    upper = min(_c_div(s + (1 << 10) - 1, 1 << 10), size_in - 1)
    return s, lower, upper


def _resize_bilinear(x, step_h, step_w, half_pixel, out):
    n_batch, height, width, channels = x.shape
    _, oh, ow, _ = out.shape
    for row in prange(n_batch * oh):
        n = row // oh
        oy = row % oh
        sy, y0, y1 = _source(oy, step_h, half_pixel, height)
        dy = sy - (1 << 10) * y0
        for ox in range(ow):
            sx, x0, x1 = _source(ox, step_w, half_pixel, width)
            dx = sx - (1 << 10) * x0
            for c in range(channels):
                total = (np.int64(x[n, y0, x0, c]) * ((1 << 10) - dy) * ((1 << 10) - dx)
                         + np.int64(x[n, y1, x0, c]) * dy * ((1 << 10) - dx)
                         + np.int64(x[n, y0, x1, c]) * ((1 << 10) - dy) * dx
                         + np.int64(x[n, y1, x1, c]) * dy * dx)
                out[n, oy, ox, c] = div_round_away(total, np.int64(1 << 20))


resize_bilinear_reference, resize_bilinear_parallel = reference_and_parallel(_resize_bilinear)


def run(model, node, inputs, ctx):
    (x,) = inputs
    a = node.attrs
    out_shape = model.tensors[node.outputs[0]].shape
    steps = [scale_10(x.shape[1 + i], out_shape[i], a["align_corners"]) for i in range(2)]
    out, _ = run_kernel(model, node, x, ctx.fast, (resize_bilinear_reference, resize_bilinear_parallel), *steps,
                        a["half_pixel_centers"])
    ctx.trace.divides = out.size
    return out


work = per_element(int32_elementwise=12, divide=1)   # 4 products of 3 factors, 3 sums, the rounding; one division
