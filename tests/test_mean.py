"""``Tensor.mean`` / ``torch.mean`` over an image's spatial dims (how MobileNetV3, EfficientNet and timm models
pool) lowers to the integer global ``avgpool`` (+ ``reshape`` without keepdim): close to FP32, and hwsim == host C
== Cortex-M4 under QEMU bit for bit. Other reductions are refused by name."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4

from intonly import quantize, simulate
from intonly.quantize.errors import UnsupportedOpError


class SpatialMeans(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc(y.mean((2, 3))), torch.mean(y, dim=(-1, -2), keepdim=True)


@pytest.fixture(scope="module")
def means_model():
    torch.manual_seed(0)
    net = SpatialMeans().eval()
    x = np.random.default_rng(0).normal(size=(16, 3, 7, 7)).astype(np.float32)
    return net, quantize(net, x), x


def test_spatial_mean_is_a_global_avgpool_close_to_fp32(means_model):
    net, model, x = means_model
    assert [n.op for n in model.nodes] == ["quantize", "conv2d", "avgpool", "reshape", "dense", "avgpool",
                                           "dequantize", "dequantize"]
    pool = model.nodes[2]
    assert pool.attrs["kernel"] == pool.attrs["stride"] == [5, 5]
    with torch.no_grad():
        ref = [r.numpy().astype(np.float64) for r in net(torch.from_numpy(x))]
    for out, r in zip(simulate(model, x).outputs, ref):
        assert out.shape == r.shape
        assert 10 * np.log10(np.sum(r ** 2) / np.sum((out - r) ** 2)) > 30


def test_spatial_mean_is_bit_exact_in_host_c_and_on_cortex_m4(means_model, tmp_path):
    _, model, x = means_model
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:4], tmp_path)


def test_a_mean_over_channels_is_refused_by_name():
    class ChannelMean(nn.Module):
        def forward(self, x):
            return x.mean(1)

    with pytest.raises(UnsupportedOpError, match=r"mean: mean over dim=1 of a tensor of per-sample shape "
                                                 r"\(3, 4, 4\) \(only the spatial dims \(2, 3\) of an image\)"):
        quantize(ChannelMean(), np.ones((2, 3, 4, 4), np.float32))
