"""Whole models: PyTorch -> IntModel -> hwsim -> generated C on the host, accuracy and bit-exactness."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from intonly import QuantConfig, build_and_run, compare, quantize, simulate
from intonly.demos import digits
from intonly.quantize.observers import Observer, fake_quant_error

MODES = ["half_up", "double", "half_even"]


@pytest.fixture(scope="module")
def digits_data():
    x_tr, y_tr, x_te, y_te = digits.load_split()
    model = digits.load_model()
    with torch.no_grad():
        fp_acc = float((model(torch.from_numpy(x_te)).argmax(1).numpy() == y_te).mean())
    return model, x_tr, x_te, y_te, fp_acc


@pytest.mark.parametrize("mode", MODES)
def test_digits_int_accuracy_and_host_c_bit_exact(digits_data, mode, tmp_path, gcc):
    model, x_tr, x_te, y_te, fp_acc = digits_data
    int_model = quantize(model, x_tr, QuantConfig(rounding=mode))
    sim = simulate(int_model, x_te)
    int_acc = float((sim.outputs[0].argmax(1) == y_te).mean())
    assert fp_acc > 0.97
    assert abs(fp_acc - int_acc) <= 0.010, (fp_acc, int_acc)
    _, (c_out,) = build_and_run(int_model, tmp_path, sim.int_inputs)
    assert c_out.shape == sim.int_outputs[0].shape == (len(x_te), 10)
    np.testing.assert_array_equal(c_out, sim.int_outputs[0])


def test_running_under_another_rounding_mode_changes_bits(digits_data):
    """The same IntModel run as a double-rounding target gives different bits (half_even differs from half_up only
    on exact ties, which this model's non-power-of-two multipliers never produce; the property tests cover ties)."""
    model, x_tr, x_te, _, _ = digits_data
    int_model = quantize(model, x_tr, QuantConfig(rounding="half_up"))
    outs = {m: simulate(int_model, x_te, rounding=m).int_outputs[0] for m in ("half_up", "double")}
    diff = outs["half_up"].astype(int) - outs["double"].astype(int)
    assert np.count_nonzero(diff) > 0
    assert np.abs(diff).max() <= 3  # one-LSB rounding differences, compounded over a few layers


def test_cli_run_writes_summary(tmp_path, gcc):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "intonly.cli", "run", "--out", str(out), "--rounding", "double"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "digits_cnn"
    assert summary["bit_exact"] == {"c_host": True}
    assert summary["samples"] == 540
    assert abs(summary["fp_accuracy"] - summary["int_accuracy"]) <= 0.01
    assert {"model.intonly", "compare.json", "trace.json", "c", "summary.json"} <= {p.name for p in out.iterdir()}
    assert (out / "c" / "model.c").is_file() and (out / "c" / "model").is_file()
    assert not (tmp_path / "run.partial").exists()


class AllOps(nn.Module):
    """Every supported construct, in module and functional forms."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding="same", bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4)
        self.dw = nn.Conv2d(8, 8, 5, padding=4, dilation=2, groups=8)
        self.mp = nn.MaxPool2d(3, stride=1, padding=1, dilation=1)
        self.ht = nn.Hardtanh(-1.5, 1.5)
        self.ap = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.r6 = nn.ReLU6()
        self.gap = nn.AdaptiveAvgPool2d((1, 1))
        self.fc1 = nn.Linear(24 + 16 * 2 * 2, 32)
        self.bnf = nn.BatchNorm1d(32)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(32, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.c1(x)))
        y = self.c2(x)
        y = torch.add(y, self.dw(y))
        z = self.ht(self.mp(y))
        w = self.r6(torch.cat([y, z, y.relu()], dim=1))
        g = self.gap(w).view(w.size(0), -1)
        p = torch.flatten(self.ap(torch.cat((z, y), 1)), 1)
        h = self.drop(self.bnf(self.fc1(torch.cat([g, p], dim=1))))
        return self.fc2(F.relu(h))


@pytest.fixture(scope="module")
def all_ops():
    torch.manual_seed(3)
    model = AllOps()
    with torch.no_grad():
        for bn in (model.bn1, model.bnf):
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    rng = np.random.default_rng(0)
    calib = rng.normal(size=(64, 3, 8, 8)).astype(np.float32)
    test = rng.normal(size=(32, 3, 8, 8)).astype(np.float32)
    return model.eval(), calib, test


def sqnr(ref, approx):
    return 10 * np.log10(np.sum(ref**2) / np.sum((ref - approx) ** 2))


@pytest.mark.parametrize("cfg", [
    QuantConfig(rounding="half_up"),
    QuantConfig(rounding="double", act_symmetric=True),
    QuantConfig(rounding="half_even", observer="percentile", percentile=99.9),
    QuantConfig(rounding="half_up", observer="mse", weight_bits=6, act_bits=7),
    QuantConfig(rounding="double", weight_bits=8, act_bits=16),
    QuantConfig(rounding="half_up", weight_bits=12, act_bits=12, act_symmetric=True),
], ids=lambda c: f"{c.rounding}-w{c.weight_bits}a{c.act_bits}-{c.observer}{'-sym' if c.act_symmetric else ''}")
def test_all_ops_model_is_accurate_and_bit_exact_in_c(all_ops, cfg, tmp_path, gcc):
    model, calib, test = all_ops
    int_model = quantize(model, calib, cfg)
    ops = {n.op for n in int_model.nodes}
    assert ops == {"quantize", "conv2d", "add", "maxpool", "clamp", "concat", "requantize", "avgpool", "reshape",
                   "transpose", "dense", "dequantize"}
    sim = simulate(int_model, test)
    with torch.no_grad():
        ref = model(torch.from_numpy(test)).numpy()
    min_db = {7: 15, 8: 20, 12: 40, 16: 30}[cfg.act_bits]
    assert sqnr(ref, sim.outputs[0]) > min_db
    _, (c_out,) = build_and_run(int_model, tmp_path, sim.int_inputs)
    np.testing.assert_array_equal(c_out, sim.int_outputs[0])


def test_compare_reports_every_layer(all_ops):
    model, calib, test = all_ops
    int_model = quantize(model, calib)
    rows = compare(model, int_model, test)
    assert [r.node for r in rows][:3] == ["c1", "c2", "dw"]
    assert all(r.sqnr_db > 15 for r in rows), [(r.node, r.sqnr_db) for r in rows]
    assert all(r.max_abs_lsb < 40 for r in rows)
    first = rows[0]
    assert first.op == "conv2d" and first.source == "relu"  # c1 + bn1 + relu fused into one node


def test_observers_clip_outliers_and_keep_zero():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(size=100_000), [60.0, -45.0]]).astype(np.float32)
    ranges = {}
    for method in ("minmax", "percentile", "mse"):
        obs = Observer(method, 99.99)
        obs.update(values)
        ranges[method] = obs.range(8, symmetric=False)
    assert ranges["minmax"] == (-45.0, 60.0)
    assert -6 < ranges["percentile"][0] < -3 and 3 < ranges["percentile"][1] < 6
    errors = {m: fake_quant_error(values, *r, bits=8, symmetric=False) for m, r in ranges.items()}
    assert errors["mse"] <= min(errors.values())
    assert -45.0 <= ranges["mse"][0] and ranges["mse"][1] <= 60.0
    positive = Observer("minmax", 99.99)
    positive.update(np.array([0.5, 2.0], np.float32))
    assert positive.range(8, symmetric=False) == (0.0, 2.0)
