"""The cost model (the work rows of hwsim/ops/, hwsim/cost.py), target pipelines in hwsim, and the estimate / compare CLIs."""

import dataclasses
import json
import math

import numpy as np
import pytest

from conftest import single_op_model
from intonly.hwsim.cost import estimate, layer_cost
from intonly.hwsim.work import REQUANT_OPS, op_work
from intonly import QuantConfig, build_and_run, compare_targets, quantize, simulate
from intonly.cli import main
from intonly.demos import digits
from intonly.quantize.errors import ConfigError
from intonly.quantize.ir import TensorInfo
from intonly.quantize.memory import plan_model_arena
from intonly.targets import list_targets, load_target
from intonly.quantize.names import OP_CLASSES
from intonly.targets.spec import MemoryLevel, Numerics, Sourced, Target, Toolchain


def S(v):
    return Sourced(float(v), "test value")


def toy_target(**changes) -> Target:
    """A target with round numbers, so expected cycles can be computed by hand."""
    t = Target("toy", "hand-made", "mcu", S(100), Numerics("double", 32, "clamp", "test"),
               {c: S(2.0) for c in OP_CLASSES}, S(50),
               (MemoryLevel("sram", S(4096), S(4), S(1), S(1.0), ("activations",)),
                MemoryLevel("flash", S(1 << 20), S(8), S(10), S(10.0), ("weights",), S(3))),
               {c: S(0.5) for c in OP_CLASSES}, S(10), Toolchain("generic", "", "", ""))
    return dataclasses.replace(t, **changes)


def conv_model(groups=1, channels=4):
    """quantize -> 3x3 conv (8x8xC -> 8x8xC, padding 1) -> dequantize."""
    x = TensorInfo("x", "int8", (8, 8, channels), 0.1, 0, 8)
    y = TensorInfo("y", "int8", (8, 8, channels), 0.1, 0, 8)
    icg = channels // groups
    consts = {"weight": np.ones((channels, 3, 3, icg), np.int8), "bias": np.zeros(channels, np.int32),
              "multiplier": np.full(channels, 1 << 30, np.int32), "shift": np.full(channels, 35, np.int32)}
    attrs = {"stride": [1, 1], "padding": [1, 1, 1, 1], "dilation": [1, 1], "groups": groups, "input_zp": 0,
             "output_zp": 0, "act_min": -128, "act_max": 127}
    return single_op_model("conv2d", [x], y, attrs, consts)


def test_conv_layer_cost_by_hand():
    model = conv_model()
    node = next(n for n in model.nodes if n.op == "conv2d")
    taps = (8 * 3 - 2) ** 2 * 4          # (output, tap) pairs inside the 8x8 input: 2 taps per axis fall in padding
    macs = taps * 4                        # 4 input channels per tap: 7,744 executed of 9,216 nominal MACs
    assert model.node_macs(node) == 9216
    elementwise = (REQUANT_OPS + 1) * 256 + taps
    assert op_work(model, node) == {"int8_conv": macs, "int32_elementwise": elementwise}
    cost = layer_cost(model, node, toy_target(), batch=2)
    compute = 2 * (macs + elementwise) / 2.0
    act, weights = 2 * (256 + 256), 144 + 3 * 16     # int8 in + out per sample; weight + bias/mult/shift
    memory = act / 4 + 1 + weights / (8 / (1 + 3)) + 10
    assert cost.bytes == {"sram": act, "flash": weights}
    assert cost.compute_cycles == compute and cost.memory_cycles == memory
    assert cost.cycles == max(compute, memory) + 50
    assert cost.bound == "compute"
    assert cost.latency_ms == pytest.approx(cost.cycles / 100e3)
    energy_pj = 0.5 * 2 * (macs + elementwise) + 1.0 * act + 10.0 * weights + 10 * cost.latency_ms * 1e6
    assert cost.energy_uj == pytest.approx(energy_pj * 1e-6)


def test_depthwise_is_its_own_class_and_memory_bound_layers_say_so():
    model = conv_model(groups=4)
    node = next(n for n in model.nodes if n.op == "conv2d")
    assert set(op_work(model, node)) == {"int8_depthwise", "int32_elementwise"}
    slow_memory = toy_target(memory=(MemoryLevel("sram", S(4096), S(0.01), S(1), S(1.0), ("activations", "weights")),))
    assert layer_cost(model, node, slow_memory).bound == "memory"


def test_totals_memory_and_fit():
    model = conv_model()
    e = estimate(model, toy_target())
    assert e.latency_ms == pytest.approx(sum(layer.latency_ms for layer in e.layers))
    assert e.energy_uj == pytest.approx(sum(e.energy_split_uj.values()))
    assert e.flash_bytes == 144 + 48
    assert e.arena_bytes == plan_model_arena(model).arena_bytes == 256  # the conv output; the input is the caller's
    assert e.peak_ram_bytes == 256 + 256 + 256 and e.fits
    tiny = toy_target(memory=(MemoryLevel("sram", S(512), S(4), S(1), S(1.0), ("activations",)),
                              MemoryLevel("flash", S(100), S(8), S(10), S(10.0), ("weights",))))
    e = estimate(model, tiny)
    assert not e.fits
    assert e.notes == ["activations need 768 bytes; the largest level for activations, 'sram', holds 512",
                       "weights need 192 bytes; the largest level for weights, 'flash', holds 100"]
    with pytest.raises(ConfigError, match="batch must be >= 1, got 0"):
        estimate(model, toy_target(), batch=0)


