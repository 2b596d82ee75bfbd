"""Softmax outside attention: a classifier's probabilities (``nn.Softmax(dim=1)`` on logits), a segmentation
head's per-pixel class probabilities (``F.softmax(x, dim=1)`` over an image's channels, stored last in HWC), and a
softmax over an image's width (``Tensor.softmax(-1)``, transposed first): the configured integer softmax, close to
FP32, and hwsim == host C == Cortex-M4 under QEMU bit for bit."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4

from intonly import QuantConfig, quantize, simulate
from intonly.quantize.errors import UnsupportedOpError


class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.classes = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 5, 1)
        self.fc, self.probabilities = nn.Linear(8 * 6 * 6, 10), nn.Softmax(dim=1)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return (self.probabilities(self.fc(y.flatten(1))), F.softmax(self.classes(y), dim=1),
                self.classes(y).softmax(-1))


def _sqnr(ref: np.ndarray, out: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((out - ref) ** 2)))


@pytest.fixture(scope="module")
def heads():
    torch.manual_seed(0)
    net = Heads().eval()
    x = np.random.default_rng(0).normal(size=(32, 3, 6, 6)).astype(np.float32)
    return net, x


@pytest.mark.parametrize("family", ["shiftmax", "iexp"])
def test_softmax_heads_are_close_to_fp32(heads, family):
    net, x = heads
    model = quantize(net, x, QuantConfig(softmax=family))
    assert sum(n.op == ("shiftmax" if family == "shiftmax" else "iexp_softmax") for n in model.nodes) == 3
    with torch.no_grad():
        refs = [r.numpy().astype(np.float64) for r in net(torch.from_numpy(x))]
    outs = simulate(model, x).outputs
    for ref, out, axis in zip(refs, outs, (1, 1, -1)):
        np.testing.assert_allclose(out.sum(axis=axis), 1.0, atol=0.02)
        assert _sqnr(ref, out) > (25 if family == "shiftmax" else 35)


def test_softmax_heads_are_bit_exact_in_host_c_and_on_cortex_m4(heads, tmp_path):
    net, x = heads
    assert_c_equals_hwsim_on_host_and_cortex_m4(quantize(net, x), x[:3], tmp_path)


def test_softmax_over_several_axes_is_refused():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Softmax(dim=None)).eval()
    with pytest.raises(UnsupportedOpError) as info:
        quantize(net, np.zeros((2, 3, 4, 4), np.float32))
    assert [(p, d.rpartition(" at ")[0] or d) for p, d in info.value.ops] == [
        ("1", "softmax over dim=None of a tensor of per-sample shape (4, 4, 4) (only one axis, the last, or an "
              "image's channels)")]
