"""Nearest-neighbour upsampling (``nn.Upsample``, ``nn.UpsamplingNearest2d``, ``F.interpolate``) by integer
factors, as FPN/U-Net decoders write it, lowers to ``resize_nearest``: equal to PyTorch on the dequantized grid,
hwsim == host C == Cortex-M4 under QEMU bit for bit; other modes and fractional factors are refused by name."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import quantize, simulate
from intonly.quantize.errors import UnsupportedOpError


def test_upsampling_lowers_to_resize_nearest_and_repeats_codes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Upsample(scale_factor=(2, 3)), nn.Flatten(),
                        nn.Linear(4 * 10 * 15, 2)).eval()
    x = np.random.default_rng(0).normal(size=(8, 3, 5, 5)).astype(np.float32)
    model = quantize(net, x)
    node = next(n for n in model.nodes if n.op == "resize_nearest")
    assert node.attrs["scale"] == [2, 3]
    sim = simulate(model, x, keep_values=True)
    before, after = sim.values[node.inputs[0]], sim.values[node.outputs[0]]
    np.testing.assert_array_equal(after, before.repeat(2, axis=1).repeat(3, axis=2))


class Interpolations(nn.Module):
    def forward(self, x):
        return F.interpolate(x, size=(8, 12), mode="nearest-exact") + F.interpolate(x, scale_factor=(2, 3))


def test_functional_interpolate_forms_lower_too():
    x = np.random.default_rng(3).normal(size=(4, 3, 4, 4)).astype(np.float32)
    model = quantize(Interpolations(), x)
    assert [n.attrs["scale"] for n in model.nodes if n.op == "resize_nearest"] == [[2, 3], [2, 3]]
    out = simulate(model, x).outputs[0]
    with torch.no_grad():
        ref = Interpolations()(torch.from_numpy(x)).numpy().astype(np.float64)
    assert 10 * np.log10(np.sum(ref ** 2) / np.sum((out - ref) ** 2)) > 30


def test_nearest_upsampling_is_bit_exact_in_host_c_and_on_cortex_m4(tmp_path):
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
                        nn.Conv2d(4, 4, 3, padding=1), nn.UpsamplingNearest2d(size=(16, 24)), nn.Flatten(),
                        nn.Linear(4 * 16 * 24, 3)).eval()
    x = np.random.default_rng(2).normal(size=(8, 3, 8, 8)).astype(np.float32)
    model = quantize(net, x)
    assert [n.attrs["scale"] for n in model.nodes if n.op == "resize_nearest"] == [[2, 2], [2, 3]]
    assert float_sqnr_db(net, x, model) > 25
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:4], tmp_path)


@pytest.mark.parametrize("layer, message", [
    (nn.Upsample(scale_factor=2, mode="bicubic"), "resize with mode='bicubic' of per-sample shape (3, 4, 4) to "
                                                  "(3, 8, 8) (only nearest by integer factors, or bilinear without "
                                                  "antialias, of an image)"),
    (nn.Upsample(size=(6, 6)), "resize with mode='nearest' of per-sample shape (3, 4, 4) to (3, 6, 6)"),
])
def test_other_resizes_are_refused_by_name(layer, message):
    with pytest.raises(UnsupportedOpError) as info:
        quantize(nn.Sequential(layer).eval(), np.ones((2, 3, 4, 4), np.float32))
    assert info.value.ops[0][1].startswith(message)
