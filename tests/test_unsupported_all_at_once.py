"""A model holding many unsupported constructs gets one UnsupportedOpError listing every one of them, in graph
order, each with its module path and source line: the calls no rule knows (found at capture) and what the rules
refuse once shapes are known (a GroupNorm with several groups, a bicubic resize), which used to surface one at a
time during lowering."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from intonly import quantize
from intonly.quantize.errors import UnsupportedOpError


class Everything(nn.Module):
    """One independent branch per construct intonly does not take yet."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.GroupNorm(2, 4)
        self.pool = nn.AdaptiveMaxPool2d((3, 3))   # 8x8 -> 3x3: uneven windows
        self.up, self.tconv = nn.Upsample(scale_factor=2, mode="bicubic"), nn.ConvTranspose2d(4, 4, 2, padding=2)
        self.mp = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True)
        self.shuffle, self.mha = nn.ChannelShuffle(2), nn.MultiheadAttention(4, 2, batch_first=True)
        self.fc = nn.Linear(36, 2)

    def forward(self, x):
        y = self.conv(x)
        return (self.fc(self.pool(y).flatten(1)), self.norm(y), self.up(y), self.tconv(y), self.mp(y),
                self.shuffle(y), torch.div(y, 2, rounding_mode="floor"), y / y,
                self.mha(*[y.flatten(2).transpose(1, 2)] * 3)[1])


def test_every_unsupported_construct_is_listed_in_one_error():
    x = np.random.default_rng(0).normal(size=(4, 3, 8, 8)).astype(np.float32)
    with pytest.raises(UnsupportedOpError) as info:
        quantize(Everything().eval(), x)
    listed = [(path, desc.rpartition(" at ")[0]) for path, desc in info.value.ops]
    assert listed == [
        ("pool", "AdaptiveMaxPool2d 8x8 -> 3x3 (only evenly dividing windows)"),
        ("norm", "GroupNorm with 2 groups (only 1: a LayerNorm over (C, H, W))"),
        ("up", "resize with mode='bicubic' of per-sample shape (4, 8, 8) to (4, 16, 16) (only nearest by integer "
               "factors, or bilinear without antialias, of an image)"),
        ("tconv", "ConvTranspose2d with padding above dilation * (kernel_size - 1) (the output would be cropped)"),
        ("mp", "AvgPool2d with ceil_mode=True, padding and count_include_pad=True (PyTorch counts the padding but "
               "not the ceil_mode overhang)"),
        ("shuffle", "torch.nn.modules.channelshuffle.ChannelShuffle"),
        ("div", "multiplication or division by zero or by something other than a tensor or a number (no keyword "
                "arguments)"),
        ("truediv", "multiplication or division by zero or by something other than a tensor or a number (no "
                    "keyword arguments)"),
        ("mha", "MultiheadAttention with its attention weights used (only the output, mha(x, x, x)[0])"),
    ]
    assert all(desc.rpartition(" at ")[2].startswith(__file__ + ":") for _, desc in info.value.ops)
    assert str(info.value).startswith("9 unsupported op(s) in the model:\n  - pool: AdaptiveMaxPool2d 8x8 -> 3x3")


def test_a_lowering_refusal_alone_is_still_one_error_with_its_source_line():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(196, 2)).eval()
    with pytest.raises(UnsupportedOpError, match=r"^1 unsupported op\(s\) in the model:\n  - 1: GroupNorm with 2 "
                                                 r"groups \(only 1: a LayerNorm over \(C, H, W\)\)"):
        quantize(net, np.zeros((2, 3, 9, 9), np.float32))
