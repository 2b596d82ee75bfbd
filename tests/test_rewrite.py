"""Capture rewrites (quantize/rewrite.py): functional convolutions on parameters become modules that BatchNorm folds
into, and zero paddings merge into the convolution after them, asymmetric ones included, exactly; a channel that
BatchNorm folding left "dead" keeps its bias. Models are written the way their authors write them (TF-style "same"
padding as in EfficientNet-Lite's PyTorch port, keyword spotting's ZeroPad2d before a strided stem)."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from intonly import build_and_run, quantize, simulate
from intonly.quantize.capture import capture, check_supported
from intonly.quantize.errors import UnsupportedOpError
from intonly.quantize.rewrite import PaddedConv2d


class Conv2dStaticSamePadding(nn.Conv2d):
    """TF "SAME" padding computed for a fixed image size, as efficientnet_lite_pytorch.utils writes it."""

    def __init__(self, cin, cout, k, stride=1, groups=1, bias=False, image_size=16):
        super().__init__(cin, cout, k, stride, groups=groups, bias=bias)
        pad = max((-(-image_size // stride) - 1) * stride + k - image_size, 0)
        self.static_padding = nn.ZeroPad2d((pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))

    def forward(self, x):
        return F.conv2d(self.static_padding(x), self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class SameBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Conv2dStaticSamePadding(3, 8, 3, stride=2)
        self.bn0 = nn.BatchNorm2d(8)
        self.dw = Conv2dStaticSamePadding(8, 8, 3, groups=8, image_size=8)
        self.bn1 = nn.BatchNorm2d(8)
        self.head = nn.Linear(8 * 8 * 8, 5)

    def forward(self, x):
        x = F.relu6(self.bn0(self.stem(x)))
        x = F.relu6(self.bn1(self.dw(x)))
        return self.head(torch.flatten(x, 1))


class KeywordSpotting(nn.Module):
    """A DS-CNN stem with TF's asymmetric "SAME" padding of a 10x4 stride-2 conv written as a ZeroPad2d."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 1, 4, 5))
        self.conv = nn.Conv2d(1, 8, (10, 4), stride=2)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 12)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(self.pad(x))))
        x = torch.relu(self.dw(F.pad(x, (0, 0, 0, 0))))
        return self.fc(torch.flatten(self.pool(x), 1))


def _trained_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, as a trained network has."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
    return model.eval()


def test_functional_same_padding_convs_become_folded_modules_with_the_same_output():
    torch.manual_seed(0)
    net = _trained_bn(SameBlock())
    gm = capture(net)
    check_supported(gm)   # no F.conv2d, ZeroPad2d or unfolded BatchNorm left
    modules = dict(gm.named_modules())
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.ZeroPad2d)) for m in modules.values())
    assert type(modules["stem"]) is PaddedConv2d and modules["stem"].pads == (0, 0, 1, 1)  # stride 2: pad after
    assert type(modules["dw"]) is nn.Conv2d and modules["dw"].padding == (1, 1)            # symmetric: plain conv
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), net(x), rtol=1e-5, atol=1e-5)


def test_keyword_spotting_stem_with_an_asymmetric_zero_pad_quantizes_and_the_c_is_bit_exact(gcc, tmp_path):
    torch.manual_seed(1)
    net = _trained_bn(KeywordSpotting())
    x = np.random.default_rng(1).normal(size=(64, 1, 49, 10)).astype(np.float32)
    model = quantize(net, x)
    conv = next(n for n in model.nodes if n.name == "conv")
    assert conv.attrs["padding"] == [4, 1, 5, 1] and conv.attrs["stride"] == [2, 2]   # top, left, bottom, right
    assert [n.op for n in model.nodes].count("conv2d") == 2
    sim = simulate(model, x)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert np.abs(sim.outputs[0] - ref).max() < 0.05 * np.abs(ref).max()
    _, (c_out,) = build_and_run(model, tmp_path / "c", sim.int_inputs)
    np.testing.assert_array_equal(c_out, sim.int_outputs[0])


def test_a_zero_pad_with_another_reader_is_not_merged_and_is_reported():
    class TwoReaders(nn.Module):
        def __init__(self):
            super().__init__()
            self.pad, self.conv = nn.ZeroPad2d(1), nn.Conv2d(1, 2, 3)

        def forward(self, x):
            p = self.pad(x)
            return self.conv(p).sum() + p.sum()

    with pytest.raises(UnsupportedOpError, match=r"pad: torch\.nn\.modules\.padding\.ZeroPad2d"):
        check_supported(capture(TwoReaders()))


