"""Bilinear upsampling (``nn.Upsample(mode="bilinear")``, ``F.interpolate(..., mode="bilinear", align_corners=...)``:
FPN/U-Net decoders, segmentation heads) lowers to ``resize_bilinear``, TFLite's integer RESIZE_BILINEAR. Checked
against an independent int64 transcription of TFLite's ``ResizeBilinearInteger`` on the codes, against PyTorch
(equal on the codes, up to the final rounding, where the scale is a power of two), close to FP32, and hwsim ==
host C == Cortex-M4 under QEMU bit for bit."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import quantize, simulate


def tflite_resize_bilinear(x: np.ndarray, oh: int, ow: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """TFLite's reference_ops::ResizeBilinearInteger transcribed with Python ints (N, H, W, C codes)."""
    def c_div(a, b):
        return abs(a) // b * (1 if a >= 0 else -1)

    def axis(size_in, size_out):
        step = ((1 << 10) * size_in + size_out // 2) // size_out
        if align_corners and size_out > 1:
            step = ((1 << 10) * (size_in - 1) + (size_out - 1) // 2) // (size_out - 1)
        rows = []
        for o in range(size_out):
            s = o * step + (step // 2 - (1 << 9) if half_pixel else 0)
            lo, hi = max(c_div(s, 1 << 10), 0), min(c_div(s + (1 << 10) - 1, 1 << 10), size_in - 1)
            rows.append((lo, hi, s - (1 << 10) * lo))
        return rows

    n, h, w, c = x.shape
    out = np.empty((n, oh, ow, c), dtype=np.int64)
    for oy, (y0, y1, dy) in enumerate(axis(h, oh)):
        for ox, (x0, x1, dx) in enumerate(axis(w, ow)):
            v = x.astype(np.int64)
            total = (v[:, y0, x0] * (1024 - dy) * (1024 - dx) + v[:, y1, x0] * dy * (1024 - dx) +
                     v[:, y0, x1] * (1024 - dy) * dx + v[:, y1, x1] * dy * dx)
            out[:, oy, ox] = np.where(total > 0, (total + (1 << 19)) // (1 << 20),
                                      -((-total + (1 << 19)) // (1 << 20)))
    return out


@pytest.mark.parametrize("size, target, align_corners", [((5, 6), (10, 12), False), ((4, 4), (7, 9), False),
                                                          ((5, 5), (9, 13), True), ((8, 6), (3, 4), False)])
def test_resize_bilinear_is_tflites_integer_definition(size, target, align_corners):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Upsample(size=target, mode="bilinear",
                                                        align_corners=align_corners)).eval()
    x = np.random.default_rng(0).normal(size=(4, 3, *size)).astype(np.float32)
    model = quantize(net, x)
    sim = simulate(model, x, keep_values=True)
    node = next(n for n in model.nodes if n.op == "resize_bilinear")
    codes = sim.values[node.inputs[0]]
    np.testing.assert_array_equal(sim.values[node.outputs[0]],
                                  tflite_resize_bilinear(codes, *target, align_corners, not align_corners))
    if size == (5, 6):   # a factor of 2: PyTorch's coordinates are TFLite's, only the rounding of the result differs
        with torch.no_grad():
            ref = F.interpolate(torch.from_numpy(codes.transpose(0, 3, 1, 2)).double(), size=target,
                                mode="bilinear", align_corners=False).numpy().transpose(0, 2, 3, 1)
        assert np.max(np.abs(sim.values[node.outputs[0]] - ref)) <= 0.5


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.down, self.lateral, self.head = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(3, 8, 1), \
            nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x):
        up = F.interpolate(torch.relu(self.down(x)), scale_factor=2, mode="bilinear", align_corners=False)
        return self.head(torch.relu(up + self.lateral(x)))


def test_bilinear_decoder_is_close_to_fp32_and_bit_exact_in_host_c_and_on_cortex_m4(tmp_path):
    torch.manual_seed(0)
    net = Decoder().eval()
    x = np.random.default_rng(0).normal(size=(16, 3, 8, 8)).astype(np.float32)
    model = quantize(net, x)
    assert float_sqnr_db(net, x, model) > 30
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:3], tmp_path)
