"""LayerNorm over several trailing axes (an image's (C, H, W), a feature map's (H, W)) and GroupNorm with one group
(ConvNeXt-V1 / PoolFormer-style "LayerNorm over channels and space"): the integer ``layernorm`` over the axes
flattened into one, gamma and beta broadcast; close to FP32 and hwsim == host C == Cortex-M4 under QEMU."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import quantize
from intonly.quantize.errors import UnsupportedOpError


class Normed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.whole = nn.Conv2d(3, 6, 3, padding=1), nn.LayerNorm([6, 5, 5])
        self.spatial = nn.LayerNorm([5, 5])
        self.group, self.head = nn.GroupNorm(1, 6), nn.Conv2d(6, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return self.head(torch.relu(self.whole(y)) + self.spatial(y) + self.group(y)).flatten(1)


@pytest.fixture(scope="module")
def normed():
    torch.manual_seed(0)
    net = Normed().eval()
    with torch.no_grad():
        for norm in (net.whole, net.spatial, net.group):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    x = np.random.default_rng(0).normal(size=(32, 3, 5, 5)).astype(np.float32)
    return net, quantize(net, x), x


def test_multi_axis_norms_lower_to_layernorm_close_to_fp32(normed):
    net, model, x = normed
    norms = [n for n in model.nodes if n.op == "layernorm"]
    assert [model.tensors[n.inputs[0]].shape for n in norms] == [(150,), (6, 25), (150,)]
    assert float_sqnr_db(net, x, model) > 30


def test_multi_axis_norms_are_bit_exact_in_host_c_and_on_cortex_m4(normed, tmp_path):
    _, model, x = normed
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:3], tmp_path)


def test_groupnorm_with_several_groups_is_refused():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.GroupNorm(2, 4)).eval()
    with pytest.raises(UnsupportedOpError) as info:
        quantize(net, np.zeros((2, 3, 4, 4), np.float32))
    assert [(p, d.rpartition(" at ")[0] or d) for p, d in info.value.ops] == [
        ("1", "GroupNorm with 2 groups (only 1: a LayerNorm over (C, H, W))")]
