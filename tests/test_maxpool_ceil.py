"""``MaxPool2d(ceil_mode=True)`` (GoogLeNet/SqueezeNet-style pools) lowers to ``maxpool`` with the extra
bottom/right padding its last windows read (padding never wins a max): equal to PyTorch on the integer grid, and
hwsim == host C == Cortex-M4 under QEMU bit for bit."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4

from intonly import quantize, simulate


@pytest.mark.parametrize("size, pool", [(7, nn.MaxPool2d(2, ceil_mode=True)),
                                        (8, nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)),
                                        (9, nn.MaxPool2d(3, 2, ceil_mode=True))])
def test_ceil_mode_maxpool_equals_pytorch_on_the_codes(size, pool):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), pool).eval()
    x = np.random.default_rng(0).normal(size=(4, 3, size, size)).astype(np.float32)
    model = quantize(net, x)
    sim = simulate(model, x, keep_values=True)
    node = next(n for n in model.nodes if n.op == "maxpool")
    codes = torch.from_numpy(sim.values[node.inputs[0]].transpose(0, 3, 1, 2).astype(np.float32))
    with torch.no_grad():
        expected = pool(codes).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(sim.values[node.outputs[0]], expected)


def test_ceil_mode_maxpool_is_bit_exact_in_host_c_and_on_cortex_m4(tmp_path):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 3)).eval()
    x = np.random.default_rng(1).normal(size=(8, 3, 10, 10)).astype(np.float32)
    model = quantize(net, x)
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:4], tmp_path)
