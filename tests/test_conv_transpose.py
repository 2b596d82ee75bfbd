"""``nn.ConvTranspose2d`` (decoders, U-Net and segmentation heads, autoencoders) as zeros inserted between the
input's pixels (``zero_insert``, filled with the input zero point) and a stride-1 conv2d with the flipped kernel:
the rewrite computes what the module computes (stride, padding, output_padding, groups, dilation; a BatchNorm after
it folds), the integer model is close to FP32, and hwsim == host C == Cortex-M4 under QEMU bit for bit."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import quantize
from intonly.quantize.capture import capture
from intonly.quantize.errors import UnsupportedOpError


@pytest.mark.parametrize("tconv", [nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
                                   nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=2),
                                   nn.ConvTranspose2d(4, 2, (2, 3), stride=(1, 3), dilation=2),
                                   nn.ConvTranspose2d(4, 4, 3, padding=1, bias=False)])
def test_the_rewrite_computes_what_the_transposed_conv_computes(tconv):
    torch.manual_seed(0)
    net = nn.Sequential(tconv).eval()
    x = torch.randn(3, 4, 5, 6)
    gm = capture(net)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in gm.modules())
    with torch.no_grad():
        np.testing.assert_allclose(gm(x).numpy(), net(x).numpy(), atol=1e-5)


class Decoder(nn.Module):
    """An encoder-decoder: a strided conv down, three transposed convs up (BatchNorm after the first)."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up1, self.bn = nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(8)
        self.up2 = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, groups=2)
        self.up3 = nn.ConvTranspose2d(4, 2, 2, dilation=2)

    def forward(self, x):
        return self.up3(torch.relu(self.up2(torch.relu(self.bn(self.up1(torch.relu(self.enc(x))))))))


@pytest.fixture(scope="module")
def decoder():
    torch.manual_seed(0)
    net = Decoder().eval()
    x = np.random.default_rng(0).normal(size=(16, 3, 8, 8)).astype(np.float32)
    return net, quantize(net, x), x


def test_transposed_convs_lower_to_zero_insertion_and_conv2d_close_to_fp32(decoder):
    net, model, x = decoder
    assert [n.op for n in model.nodes] == ["quantize", "conv2d", "zero_insert", "conv2d", "zero_insert", "conv2d",
                                           "conv2d", "dequantize"]   # the BatchNorm folded; up3 has stride 1
    assert float_sqnr_db(net, x, model) > 45


def test_transposed_convs_are_bit_exact_in_host_c_and_on_cortex_m4(decoder, tmp_path):
    _, model, x = decoder
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:3], tmp_path)


def test_a_transposed_conv_that_would_crop_is_refused():
    net = nn.Sequential(nn.ConvTranspose2d(3, 3, 3, stride=2, padding=3)).eval()
    with pytest.raises(UnsupportedOpError) as info:
        quantize(net, np.zeros((2, 3, 6, 6), np.float32))
    assert [(p, d.rpartition(" at ")[0] or d) for p, d in info.value.ops] == [
        ("0", "ConvTranspose2d with padding above dilation * (kernel_size - 1) (the output would be cropped)")]