def test_peak_ram_is_the_generated_programs_arena(tmp_path, gcc):
    model = quantize(digits.load_model(), digits.load_split()[0][:64], QuantConfig())
    project, _ = build_and_run(model, tmp_path, [np.zeros((1, 8, 8, 1), np.int8)])
    assert estimate(model, load_target("cortex-m7")).arena_bytes == project.plan.arena_bytes > 0


@pytest.fixture(scope="module")
def digits_int():
    x_tr, _, x_te, _ = digits.load_split()
    return quantize(digits.load_model(), x_tr, QuantConfig(rounding="half_up")), x_te


def test_targets_with_different_rounding_give_the_documented_different_bits(digits_int, tmp_path, gcc):
    model, x = digits_int
    m7, vnni = load_target("cortex-m7"), load_target("x86-64-vnni")
    assert (m7.numerics.rounding, vnni.numerics.rounding) == ("double", "half_up")
    diffs = compare_targets(model, x, [vnni, m7])["cortex-m7"]
    assert [d.node for d in diffs] == [n.name for n in model.integer_nodes()]
    first = next(d for d in diffs if d.differing)
    assert first.max_abs_lsb == 1  # one requant apart: double and single rounding differ by one LSB at most
    assert diffs[-1].differing > 0  # and it reaches the logits
    for target in (m7, vnni):   # each executor agrees with hwsim under its own target's numerics
        sim = simulate(model, x, target=target)
        _, (c_out,) = build_and_run(model, tmp_path / target.name, sim.int_inputs, rounding=target.numerics.rounding)
        np.testing.assert_array_equal(c_out, sim.int_outputs[0])
    with pytest.raises(ConfigError, match="give either rounding or target, not both"):
        simulate(model, x, rounding="double", target=m7)


def test_a_narrow_accumulator_is_refused_naming_the_node(digits_int):
    model, x = digits_int
    narrow = dataclasses.replace(load_target("cortex-m7"),
                                 numerics=Numerics("double", 16, "clamp", "a 16-bit accumulator"))
    with pytest.raises(ConfigError, match=r"target 'cortex-m7' accumulates in 16 bits, but node '.+' \(conv2d\) "
                                          r"needs \|.+\| up to [0-9,]+ > 32,767"):
        simulate(model, x, target=narrow)


def test_cli_estimate_writes_table_json_and_plot(digits_int, tmp_path, capsys):
    model, _ = digits_int
    path = model.save(tmp_path / "digits.intonly")
    out = tmp_path / "est"
    assert main(["estimate", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    names = [t.name for t in list_targets()]
    assert all(name in printed for name in names)
    doc = json.loads((out / "estimate.json").read_text())
    assert [e["target"] for e in doc["estimates"]] == names
    for e in doc["estimates"]:
        assert set(e["total"]) >= {"latency_ms", "energy_uj", "peak_ram_bytes", "flash_bytes"}
        assert len(e["layers"]) == len(model.nodes) and e["total"]["latency_ms"] > 0
        assert math.isclose(e["total"]["latency_ms"], sum(layer["latency_ms"] for layer in e["layers"]))
    assert (out / "estimate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "cortex-m7" in (out / "estimate.html").read_text()


def test_cli_estimate_clock_override_scales_latency(digits_int, tmp_path):
    model, _ = digits_int
    path = model.save(tmp_path / "digits.intonly")
    latency = {}
    for mhz in (240, 480):
        assert main(["estimate", str(path), "--target", f"cortex-m7@{mhz}MHz", "--out", str(tmp_path / str(mhz))]) == 0
        doc = json.loads((tmp_path / str(mhz) / "estimate.json").read_text())
        assert doc["estimates"][0]["target"] == f"cortex-m7@{mhz}MHz"
        latency[mhz] = doc["estimates"][0]["total"]["latency_ms"]
    assert latency[240] == pytest.approx(2 * latency[480])


def test_cli_compare_targets_prints_where_bits_differ(tmp_path, capsys):
    code = main(["compare", "--targets", "x86-64-vnni,cortex-m7", "--json", str(tmp_path / "d.json")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "cortex-m7 (double) vs x86-64-vnni (half_up)" in printed and "first difference at" in printed
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["reference"] == "x86-64-vnni" and sum(r["differing"] for r in doc["diffs"]["cortex-m7"]) > 0


def test_cli_estimate_unknown_target_is_one_clear_error(digits_int, tmp_path, capsys):
    model, _ = digits_int
    path = model.save(tmp_path / "digits.intonly")
    assert main(["estimate", str(path), "--target", "cortex-m99", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: TargetError: unknown target 'cortex-m99'")
    assert not (tmp_path / "e").exists()
