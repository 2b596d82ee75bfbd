"""Cross-layer equalization (Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction",
ICCV 2019, section 4.1; AIMET and NNCF ship it as "cross-layer equalization").

For two weighted layers in a row, ``y = W2 f(W1 x + b1) + b2``, with ``f`` positively homogeneous channel by
channel (identity, ReLU, LeakyReLU, max and average pooling: ``f(x / s) = f(x) / s`` for ``s > 0``), dividing
output channel ``i`` of layer 1 (its weights and bias) by ``s_i`` and multiplying input channel ``i`` of layer 2 by
``s_i`` leaves ``y`` unchanged. The choice
    s_i = sqrt(r1_i / r2_i),  r1_i = max|W1[i, ...]|,  r2_i = max|W2[:, i, ...]| (over the group holding channel i)
gives both channels the range ``sqrt(r1_i r2_i)``, which spreads the per-channel weight ranges evenly between the
layers (and with them the activation ranges between channels, which per-tensor activation scales feel). The pass
runs over every such pair (Conv2d/Conv1d/Linear, also grouped and depthwise; the first layer's output read by
nothing else) and repeats until no scale moves by more than 1e-4 (at most 100 sweeps; a chain of layers converges
linearly, in about 35), in float64, before calibration, so the float function is unchanged up to float rounding.
ReLU6 and Hardtanh are not positively homogeneous (their clamp at 6 would move to ``6 / s_i`` per channel), so
pairs joined by them are left alone, as is a Conv2d whose output is flattened into a Linear.
"""

from __future__ import annotations

import torch
import torch.fx as fx
import torch.nn as nn

from .capture import op_kind

# op kinds f with f(x / s) = f(x) / s per channel for s > 0 (LeakyReLU: see _homogeneous)
HOMOGENEOUS = ("relu", "identity", "maxpool", "avgpool", "adaptive_avgpool")
SWEEPS, TOLERANCE = 100, 1e-4


def _homogeneous(gm: fx.GraphModule, node: fx.Node) -> bool:
    kind, _ = op_kind(gm, node)
    if kind in HOMOGENEOUS:
        return True
    return node.op == "call_module" and type(gm.get_submodule(node.target)) is nn.LeakyReLU


def _weighted(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    if node.op != "call_module" or op_kind(gm, node)[0] not in ("conv", "conv1d", "linear"):
        return None
    return gm.get_submodule(node.target)


def equalizable_pairs(gm: fx.GraphModule) -> list[tuple[fx.Node, fx.Node]]:
    """``(first, second)`` calls of weighted modules joined only by positively homogeneous activations, each module
    called once, the first's output (and every activation's) read by one node."""
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in gm.graph.nodes:
        first = _weighted(gm, node)
        if first is None or calls[node.target] != 1:
            continue
        reader = node
        while len(reader.users) == 1:
            reader = next(iter(reader.users))
            second = _weighted(gm, reader)
            if second is not None:
                if calls[reader.target] == 1 and _fits(first, second):
                    pairs.append((node, reader))
                break
            if not _homogeneous(gm, reader):
                break
    return pairs


def _fits(first: nn.Module, second: nn.Module) -> bool:
    """The second layer reads the first's output channels as its input channels (no flatten in between)."""
    channels_in = second.in_channels if isinstance(second, nn.Conv2d) else second.in_features
    channels_out = first.out_channels if isinstance(first, nn.Conv2d) else first.out_features
    return channels_in == channels_out and isinstance(first, nn.Conv2d) == isinstance(second, nn.Conv2d)


def _input_channel_ranges(second: nn.Module) -> torch.Tensor:
    """max |W2| over everything that reads input channel i, per i (grouped convolutions: within the group)."""
    w = second.weight.detach().double().abs()
    groups = getattr(second, "groups", 1)
    per_group_in = w.shape[1]
    w = w.reshape(groups, w.shape[0] // groups, per_group_in, -1)   # (group, out in group, in in group, taps)
    return w.amax(dim=(1, 3)).reshape(groups * per_group_in)


def _scale_input_channels(second: nn.Module, scale: torch.Tensor) -> None:
    groups = getattr(second, "groups", 1)
    w = second.weight.data
    shape = (groups, w.shape[0] // groups, w.shape[1], -1)
    per_channel = scale.reshape(groups, 1, w.shape[1], 1).to(w.dtype)
    second.weight.data = (w.reshape(shape) * per_channel).reshape(w.shape)


def equalize(gm: fx.GraphModule) -> set[str]:
    """Equalize every pair of :func:`equalizable_pairs` in place. Returns the fx values whose float values changed
    (each first layer's output and the activations after it, now channel-wise rescaled), which therefore no longer
    match the original model's values of the same name."""
    calls = equalizable_pairs(gm)
    rescaled = set()
    for first, second in calls:
        node = first
        while node is not second:
            rescaled.add(node.name)
            node = next(iter(node.users))
    pairs = [(gm.get_submodule(a.target), gm.get_submodule(b.target)) for a, b in calls]
    with torch.no_grad():
        for _ in range(SWEEPS):
            largest_move = 0.0
            for first, second in pairs:
                r1 = first.weight.detach().double().abs().reshape(first.weight.shape[0], -1).amax(1)
                r2 = _input_channel_ranges(second)
                usable = (r1 > 0) & (r2 > 0)
                scale = torch.where(usable, torch.sqrt(r1 / torch.where(usable, r2, 1.0)), torch.ones_like(r1))
                shape = (-1,) + (1,) * (first.weight.dim() - 1)
                first.weight.data = (first.weight.double() / scale.reshape(shape)).to(first.weight.dtype)
                if first.bias is not None:
                    first.bias.data = (first.bias.double() / scale).to(first.bias.dtype)
                _scale_input_channels(second, scale)
                largest_move = max(largest_move, float((scale - 1).abs().max()))
            if largest_move < TOLERANCE:
                break
    return rescaled
