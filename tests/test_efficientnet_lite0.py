"""EfficientNet-Lite0 with its ImageNet weights, as the packages ship it (intonly/models/efficientnet.py): captured
with nothing unsupported and the same function, quantized, and its generated C equal to hwsim on every element."""

import numpy as np
import pytest
import torch

from intonly import build_and_run, quantize, simulate
from intonly.models.efficientnet import INPUT_SIZE, load_efficientnet_lite0
from intonly.quantize.capture import capture, check_supported


@pytest.fixture(scope="module")
def net():
    return load_efficientnet_lite0()


def test_as_shipped_it_captures_whole_with_the_same_function(net):
    gm = capture(net)
    check_supported(gm)
    kinds = [type(m).__name__ for m in gm.modules()]
    assert kinds.count("BatchNorm2d") == 0 and kinds.count("ZeroPad2d") == 0
    assert kinds.count("PaddedConv2d") == 5   # the stem and 4 stride-2 depthwise convs: TF "SAME" pads after only
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32))
    with torch.no_grad():
        torch.testing.assert_close(gm(x), net(x), rtol=1e-4, atol=1e-4)


def test_as_shipped_it_quantizes_and_the_c_is_bit_exact(net, gcc, tmp_path):
    x = np.random.default_rng(1).normal(size=(8, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    model = quantize(net, x)
    assert [n.op for n in model.nodes].count("conv2d") == 49
    sim = simulate(model, x[:2])
    _, (c_out,) = build_and_run(model, tmp_path / "c", sim.int_inputs)
    np.testing.assert_array_equal(c_out, sim.int_outputs[0])


def test_photo_crops_are_deterministic_rgb_and_disjoint_between_seeds():
    from intonly.demos import photos
    a, b = photos.crops(6, photos.CALIBRATION_SEED, 32), photos.crops(6, photos.CALIBRATION_SEED, 32)
    c = photos.crops(6, photos.EVALUATION_SEED, 32)
    assert a.shape == (6, 3, 32, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert 0 <= a.min() and a.max() <= 255 and a.std() > 10
    assert not any(np.array_equal(p, q) for p in a for q in c)
    assert len(photos.photos()) == len(photos.COLOR_PHOTOS) + 2 + len(photos.GRAY_PHOTOS)


def test_logit_fidelity_metrics():
    from intonly.workloads import logit_fidelity
    fp = np.array([[5.0, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5]])
    q = np.array([[5.0, 4, 3, 2, 0, 1], [0, 1, 2, 3, 4, 5]])   # sample 0: one of the top 5 swapped out
    m = logit_fidelity(fp, q)
    assert m["top5_overlap"] == pytest.approx((4 / 5 + 1) / 2)
    assert m["logit_sqnr_db"] == pytest.approx(10 * np.log10(110 / 2))
    assert logit_fidelity(fp, fp)["logit_sqnr_db"] == float("inf")
