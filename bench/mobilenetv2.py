"""MobileNetV2 (1000 classes) in plain torch.nn, laid out as torchvision's ``mobilenet_v2`` (same block
structure, channel counts, strides; no torchvision import), with a width multiplier and any input resolution.

Channels are ``_make_divisible(c * width_mult, 8)`` exactly as torchvision and TF-slim round them. The
last 1x1 conv has ``_make_divisible(1280 * max(1, width_mult))`` channels by default (torchvision, Keras);
``last_channel=`` overrides it -- the MCUNet model zoo's ``mbv2-w0.35`` scales it with the width
(``_make_divisible(1280 * 0.35) = 448``, TF-slim's default), see ``bench/zoo.py``.

Used by ``bench/sim_throughput.py`` (width 1.0, 224x224) and ``bench/zoo.py`` as realistic-size CNNs with
random weights. BatchNorm running statistics are made non-trivial by :func:`realistic_bn_stats` (called by
:func:`build`) so the quantization ranges resemble a trained net's.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU6(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden, kernel=1))
        layers += [ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    # t (expansion), c (output channels), n (repeats), s (first stride) -- torchvision's table
    SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
               [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2,
                 last_channel: int | None = None):
        super().__init__()
        input_channel = _make_divisible(32 * width_mult)
        self.last_channel = last_channel or _make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [ConvBNReLU6(3, input_channel, stride=2)]
        for t, c, n, s in self.SETTING:
            output_channel = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
                input_channel = output_channel
        features.append(ConvBNReLU6(input_channel, self.last_channel, kernel=1))
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = self.pool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def realistic_bn_stats(model: nn.Module, input_shape: tuple[int, ...], calib_batches: int = 2,
                       batch: int = 4) -> nn.Module:
    """Give every BatchNorm layer of ``model`` realistic statistics, using the global torch RNG (seed it
    first): random affine parameters (weight U(0.5, 1.5), bias N(0, 0.1)), and running mean/var accumulated
    over ``calib_batches`` random N(0,1) batches of ``batch`` x ``input_shape`` in train mode (momentum None
    = cumulative average); returns the model in eval mode."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
            m.momentum = None
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        for _ in range(calib_batches):
            model(torch.randn(batch, *input_shape))
    return model.eval()


def build(seed: int = 0, calib_batches: int = 2, batch: int = 4, size: int = 224, width_mult: float = 1.0,
          last_channel: int | None = None) -> MobileNetV2:
    """A MobileNetV2 with random weights (torchvision's initialisation after ``torch.manual_seed(seed)``)
    whose BatchNorm layers hold realistic statistics for ``size`` x ``size`` inputs (:func:`realistic_bn_stats`)."""
    torch.manual_seed(seed)
    model = MobileNetV2(width_mult=width_mult, last_channel=last_channel)
    return realistic_bn_stats(model, (3, size, size), calib_batches, batch)


if __name__ == "__main__":
    net = build()
    n_params = sum(p.numel() for p in net.parameters())
    print(f"MobileNetV2: {n_params} parameters")  # torchvision mobilenet_v2: 3,504,872
