"""Smooth activations as model code writes them (modules, torch functions, Tensor methods) lower to the integer
``lookup`` op: its table is the float function at every input code on the output grid (checked code by code),
the model stays close to FP32, and hwsim == host C == Cortex-M4 under QEMU bit for bit."""

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import quantize
from intonly.quantize.errors import ModelFileError


class SmoothHead(nn.Module):
    """Every supported smooth activation, each in the form models write it, without tensor products."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 1)
        self.hswish, self.silu, self.elu = nn.Hardswish(), nn.SiLU(), nn.ELU(alpha=0.5)
        self.leaky, self.prelu, self.hsig = nn.LeakyReLU(0.1), nn.PReLU(), nn.Hardsigmoid()
        self.gelu_tanh = nn.GELU(approximate="tanh")
        self.fc = nn.Linear(6 * 5 * 5, 4)

    def forward(self, x):
        y = self.hswish(self.c1(x))
        y = self.elu(self.c2(self.silu(y))) + self.leaky(y)
        y = self.prelu(y) + self.hsig(y)
        y = torch.sigmoid(y) + F.softplus(y).tanh()
        return self.fc(self.gelu_tanh(F.mish(y)).flatten(1))


@pytest.fixture(scope="module")
def head_model():
    torch.manual_seed(1)
    net = SmoothHead().eval()
    x = np.random.default_rng(1).normal(size=(32, 3, 5, 5)).astype(np.float32)
    return net, quantize(net, x), x


def test_tables_are_the_float_function_at_every_code_on_the_output_grid(head_model):
    _, model, _ = head_model
    node = next(n for n in model.nodes if n.op == "lookup")
    assert node.name == "hswish"
    xi, yi = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    lo, hi = xi.qrange()
    codes = np.arange(lo, hi + 1)
    real = torch.from_numpy((codes - xi.zero_point) * np.float64(np.float32(xi.scale)))
    expected = np.clip(np.rint(F.hardswish(real).numpy() / np.float64(np.float32(yi.scale))) + yi.zero_point,
                       *yi.qrange())
    np.testing.assert_array_equal(model.param(node, "table"), expected)
    assert node.attrs["input_min"] == lo == -128 and model.param(node, "table").size == 256


def test_smooth_activations_stay_close_to_fp32(head_model):
    net, model, x = head_model
    assert [n.op for n in model.nodes].count("lookup") == 11
    assert float_sqnr_db(net, x, model) > 25


def test_smooth_activations_are_bit_exact_in_host_c_and_on_cortex_m4(head_model, tmp_path):
    _, model, x = head_model
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:4], tmp_path)


def test_a_table_too_short_for_its_input_is_refused(head_model):
    model = copy.deepcopy(head_model[1])
    node = next(n for n in model.nodes if n.op == "lookup")
    model.constants[node.params["table"]] = model.param(node, "table")[:200]
    with pytest.raises(ModelFileError, match=r"x - input_min \(< table size\)"):
        model.validate()




@pytest.fixture(scope="module")
def wide_head_model():
    """The same activations on 16-bit activations: interpolated tables."""
    from intonly import QuantConfig

    torch.manual_seed(1)
    net = SmoothHead().eval()
    x = np.random.default_rng(1).normal(size=(32, 3, 5, 5)).astype(np.float32)
    return net, quantize(net, x, QuantConfig(act_bits=16)), x


def test_wide_inputs_read_a_small_interpolated_table_within_one_lsb_everywhere(wide_head_model):
    from intonly.quantize.ops.interp_lookup import interpolate

    net, model, x = wide_head_model
    nodes = [n for n in model.nodes if n.op == "interp_lookup"]
    assert len(nodes) == 11 and not any(n.op == "lookup" for n in model.nodes)
    assert max(model.param(n, "table").size for n in nodes) <= 513   # instead of 65,536 entries each
    node = next(n for n in nodes if n.name == "hswish")
    xi, yi = model.tensors[node.inputs[0]], model.tensors[node.outputs[0]]
    codes = np.arange(xi.qrange()[0], xi.qrange()[1] + 1)
    real = torch.from_numpy((codes - xi.zero_point) * np.float64(np.float32(xi.scale)))
    exact = np.clip(np.rint(F.hardswish(real).numpy() / np.float64(np.float32(yi.scale))) + yi.zero_point,
                    *yi.qrange())
    got = np.clip(interpolate(codes, model.param(node, "table"), node.attrs["input_min"],
                              node.attrs["segment_shift"]), *yi.qrange())
    assert np.abs(got - exact).max() <= 1   # on every one of the 65,536 input codes
    assert float_sqnr_db(net, x, model) > 40


def test_interpolated_tables_are_bit_exact_in_host_c_and_on_cortex_m4(wide_head_model, tmp_path):
    _, model, x = wide_head_model
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:4], tmp_path)


class FaceBlock(nn.Module):
    """MobileFaceNet-style conv + per-channel PReLU blocks, and a PReLU over a Linear's features."""

    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 6, 3, padding=1), nn.PReLU(6)
        self.dw, self.act2 = nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.PReLU(6)
        self.fc, self.act3, self.out = nn.Linear(6 * 5 * 5, 8), nn.PReLU(8), nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.act3(self.fc(self.act2(self.dw(self.act(self.conv(x)))).flatten(1))))


def test_per_channel_prelu_is_close_to_fp32_and_bit_exact_in_host_c_and_on_cortex_m4(tmp_path):
    torch.manual_seed(0)
    net = FaceBlock().eval()
    with torch.no_grad():
        for act in (net.act, net.act2, net.act3):
            act.weight.uniform_(-0.3, 0.6)   # negative slopes too
    x = np.random.default_rng(0).normal(size=(32, 3, 5, 5)).astype(np.float32)
    model = quantize(net, x)
    assert [n.op for n in model.nodes].count("mul") == 3
    assert float_sqnr_db(net, x, model) > 30
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:4], tmp_path)
