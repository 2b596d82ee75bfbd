"""The elementwise product of two tensors (``mul``), as squeeze-and-excitation blocks write it (EfficientNet-B0,
MobileNetV3: a per-channel sigmoid gate times the feature map) and as a plain same-shape product: close to FP32,
hwsim == host C == Cortex-M4 under QEMU bit for bit, and the int32 product proven."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import QuantConfig, quantize, simulate
from intonly.quantize.bounds import node_bounds


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.reduce, self.expand = nn.Conv2d(channels, reduced, 1), nn.Conv2d(reduced, channels, 1)
        self.act, self.gate = nn.SiLU(), nn.Sigmoid()

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class GatedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.other = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 1)
        self.se = SqueezeExcite(8, 2)
        self.fc = nn.Linear(8 * 6 * 6, 4)

    def forward(self, x):
        y = self.se(torch.relu(self.stem(x)))
        return self.fc((y * self.other(x)).flatten(1))


@pytest.fixture(scope="module")
def gated():
    torch.manual_seed(0)
    net = GatedNet().eval()
    x = np.random.default_rng(0).normal(size=(32, 3, 6, 6)).astype(np.float32)
    return net, quantize(net, x), x


def test_gate_and_product_lower_to_mul_close_to_fp32(gated):
    net, model, x = gated
    muls = [n for n in model.nodes if n.op == "mul"]
    assert [(model.tensors[n.inputs[0]].shape, model.tensors[n.inputs[1]].shape) for n in muls] == \
        [((6, 6, 8), (1, 1, 8)), ((6, 6, 8), (6, 6, 8))]
    assert all(b.value <= 255 * 255 for n in muls for b in node_bounds(model, n))
    assert float_sqnr_db(net, x, model) > 25


def test_mul_is_bit_exact_in_host_c_and_on_cortex_m4(gated, tmp_path):
    _, model, x = gated
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:4], tmp_path)


def test_fast_kernel_equals_the_reference_kernel(gated):
    _, model, x = gated
    fast, reference = simulate(model, x, keep_values=True), simulate(model, x, fast=False, keep_values=True)
    for name in reference.values:
        np.testing.assert_array_equal(fast.values[name], reference.values[name])


def test_act_bits_16_narrows_the_product_operands_to_the_int32_bound():
    x = np.random.default_rng(0).normal(size=(8, 3, 6, 6)).astype(np.float32)
    model = quantize(GatedNet().eval(), x, QuantConfig(act_bits=16))
    for node in (n for n in model.nodes if n.op == "mul"):
        a, b = (model.tensors[t] for t in node.inputs)
        assert ((1 << a.bits) - 1) * ((1 << b.bits) - 1) < 2**31 and min(a.bits, b.bits) >= 15
