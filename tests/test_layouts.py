"""Conv1d and permute / transpose / squeeze / unsqueeze / view on images and sequences, as audio models and
channels-last blocks (ConvNeXt-style LayerNorm + Linear over channels) write them: close to FP32 (SQNR reported),
no data movement where the stored layout already is the value PyTorch asks for, per-layer compare across layouts,
and hwsim == host C == Cortex-M4 under QEMU bit for bit."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import compare, quantize, simulate


class KeywordConv1d(nn.Module):
    """A 1-D keyword-spotting front end: strided Conv1d + BatchNorm1d, depthwise and pointwise Conv1d, then the
    last frame of the (N, L, C) sequence into a classifier."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv1d(10, 16, 5, stride=2, padding=2), nn.BatchNorm1d(16)
        self.depthwise, self.pointwise = nn.Conv1d(16, 16, 3, padding=1, groups=16), nn.Conv1d(16, 24, 1)
        self.fc = nn.Linear(24, 4)

    def forward(self, x):
        y = torch.relu(self.bn(self.stem(x)))
        y = torch.relu(self.pointwise(torch.relu(self.depthwise(y))))
        return self.fc(y.transpose(1, 2)[:, -1])


class ChannelsLast(nn.Module):
    """A ConvNeXt-style block: permute to channels-last, LayerNorm and Linear over channels, permute back, conv;
    then two more layout changes on the outputs."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm = nn.Conv2d(3, 8, 3, padding=1), nn.LayerNorm(8)
        self.pw, self.head = nn.Linear(8, 8), nn.Conv2d(8, 4, 3)

    def forward(self, x):
        y = self.pw(self.norm(self.conv(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        return self.head(y).transpose(2, 3).flatten(1), y.unsqueeze(1).squeeze(1).transpose(1, 2)


def _net(cls):
    torch.manual_seed(0)
    net = cls().eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net


def _quantized(cls, shape):
    net = _net(cls)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    return net, quantize(net, x), x


@pytest.fixture(scope="module")
def conv1d():
    return _quantized(KeywordConv1d, (32, 10, 20))


@pytest.fixture(scope="module")
def channels_last():
    return _quantized(ChannelsLast, (16, 3, 6, 6))


@pytest.fixture(params=["conv1d", "channels_last"])
def layered(request):
    return request.getfixturevalue(request.param)


def test_consecutive_conv1d_layers_and_their_transpose_move_no_data(conv1d):
    net, model, x = conv1d
    transposes = [n.name for n in model.nodes if n.op == "transpose"]
    assert transposes == ["x_q_lc"]   # only the input, into the (L, C) storage the convolutions share
    assert [model.tensors[n.outputs[0]].layout for n in model.nodes if n.op == "conv2d"] == ["HWC"] * 3
    assert float_sqnr_db(net, x, model) > 35


def test_permuting_an_image_to_channels_last_and_back_moves_no_data(channels_last):
    net, model, x = channels_last
    ops = {n.name: n.op for n in model.nodes}
    assert ops["permute"] == ops["permute_1"] == "reshape"
    assert model.tensors["permute"].layout == "" and model.tensors["permute_1"].layout == "HWC"
    # head(y).transpose(2, 3); y into PyTorch's order for unsqueeze (a reshape); then the transpose(1, 2)
    assert [n.name for n in model.nodes if n.op == "transpose"] == ["transpose", "permute_1_plain", "transpose_1"]
    assert float_sqnr_db(net, x, model) > 30


def test_compare_reads_every_layout(layered):
    net, model, x = layered
    rows = {row.source: row for row in compare(net, model, x[:8])}
    for name in ("relu", "relu_2") if isinstance(net, KeywordConv1d) else ("pw", "permute_1", "transpose_1"):
        assert rows[name].sqnr_db > 25, name


def test_layouts_are_bit_exact_in_host_c_and_on_cortex_m4(layered, tmp_path):
    _, model, x = layered
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:3], tmp_path)


class SuperResolution(nn.Module):
    """ESPCN-style sub-pixel upsampling (PixelShuffle) and its inverse."""

    def __init__(self):
        super().__init__()
        self.expand, self.shuffle = nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2)
        self.refine, self.unshuffle = nn.Conv2d(3, 8, 3, padding=1), nn.PixelUnshuffle(2)

    def forward(self, x):
        y = self.shuffle(self.expand(x))
        return self.unshuffle(self.refine(y)), torch.nn.functional.pixel_shuffle(self.expand(x), 2)


def test_pixel_shuffle_and_unshuffle_move_the_codes_as_pytorch_does(tmp_path):
    torch.manual_seed(0)
    net = SuperResolution().eval()
    x = np.random.default_rng(0).normal(size=(8, 3, 6, 4)).astype(np.float32)
    model = quantize(net, x)
    sim = simulate(model, x, keep_values=True)
    for name, shuffle in (("shuffle", nn.PixelShuffle(2)), ("unshuffle", nn.PixelUnshuffle(2))):
        before = next(n for n in model.nodes if n.name == f"{name}_split0").inputs[0]
        codes = torch.from_numpy(sim.values[before].transpose(0, 3, 1, 2).astype(np.float32))
        np.testing.assert_array_equal(sim.values[name], shuffle(codes).numpy().transpose(0, 2, 3, 1))
    assert float_sqnr_db(net, x, model) > 30
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:3], tmp_path)
