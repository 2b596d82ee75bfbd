"""TFLite's 16x8 mode in intonly's own quantizer: with ``rounding="double"`` (TFLM's) and 16-bit activations, every
conv2d/dense layer with an int16 input and int8 weights gets an int64 bias, an int64 accumulator and TFLite's 16x8
requantization (the definition tests/test_tflite_ops.py checks against TFLM on imported 16x8 graphs). Checked here:
which layers take the form, the definition written out in numpy, and hwsim == host C == Cortex-M4 bit for bit."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import QuantConfig, quantize, simulate
from intonly.quantize.errors import ModelFileError


def requant_16x8(acc: np.ndarray, b: int, c: int) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier(int64_t x, ...), written out."""
    rm = (b + (1 << 15)) >> 16 if b < 0x7FFF0000 else 0x7FFF
    return (acc.astype(np.int64) * rm + (1 << (c - 17))) >> (c - 16)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.fc = nn.Linear(16 * 8 * 8, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.dw(torch.relu(self.conv(x)))).flatten(1))


@pytest.fixture(scope="module")
def net_and_data():
    torch.manual_seed(0)
    return Net().eval(), np.random.default_rng(0).standard_normal((24, 3, 8, 8)).astype(np.float32)


def test_16_bit_activations_with_double_rounding_take_the_16x8_form(net_and_data, tmp_path):
    net, x = net_and_data
    model = quantize(net, x[:16], QuantConfig(act_bits=16, rounding="double"))
    layers = [n for n in model.nodes if n.op in ("conv2d", "dense")]
    assert [str(model.param(n, "bias").dtype) for n in layers] == ["int64"] * 3
    assert float_sqnr_db(net, x, model) > 40
    # the dense layer by hand: int64 sums, then the 16x8 requant
    fc = layers[-1]
    sim = simulate(model, x[:4], keep_values=True)
    xin = sim.values[fc.inputs[0]].astype(np.int64) - fc.attrs["input_zp"]
    acc = xin @ model.param(fc, "weight").astype(np.int64).T + model.param(fc, "bias")
    b, c = model.param(fc, "multiplier"), model.param(fc, "shift")
    want = np.stack([requant_16x8(acc[:, j], int(b[j]), int(c[j])) for j in range(acc.shape[1])], axis=1)
    want = np.clip(want + fc.attrs["output_zp"], fc.attrs["act_min"], fc.attrs["act_max"])
    np.testing.assert_array_equal(sim.values[fc.outputs[0]], want)
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:3], tmp_path)


def test_other_roundings_and_widths_keep_int32_biases(net_and_data):
    net, x = net_and_data
    for cfg in (QuantConfig(act_bits=16), QuantConfig(rounding="double"),
                QuantConfig(act_bits=16, rounding="double", weight_bits=10)):
        model = quantize(net, x[:8], cfg)
        assert {str(model.param(n, "bias").dtype) for n in model.nodes if n.op in ("conv2d", "dense")} == {"int32"}


def test_an_int64_bias_is_refused_on_an_int8_layer(net_and_data):
    net, x = net_and_data
    model = quantize(net, x[:8], QuantConfig(rounding="double"))
    conv = next(n for n in model.nodes if n.op == "conv2d")
    model.constants[conv.params["bias"]] = model.param(conv, "bias").astype(np.int64)
    with pytest.raises(ModelFileError, match="an int64 bias on a layer other than int16 input x int8 weights"):
        model.validate()
