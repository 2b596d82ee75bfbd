"""Empirical bias correction (Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias
Correction", ICCV 2019, section 4.2; AIMET and NNCF ship it as "bias correction").

Rounding a layer's weights to ``W_q = s_w * q`` changes its output by ``(W_q - W) x``, whose mean over the data
is not zero: a 3x3 depthwise filter whose taps nearly cancel (an edge detector, sum of taps ~ 0) loses that
cancellation after rounding and shifts its output by a constant, which the layers after it amplify
(EfficientNet-Lite0's first depthwise conv alone costs the logits 30 dB this way). The correction subtracts that
mean from the float bias before it is quantized:

    b_corrected[o] = b[o] - sum_{i, ky, kx} (W_q - W)[o, i, ky, kx] * E[x_pad[i, y*s + ky*d, x*s + kx*d]]

where the expectation runs over the calibration samples and every output position ``(y, x)``, on the input as the
convolution reads it (zero padding included, so border taps are exact), and ``i`` runs over the input channels of
``o``'s group. For a Linear layer the expectation is the mean input vector over samples (and tokens). The means
are taken on the float model's values during calibration (:class:`InputMeans`), in float64.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from .capture import op_kind
from .rewrite import conv_padding, pair


class InputMeans:
    """Accumulates, for every call of a Conv2d / Linear module in a graph, the mean of its input at each kernel
    tap (``(C, kh, kw)``; ``(features,)`` for a Linear), from the values :func:`quantize.capture.run_recording`
    records. ``mean(node_name)`` (the call's fx node) is None for a call whose input was never seen."""

    def __init__(self, gm: fx.GraphModule):
        self.readers: dict[str, list[tuple[str, nn.Module]]] = {}  # fx value -> the weighted calls reading it
        for node in gm.graph.nodes:
            if op_kind(gm, node)[0] in ("conv", "conv1d", "linear") and isinstance(node.args[0], fx.Node):
                self.readers.setdefault(node.args[0].name, []).append((node.name, gm.get_submodule(node.target)))
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}

    def update(self, name: str, value: torch.Tensor) -> None:
        for call, mod in self.readers.get(name, ()):
            if isinstance(mod, nn.Conv2d) and value.dim() == 3:   # a Conv1d's (N, C, L), read as (N, C, 1, L)
                value = value.unsqueeze(2)
            total, count = (_conv_tap_sums(value, mod) if isinstance(mod, nn.Conv2d) else
                            (value.double().reshape(-1, value.shape[-1]).sum(0), value.numel() // value.shape[-1]))
            self.sums[call] = self.sums.get(call, 0) + total.numpy()
            self.counts[call] = self.counts.get(call, 0) + count

    def mean(self, call: str) -> np.ndarray | None:
        return self.sums[call] / self.counts[call] if self.counts.get(call) else None


def _conv_tap_sums(x: torch.Tensor, mod: nn.Conv2d) -> tuple[torch.Tensor, int]:
    """Per input channel and kernel tap, the sum of the zero-padded input over the samples and output positions
    the tap reads; and the number of (sample, output position) pairs."""
    top, left, bottom, right = conv_padding(mod)
    xp = F.pad(x.double(), (left, right, top, bottom))
    (kh, kw), (sh, sw), (dh, dw) = pair(mod.kernel_size), pair(mod.stride), pair(mod.dilation)
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    sums = torch.stack([torch.stack([xp[:, :, ky * dh:ky * dh + sh * (oh - 1) + 1:sh,
                                        kx * dw:kx * dw + sw * (ow - 1) + 1:sw].sum((0, 2, 3))
                                     for kx in range(kw)], dim=1) for ky in range(kh)], dim=1)
    return sums, x.shape[0] * oh * ow


def corrected_bias(bias: np.ndarray, weight: np.ndarray, rounded: np.ndarray, input_mean: np.ndarray,
                   groups: int = 1) -> np.ndarray:
    """``bias - (rounded - weight) . input_mean`` per output channel (float64). ``weight``/``rounded``: the float
    weights and their dequantized integer values, ``(O, C/groups, kh, kw)`` or ``(O, features)``;
    ``input_mean``: :meth:`InputMeans.mean`."""
    error = (rounded - weight).astype(np.float64)
    out_channels = error.shape[0]
    error = error.reshape(groups, out_channels // groups, -1)
    mean = input_mean.reshape(groups, -1)
    return bias - np.einsum("gok,gk->go", error, mean).reshape(out_channels)
