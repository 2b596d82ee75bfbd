"""slice: ``out = x[..., start:stop, ...]`` along the per-sample ``axis`` (pure data movement: the copy is its own
reference)."""

import numpy as np

from ..work import no_arithmetic


def run(model, node, inputs, ctx):
    a = node.attrs
    index = (slice(None),) * (a["axis"] + 1) + (slice(a["start"], a["stop"]),)
    return np.ascontiguousarray(inputs[0][index])


work = no_arithmetic  # block copy: bytes only
