"""adaptive_avgpool: PyTorch's adaptive windows ``[floor(o*H/OH), ceil((o+1)*H/OH))`` per axis, the int64 window
sum divided by the window size rounding half away from zero (``div_round_away``, as avgpool), clamped
(quantize/ops/adaptive_avgpool.py)."""

import numpy as np
from numba import prange

from ..numerics import div_round_away, saturate
from ..work import adaptive_window
from ._compile import reference_and_parallel, run_kernel


def _adaptive_avgpool(x, lo, hi, out):
    n_batch, height, width, channels = x.shape
    _, oh, ow, _ = out.shape
    counts = np.zeros(n_batch * oh, dtype=np.int64)
    for row in prange(n_batch * oh):
        n = row // oh
        oy = row % oh
        y0 = (oy * height) // oh
        y1 = ((oy + 1) * height + oh - 1) // oh
        events = 0
        for ox in range(ow):
            x0 = (ox * width) // ow
            x1 = ((ox + 1) * width + ow - 1) // ow
            for c in range(channels):
                total = np.int64(0)
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        total += x[n, iy, ix, c]
                y, event = saturate(div_round_away(total, (y1 - y0) * (x1 - x0)), lo, hi)
                events += event
                out[n, oy, ox, c] = y
        counts[row] = events
    return counts.sum()


adaptive_avgpool_reference, adaptive_avgpool_parallel = reference_and_parallel(_adaptive_avgpool)


def run(model, node, inputs, ctx):
    out, events = run_kernel(model, node, inputs[0], ctx.fast, (adaptive_avgpool_reference, adaptive_avgpool_parallel),
                             node.attrs["act_min"], node.attrs["act_max"])
    ctx.trace.clamp_events = int(events)
    ctx.trace.divides = out.size
    return out


work = adaptive_window
