"""A model holding many unsupported constructs gets one UnsupportedOpError listing every one of them, in graph
order, each with its module path and source line: the calls no rule knows (found at capture) and what the rules
refuse once shapes are known (an uneven adaptive pool, a LayerNorm over (C, H, W)), which used to surface one at a
time during lowering."""

import numpy as np
import pytest
import torch.nn as nn

from intonly import quantize
from intonly.quantize.errors import UnsupportedOpError


class Everything(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.LayerNorm([4, 8, 8])
        self.pool = nn.AdaptiveAvgPool2d((3, 3))
        self.act, self.sig, self.up = nn.SiLU(), nn.Sigmoid(), nn.Upsample(scale_factor=2)
        self.tconv, self.bn, self.mp = nn.ConvTranspose2d(4, 4, 2), nn.BatchNorm2d(4), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(36, 2)

    def forward(self, x):
        y = self.conv(x)
        a = self.fc(self.pool(y).flatten(1))
        b = self.act(self.norm(y)) * self.sig(y) - 0.25
        c = self.bn(self.mp(self.up(y)))
        d = self.tconv(y).mean(dim=(2, 3))
        return a, b, c, d


def test_every_unsupported_construct_is_listed_in_one_error():
    x = np.random.default_rng(0).normal(size=(4, 3, 8, 8)).astype(np.float32)
    with pytest.raises(UnsupportedOpError) as info:
        quantize(Everything().eval(), x)
    listed = [(path, desc.rpartition(" at ")[0]) for path, desc in info.value.ops]
    assert listed == [
        ("pool", "AdaptiveAvgPool2d 8x8 -> 3x3 (only evenly dividing windows)"),
        ("norm", "LayerNorm over (4, 8, 8) (only the last axis)"),
        ("act", "torch.nn.modules.activation.SiLU"),
        ("sig", "torch.nn.modules.activation.Sigmoid"),
        ("mul", "function operator.mul"),
        ("sub", "function operator.sub"),
        ("up", "torch.nn.modules.upsampling.Upsample"),
        ("mp", "MaxPool2d with ceil_mode=True"),
        ("bn", "BatchNorm2d not directly after a Conv2d/Linear (cannot be folded)"),
        ("tconv", "torch.nn.modules.conv.ConvTranspose2d"),
        ("mean", "method Tensor.mean"),
    ]
    assert all(desc.rpartition(" at ")[2].startswith(__file__ + ":") for _, desc in info.value.ops)
    assert str(info.value).startswith("11 unsupported op(s) in the model:\n  - pool: AdaptiveAvgPool2d 8x8 -> 3x3")


def test_a_lowering_refusal_alone_is_still_one_error_with_its_source_line():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64, 2)).eval()
    with pytest.raises(UnsupportedOpError, match=r"^1 unsupported op\(s\) in the model:\n  - 1: AdaptiveAvgPool2d "
                                                 r"7x7 -> 4x4 \(only evenly dividing windows\)"):
        quantize(net, np.zeros((2, 3, 9, 9), np.float32))
