"""resize_nearest: every input pixel repeated ``scale_h`` x ``scale_w`` times (quantize/ops/resize_nearest.py);
numpy's repeat is its own reference."""

import numpy as np

from ..work import no_arithmetic


def run(model, node, inputs, ctx):
    sh, sw = node.attrs["scale"]
    return np.repeat(np.repeat(inputs[0], sh, axis=1), sw, axis=2)


work = no_arithmetic  # copies: bytes only