def test_a_channel_that_batchnorm_folding_left_dead_keeps_its_bias(gcc, tmp_path):
    """Channel 0's folded weights are ~1e-9 beside a bias of -1.19: the weight scale that holds the bias is used
    (docs/numerics.md, Quantization) instead of failing, and the channel's output is the bias."""
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU6(),
                        nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    net[1].running_var.fill_(1.0)
    net[1].weight.data[0] = 1e-9
    net[1].bias.data[0] = -1.19
    net[1].running_mean.zero_()
    net[1].bias.data[1:] = 0.1
    net.eval()
    x = np.random.default_rng(2).normal(size=(32, 3, 6, 6)).astype(np.float32)
    model = quantize(net, x)
    conv = model.nodes[1]
    assert abs(int(model.param(conv, "bias")[0])) <= 2**30 and not model.param(conv, "weight")[0].any()
    sim = simulate(model, x, keep_values=True)
    with torch.no_grad():
        ref = net[:2](torch.from_numpy(x)).numpy()
    out = model.tensors[conv.outputs[0]]
    dead = sim.values[conv.outputs[0]][..., 0].astype(np.float64)   # HWC: channel 0, clamped by ReLU6 to 0
    np.testing.assert_array_equal(dead, out.zero_point)                # -1.19 -> ReLU6 -> exactly 0
    assert np.all(ref[:, 0] < -1.18)
    _, (c_out,) = build_and_run(model, tmp_path / "c", sim.int_inputs)
    np.testing.assert_array_equal(c_out, sim.int_outputs[0])


def test_an_unsupported_function_is_named_as_users_write_it():
    class Functional(nn.Module):
        def forward(self, x):
            return torch.conv2d(x, x[:, :1].mean(0, keepdim=True).repeat(2, 1, 1, 1)[..., :3, :3])

    with pytest.raises(UnsupportedOpError) as info:
        check_supported(capture(Functional()))
    assert "function torch.conv2d at " in str(info.value) and "_VariableFunctionsClass" not in str(info.value)


def test_a_weight_shared_by_two_functional_convs_keeps_both_strides():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Module()
            self.block.weight = nn.Parameter(torch.randn(4, 2, 3, 3))

        def forward(self, x):
            w = self.block.weight
            return F.conv2d(x, w, stride=1).mean((2, 3)) + F.conv2d(x, w, stride=2).mean((2, 3))

    torch.manual_seed(3)
    net = Shared().eval()
    gm = capture(net)
    convs = {name: m.stride for name, m in gm.named_modules() if isinstance(m, nn.Conv2d)}
    assert sorted(convs.values()) == [(1, 1), (2, 2)] and len(convs) == 2 and "block" in convs
    x = torch.randn(2, 2, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), net(x))


def test_a_batchnorm_after_a_pool_becomes_an_exact_depthwise_conv(gcc, tmp_path):
    """BatchNorm2d that cannot fold (after a pool) is the per-channel affine map: a depthwise 1x1 conv with the
    same float function, then quantized and bit-exact in C like any conv."""
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4), nn.Flatten(),
                        nn.Linear(64, 2))
    with torch.no_grad():
        net[3].running_mean.uniform_(-1, 1)
        net[3].running_var.uniform_(0.5, 2)
        net[3].weight.uniform_(0.5, 1.5)
        net[3].bias.uniform_(-1, 1)
    net.eval()
    gm = capture(net)
    check_supported(gm)
    conv = gm.get_submodule("3")
    assert isinstance(conv, nn.Conv2d) and conv.groups == 4 and conv.kernel_size == (1, 1)
    x = torch.from_numpy(np.random.default_rng(4).normal(size=(16, 3, 10, 10)).astype(np.float32))
    with torch.no_grad():
        torch.testing.assert_close(gm(x), net(x), rtol=1e-5, atol=1e-5)
    model = quantize(net, x.numpy())
    sim = simulate(model, x.numpy()[:4])
    _, (c_out,) = build_and_run(model, tmp_path / "c", sim.int_inputs)
    np.testing.assert_array_equal(c_out, sim.int_outputs[0])
