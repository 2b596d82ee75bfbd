"""``x - y`` (an exact ``negate`` then the integer ``add``; ``alpha`` in its multiplier) and ``x * c`` for a nonzero
number (``requantize``, after ``negate`` when c < 0), written as model code writes them: close to FP32, and hwsim ==
host C == Cortex-M4 under QEMU bit for bit. Multiplication by zero and division with a rounding mode are refused."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import quantize
from intonly.quantize.errors import UnsupportedOpError


class Arithmetic(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 1)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        d = torch.relu(self.a(x) - self.b(x))          # operator.sub, fused ReLU
        e = torch.sub(d * 0.5, 1.5 * self.b(x), alpha=2)   # scalar products both ways, torch.sub with alpha
        f = torch.add(e, d, alpha=-0.5)                # a negative alpha
        return self.fc((f * -0.25).flatten(1))         # negative factor


@pytest.fixture(scope="module")
def arithmetic_model():
    torch.manual_seed(0)
    net = Arithmetic().eval()
    x = np.random.default_rng(0).normal(size=(32, 3, 6, 6)).astype(np.float32)
    return net, quantize(net, x), x


def test_sub_and_scalar_mul_lower_to_negate_add_requantize_close_to_fp32(arithmetic_model):
    net, model, x = arithmetic_model
    ops = [n.op for n in model.nodes]
    assert ops.count("negate") == 4 and ops.count("add") == 3 and ops.count("requantize") == 3
    convs = [n.name for n in model.nodes if n.op == "conv2d"]
    assert convs == ["a", "b", "b@b_1"]     # module b is called twice: the second call is named by its fx node
    assert float_sqnr_db(net, x, model) > 25


def test_sub_and_scalar_mul_are_bit_exact_in_host_c_and_on_cortex_m4(arithmetic_model, tmp_path):
    _, model, x = arithmetic_model
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:4], tmp_path)


@pytest.mark.parametrize("forward, message", [
    (lambda x: x * 0, "mul: multiplication or division by zero or by something other than a tensor or a number "
                      "(no keyword arguments)"),
    (lambda x: torch.div(x, 2, rounding_mode="floor"), "div: multiplication or division by zero or by something "
                                                       "other than a tensor or a number (no keyword arguments)"),
    (lambda x: x * x.mean(1, keepdim=True), "mean: mean over dim=1 of a tensor of per-sample shape (3, 4, 4) (only "
                                             "the spatial dims (2, 3) of an image)"),
    (lambda x: torch.sub(x, x, alpha=0), "sub: subtraction needs two tensor operands or a tensor and a finite number, "
                                         "and a nonzero finite alpha"),
])
def test_unsupported_forms_are_refused_by_name(forward, message):
    class Model(nn.Module):
        def forward(self, x):
            return forward(x)

    with pytest.raises(UnsupportedOpError) as info:
        quantize(Model(), np.ones((2, 3, 4, 4), np.float32))
    assert info.value.ops[0][0] + ": " + info.value.ops[0][1].rpartition(" at ")[0] == message


class NumberArithmetic(nn.Module):
    """Hard-swish as MobileNetV3 code writes it by hand, and other tensor-number sums and differences."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        y = self.conv(x)
        y = y * F.relu6(y + 3) / 6                 # x + c fused with ReLU6, product, division by a number
        y = (1 - torch.sigmoid(y)) + (y - 0.25) + (0.5 + y)
        return self.fc(y.flatten(1))


def test_tensor_and_number_sums_are_one_requantize_each_and_exact_in_c(tmp_path):
    torch.manual_seed(5)
    net = NumberArithmetic().eval()
    x = np.random.default_rng(5).normal(size=(32, 3, 6, 6)).astype(np.float32)
    model = quantize(net, x)
    shifted = [n for n in model.nodes if n.op == "requantize" and n.attrs["output_zp"] !=
               model.tensors[n.outputs[0]].zero_point]
    assert len(shifted) == 4      # y + 3, 1 - s, y - 0.25, 0.5 + y: the number is a zero-point shift
    relu6 = next(n for n in shifted if n.name == "add")
    assert relu6.attrs["act_min"] == model.tensors[relu6.outputs[0]].zero_point   # ReLU6 fused into y + 3
    assert float_sqnr_db(net, x, model) > 25
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:4], tmp_path)
