"""avgpool: integer window mean on the stored values (input and output share scale and zero point).

Per output: ``total = sum`` of the in-bounds window values, plus ``pad_value`` for every padded tap when
``count_include_pad`` (then ``count = kh*kw``; otherwise ``count`` = number of in-bounds taps);
``y = clamp(div_round_away(total, count), act_min, act_max)``, i.e. rounded to nearest with ties away
from zero, exactly TFLM's AVERAGE_POOL_2D division. |total| <= kh*kw*2**15 fits int32 for any window below 2**16 taps.
"""

import numpy as np
from numba import prange

from ..numerics import div_round_away, saturate
from ..work import window
from ._compile import reference_and_parallel, run_kernel


def _avgpool(x, kh, kw, sh, sw, pt, pl, include_pad, pad_value, lo, hi, out):
    n_batch, height, width, channels = x.shape
    _, oh, ow, _ = out.shape
    counts = np.zeros(n_batch * oh, dtype=np.int64)
    for row in prange(n_batch * oh):
        n = row // oh
        oy = row % oh
        events = 0
        for ox in range(ow):
            for c in range(channels):
                total = np.int64(0)
                count = 0
                for ky in range(kh):
                    iy = oy * sh - pt + ky
                    for kx in range(kw):
                        ix = ox * sw - pl + kx
                        if iy < 0 or iy >= height or ix < 0 or ix >= width:
                            if include_pad:
                                total += pad_value
                                count += 1
                        else:
                            total += x[n, iy, ix, c]
                            count += 1
                y = div_round_away(total, count)
                y, event = saturate(y, lo, hi)
                events += event
                out[n, oy, ox, c] = y
        counts[row] = events
    return counts.sum()


avgpool_reference, avgpool_parallel = reference_and_parallel(_avgpool)


def run(model, node, inputs, ctx):
    a = node.attrs
    out, events = run_kernel(model, node, inputs[0], ctx.fast, (avgpool_reference, avgpool_parallel), *a["kernel"],
                             *a["stride"], *a["padding"][:2], a["count_include_pad"], a["pad_value"], a["act_min"],
                             a["act_max"])
    ctx.trace.divides = out.size
    ctx.trace.clamp_events = int(events)
    return out


work = window(divide=True)
