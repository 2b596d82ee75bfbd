"""Average pools whose windows do not tile the input (and AdaptiveMaxPool2d, whose windows must): ``AdaptiveAvgPool2d`` with uneven (overlapping, unequal)
windows lowers to ``adaptive_avgpool`` and ``AvgPool2d(ceil_mode=True)`` to ``avgpool`` with uncounted overhang
padding. Each equals PyTorch's average of the integer codes rounded half away from zero, and hwsim == host C ==
Cortex-M4 under QEMU bit for bit."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import quantize, simulate
from intonly.quantize.errors import UnsupportedOpError


def _rounded_half_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


@pytest.mark.parametrize("size, pool, op", [
    ((7, 7), nn.AdaptiveAvgPool2d(3), "adaptive_avgpool"),
    ((5, 7), nn.AdaptiveAvgPool2d((3, 2)), "adaptive_avgpool"),
    ((3, 4), nn.AdaptiveAvgPool2d((5, 3)), "adaptive_avgpool"),     # more outputs than inputs: windows repeat
    ((7, 7), nn.AvgPool2d(2, ceil_mode=True), "avgpool"),
    ((8, 9), nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False), "avgpool"),
    ((9, 9), nn.AvgPool2d(3, 2, ceil_mode=True), "avgpool"),
    ((6, 8), nn.AdaptiveMaxPool2d((3, 2)), "maxpool")])
def test_uneven_average_pools_equal_pytorch_on_the_codes(size, pool, op):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), pool).eval()
    x = np.random.default_rng(0).normal(size=(4, 3, *size)).astype(np.float32)
    model = quantize(net, x)
    sim = simulate(model, x, keep_values=True)
    node = next(n for n in model.nodes if n.op in ("avgpool", "adaptive_avgpool", "maxpool"))
    assert node.op == op
    codes = torch.from_numpy(sim.values[node.inputs[0]].transpose(0, 3, 1, 2).astype(np.float64))
    with torch.no_grad():
        expected = _rounded_half_away(pool(codes).numpy().transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(sim.values[node.outputs[0]], expected)


class UnevenHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.pool = nn.Conv2d(3, 6, 3), nn.AvgPool2d(3, 2, ceil_mode=True)
        self.adaptive, self.fc = nn.AdaptiveAvgPool2d((2, 3)), nn.Linear(36, 3)

    def forward(self, x):
        return self.fc(self.adaptive(self.pool(torch.relu(self.conv(x)))).flatten(1))


def test_uneven_pools_are_close_to_fp32_and_bit_exact_in_host_c_and_on_cortex_m4(tmp_path):
    torch.manual_seed(1)
    net = UnevenHead().eval()
    x = np.random.default_rng(1).normal(size=(16, 3, 12, 12)).astype(np.float32)
    model = quantize(net, x)
    assert [n.op for n in model.nodes if "pool" in n.op] == ["avgpool", "adaptive_avgpool"]
    assert float_sqnr_db(net, x, model) > 30
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:4], tmp_path)


def test_uneven_adaptive_max_pool_is_refused():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveMaxPool2d(3)).eval()
    with pytest.raises(UnsupportedOpError) as info:
        quantize(net, np.zeros((2, 3, 7, 7), np.float32))
    assert [(p, d.rpartition(" at ")[0] or d) for p, d in info.value.ops] == [
        ("1", "AdaptiveMaxPool2d 7x7 -> 3x3 (only evenly dividing windows)")]


def test_ceil_mode_average_counting_padding_but_not_the_overhang_is_refused():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AvgPool2d(3, 2, padding=1, ceil_mode=True)).eval()
    with pytest.raises(UnsupportedOpError) as info:
        quantize(net, np.zeros((2, 3, 8, 8), np.float32))
    assert [(p, d.rpartition(" at ")[0] or d) for p, d in info.value.ops] == [
        ("1", "AvgPool2d with ceil_mode=True, padding and count_include_pad=True (PyTorch counts the padding but not "
              "the ceil_mode overhang)")]
