"""Independent oracle: random single-op int8 graphs run by TFLM (the ``tflite-micro`` wheel) must match
hwsim (fast and reference kernels) and the generated C bit for bit.

Each graph is built twice from the same numpy weights and quantization parameters: once as a TFLite
flatbuffer (:mod:`tflm_builders`), once by hand as an IntModel (quantize -> op -> dequantize). The
TFLM-side derivations the IR needs (SAME padding, fused-activation clamp, requant multipliers) are
written out here from TFLM's own definitions, so the IR is not produced by intonly's lowering.

Graphs are drawn from ``np.random.default_rng([op_id, seed])``; a test item covers one op and one
block of seeds, and a failure names the seed and every parameter of the graph that disagreed.
"""

from __future__ import annotations

import copy
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pytest

if os.environ.get("CI", "").lower() != "true":  # in CI a missing wheel is an import error, not a skip
    pytest.importorskip("tflite_micro", reason="the tflite-micro wheel is not installed: pip install -e '.[test]'")

import tflm_builders as tflm  # noqa: E402
from intonly.codegen import emit_c  # noqa: E402
from intonly.codegen.c.toolchain import build_host, run_host  # noqa: E402
from intonly.hwsim import simulate  # noqa: E402
from intonly.quantize.dyadic import add_multipliers, f64, quantize_multipliers  # noqa: E402
from intonly.quantize.ir import IntModel, Node, TensorInfo  # noqa: E402

GRAPHS_PER_OP = 50
BLOCK = 10
SAMPLES = 4  # random int8 inputs per graph, plus one of only -128/127 values
CFLAGS = "-std=c99 -O0 -Wall -Wextra -Werror"
OPS = ["conv2d", "depthwise_conv2d", "fully_connected", "add", "average_pool2d"]


@dataclass
class Case:
    """One random graph: its parameters (for failure messages), the TFLite model, our IR and the inputs."""

    params: dict
    tflite: bytes
    model: IntModel
    inputs: list[np.ndarray]  # one batch (samples first, no TFLite batch dim) per graph input
    results: dict = field(default_factory=dict)


# ---- TFLM's definitions, written out ------------------------------------------------------------

def round_away(v: float) -> int:
    """std::round: to nearest, ties away from zero."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def activation_range(activation: str, scale: float, zp: int) -> tuple[int, int]:
    """TFLM CalculateActivationRangeQuantized for int8: ``zp + round(float32(f) / float32(scale))``."""
    def q(f):
        return zp + round_away(float(np.float32(f) / np.float32(scale)))
    if activation == "NONE":
        return -128, 127
    if activation == "RELU":
        return max(-128, q(0.0)), 127
    assert activation == "RELU6"
    return max(-128, q(0.0)), min(127, q(6.0))


def out_size(size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    eff = (k - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "SAME" else (size - eff) // stride + 1


def pads(size: int, k: int, stride: int, dilation: int, out: int) -> tuple[int, int]:
    """TFLM ComputePaddingWithOffset: (before, after) with before = total // 2."""
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv_multipliers(s_in: float, w_scales, s_out: float):
    """Per-channel ``f64(s_in) * f64(s_w[c]) / f64(s_out)`` as TFLM's PopulateConvolutionQuantizationParams."""
    return quantize_multipliers([f64(s_in) * f64(s) / f64(s_out) for s in w_scales])


# ---- IR construction ------------------------------------------------------------------------------

def boundary_model(name: str, inputs: list[TensorInfo], op_node: Node, out: TensorInfo,
                   constants: dict) -> IntModel:
    """float input(s) -> quantize -> ``op_node`` -> dequantize -> float output."""
    tensors, nodes, graph_inputs = {}, [], []
    for t in inputs:
        f = TensorInfo(t.name + "_f", "float32", t.shape, layout=t.layout)
        tensors[f.name], tensors[t.name] = f, t
        graph_inputs.append(f.name)
        nodes.append(Node("quant_" + t.name, "quantize", [f.name], [t.name], {"perm": [], "form": 0}))
    y_f = TensorInfo(out.name + "_f", "float32", out.shape, layout=out.layout)
    tensors[out.name], tensors[y_f.name] = out, y_f
    nodes += [op_node, Node("dequant", "dequantize", [out.name], [y_f.name], {"perm": []})]
    model = IntModel(name, "double", graph_inputs, [y_f.name], tensors, nodes, constants)
    model.validate()
    return model


def weighted_node(op: str, attrs: dict, weight, bias, mult, shift) -> tuple[Node, dict]:
    consts = {"w": np.ascontiguousarray(weight, np.int8), "b": np.asarray(bias, np.int32),
              "m": np.asarray(mult, np.int32), "s": np.asarray(shift, np.int32)}
    node = Node("op", op, ["x"], ["y"], attrs, {"weight": "w", "bias": "b", "multiplier": "m", "shift": "s"})
    return node, consts


# ---- random parameters ----------------------------------------------------------------------------

def loguniform(rng, lo: float, hi: float) -> float:
    return float(np.float32(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def random_qparams(rng, lo=0.005, hi=0.1) -> tuple[float, int]:
    return loguniform(rng, lo, hi), int(rng.integers(-128, 128))


def random_weighted(rng, n_out: int, fan_in: int, s_in: float, per_channel: bool):
    """Weights, weight scales, an output quantization, a bias and an activation for one weighted op.

    Usually weights span [-127, 127] and the output scale maps the typical |acc| (about
    ``73 * 74 * sqrt(fan_in)``) to roughly ``+-40 * [1/4, 2]``, so outputs use the int8 range and
    sometimes saturate. One graph in six has weights in [-1, 1], a small bias and requant multipliers
    of about 1/2 to 8 (TFLM's left-shift path; ``|acc| * 2**shift`` stays far below 2**31, where
    TFLM's ``x * (1 << left_shift)`` would overflow).
    """
    small = rng.random() < 1 / 6
    s_ref = loguniform(rng, 0.001, 0.02)
    w_scales = [loguniform(rng, s_ref / 2, s_ref * 2) for _ in range(n_out)] if per_channel else [s_ref] * n_out
    if small:
        w_max, bias_max, multiplier = 1, 64, math.exp(rng.uniform(0, math.log(4)))
    else:
        w_max, bias_max = 127, int(73 * 74 * math.sqrt(fan_in))
        multiplier = 40.0 / bias_max * math.exp(rng.uniform(math.log(0.25), math.log(2)))
    s_out = float(np.float32(s_in * s_ref / multiplier))
    zp_out = int(rng.integers(-64, 65))
    bias = rng.integers(-bias_max, bias_max + 1, n_out).astype(np.int32)
    activation = str(rng.choice(["NONE", "NONE", "RELU", "RELU6"]))
    return w_max, w_scales, (s_out, zp_out), bias, activation


def random_inputs(rng, shape) -> np.ndarray:
    xs = rng.integers(-128, 128, (SAMPLES, *shape))
    extremes = rng.choice(np.array([-128, 127]), (1, *shape))
    return np.concatenate([xs, extremes]).astype(np.int8)


def window_geometry(rng, max_hw: int, with_dilation: bool, padding: str):
    """(h, w, kh, kw, stride, dilation) for which ``padding`` gives a non-empty output."""
    while True:
        h, w = (int(v) for v in rng.integers(1, max_hw + 1, 2))
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        stride = [int(v) for v in rng.integers(1, 3, 2)]
        dilation = [int(v) for v in rng.integers(1, 3, 2)] if with_dilation and rng.random() < 0.4 else [1, 1]
        if padding == "SAME" or ((kh - 1) * dilation[0] + 1 <= h and (kw - 1) * dilation[1] + 1 <= w):
            return h, w, kh, kw, stride, dilation


# ---- one random graph per op ----------------------------------------------------------------------

def make_conv2d(rng, seed: int) -> Case:
    padding = str(rng.choice(["SAME", "VALID"]))
    h, w, kh, kw, stride, dilation = window_geometry(rng, 12, True, padding)
    ic = int(rng.integers(1, 9))
    groups = 1
    if ic > 1 and rng.random() < 0.25:
        groups = int(rng.choice([g for g in range(2, ic + 1) if ic % g == 0]))
    oc = groups * int(rng.integers(1, 9 // groups + 2))
    icg = ic // groups
    s_in, zp_in = random_qparams(rng)
    w_max, w_scales, (s_out, zp_out), bias, activation = random_weighted(rng, oc, kh * kw * icg, s_in, True)
    weight = rng.integers(-w_max, w_max + 1, (oc, kh, kw, icg)).astype(np.int8)
    oh, ow = out_size(h, kh, stride[0], dilation[0], padding), out_size(w, kw, stride[1], dilation[1], padding)
    (pt, pb), (pl, pr) = pads(h, kh, stride[0], dilation[0], oh), pads(w, kw, stride[1], dilation[1], ow)
    act_min, act_max = activation_range(activation, s_out, zp_out)
    params = dict(seed=seed, input=(h, w, ic), kernel=(kh, kw), oc=oc, groups=groups, stride=stride,
                  dilation=dilation, padding=padding, activation=activation, in_q=(s_in, zp_in),
                  out_q=(s_out, zp_out), w_scales=w_scales)
    model_bytes = tflm.conv2d((h, w, ic), (s_in, zp_in), (oh, ow, oc), (s_out, zp_out), weight, w_scales, bias,
                              stride, dilation, padding, activation)
    mult, shift = conv_multipliers(s_in, w_scales, s_out)
    node, consts = weighted_node("conv2d", {
        "stride": stride, "padding": [pt, pl, pb, pr], "dilation": dilation, "groups": groups, "input_zp": zp_in,
        "output_zp": zp_out, "act_min": act_min, "act_max": act_max}, weight, bias, mult, shift)
    model = boundary_model(f"conv{seed}", [TensorInfo("x", "int8", (h, w, ic), s_in, zp_in, layout="HWC")], node,
                           TensorInfo("y", "int8", (oh, ow, oc), s_out, zp_out, layout="HWC"), consts)
    return Case(params, model_bytes, model, [random_inputs(rng, (h, w, ic))])


def make_depthwise_conv2d(rng, seed: int) -> Case:
    padding = str(rng.choice(["SAME", "VALID"]))
    h, w, kh, kw, stride, dilation = window_geometry(rng, 12, True, padding)
    ic = int(rng.integers(1, 9))
    dm = 1 if seed % 2 == 0 else int(rng.integers(2, 5))
    oc = ic * dm
    s_in, zp_in = random_qparams(rng)
    w_max, w_scales, (s_out, zp_out), bias, activation = random_weighted(rng, oc, kh * kw, s_in, True)
    tfl_weight = rng.integers(-w_max, w_max + 1, (1, kh, kw, oc)).astype(np.int8)  # channel ic*dm + m
    oh, ow = out_size(h, kh, stride[0], dilation[0], padding), out_size(w, kw, stride[1], dilation[1], padding)
    (pt, pb), (pl, pr) = pads(h, kh, stride[0], dilation[0], oh), pads(w, kw, stride[1], dilation[1], ow)
    act_min, act_max = activation_range(activation, s_out, zp_out)
    params = dict(seed=seed, input=(h, w, ic), kernel=(kh, kw), depth_multiplier=dm, stride=stride,
                  dilation=dilation, padding=padding, activation=activation, in_q=(s_in, zp_in),
                  out_q=(s_out, zp_out), w_scales=w_scales)
    model_bytes = tflm.depthwise_conv2d((h, w, ic), (s_in, zp_in), (oh, ow, oc), (s_out, zp_out), tfl_weight,
                                        w_scales, bias, dm, stride, dilation, padding, activation)
    mult, shift = conv_multipliers(s_in, w_scales, s_out)
    node, consts = weighted_node("conv2d", {
        "stride": stride, "padding": [pt, pl, pb, pr], "dilation": dilation, "groups": ic, "input_zp": zp_in,
        "output_zp": zp_out, "act_min": act_min, "act_max": act_max},
        tfl_weight.transpose(3, 1, 2, 0), bias, mult, shift)  # [1,KH,KW,OC] -> OHWI [OC,KH,KW,1]
    model = boundary_model(f"dw{seed}", [TensorInfo("x", "int8", (h, w, ic), s_in, zp_in, layout="HWC")], node,
                           TensorInfo("y", "int8", (oh, ow, oc), s_out, zp_out, layout="HWC"), consts)
    return Case(params, model_bytes, model, [random_inputs(rng, (h, w, ic))])


def make_fully_connected(rng, seed: int) -> Case:
    k, n = int(rng.integers(1, 65)), int(rng.integers(1, 17))
    per_channel = seed % 2 == 1
    s_in, zp_in = random_qparams(rng)
    w_max, w_scales, (s_out, zp_out), bias, activation = random_weighted(rng, n, k, s_in, per_channel)
    weight = rng.integers(-w_max, w_max + 1, (n, k)).astype(np.int8)
    act_min, act_max = activation_range(activation, s_out, zp_out)
    params = dict(seed=seed, k=k, n=n, per_channel=per_channel, activation=activation, in_q=(s_in, zp_in),
                  out_q=(s_out, zp_out), w_scales=w_scales if per_channel else w_scales[0])
    model_bytes = tflm.fully_connected(k, (s_in, zp_in), (s_out, zp_out), weight,
                                       w_scales if per_channel else w_scales[:1], bias, activation)
    mult, shift = conv_multipliers(s_in, w_scales, s_out)  # per-tensor: the one multiplier, replicated
    node, consts = weighted_node("dense", {"input_zp": zp_in, "output_zp": zp_out, "act_min": act_min,
                                           "act_max": act_max}, weight, bias, mult, shift)
    model = boundary_model(f"fc{seed}", [TensorInfo("x", "int8", (k,), s_in, zp_in)], node,
                           TensorInfo("y", "int8", (n,), s_out, zp_out), consts)
    return Case(params, model_bytes, model, [random_inputs(rng, (k,))])


def make_add(rng, seed: int) -> Case:
    shape = tuple(int(v) for v in rng.integers(1, 9, 3))
    (s_a, zp_a), (s_b, zp_b) = random_qparams(rng, 0.005, 0.2), random_qparams(rng, 0.005, 0.2)
    s_out = float(np.float32(max(s_a, s_b) * rng.uniform(0.5, 3.0)))
    zp_out = int(rng.integers(-64, 65))
    activation = str(rng.choice(["NONE", "NONE", "RELU", "RELU6"]))
    act_min, act_max = activation_range(activation, s_out, zp_out)
    params = dict(seed=seed, shape=shape, a_q=(s_a, zp_a), b_q=(s_b, zp_b), out_q=(s_out, zp_out),
                  activation=activation)
    model_bytes = tflm.add(shape, (s_a, zp_a), (s_b, zp_b), (s_out, zp_out), activation)
    multipliers, shifts = add_multipliers(s_a, s_b, s_out, 20)
    node = Node("op", "add", ["a", "b"], ["y"], {
        "input_zps": [zp_a, zp_b], "left_shift": 20, "multipliers": [int(m) for m in multipliers],
        "shifts": [int(s) for s in shifts], "output_zp": zp_out, "act_min": act_min, "act_max": act_max})
    model = boundary_model(f"add{seed}", [TensorInfo("a", "int8", shape, s_a, zp_a, layout="HWC"),
                                          TensorInfo("b", "int8", shape, s_b, zp_b, layout="HWC")], node,
                           TensorInfo("y", "int8", shape, s_out, zp_out, layout="HWC"), {})
    return Case(params, model_bytes, model, [random_inputs(rng, shape), random_inputs(rng, shape)])


def make_average_pool2d(rng, seed: int) -> Case:
    padding = "SAME" if seed % 2 == 0 else "VALID"
    h, w, kh, kw, stride, _ = window_geometry(rng, 12, False, padding)
    c = int(rng.integers(1, 9))
    s, zp = random_qparams(rng)
    activation = str(rng.choice(["NONE", "NONE", "RELU", "RELU6"]))
    act_min, act_max = activation_range(activation, s, zp)
    oh, ow = out_size(h, kh, stride[0], 1, padding), out_size(w, kw, stride[1], 1, padding)
    (pt, pb), (pl, pr) = pads(h, kh, stride[0], 1, oh), pads(w, kw, stride[1], 1, ow)
    params = dict(seed=seed, input=(h, w, c), kernel=(kh, kw), stride=stride, padding=padding,
                  activation=activation, q=(s, zp))
    model_bytes = tflm.average_pool2d((h, w, c), (s, zp), (oh, ow, c), (kh, kw), stride, padding, activation)
    node = Node("op", "avgpool", ["x"], ["y"], {
        "kernel": [kh, kw], "stride": stride, "padding": [pt, pl, pb, pr], "count_include_pad": 0,
        "pad_value": zp, "act_min": act_min, "act_max": act_max})
    model = boundary_model(f"pool{seed}", [TensorInfo("x", "int8", (h, w, c), s, zp, layout="HWC")], node,
                           TensorInfo("y", "int8", (oh, ow, c), s, zp, layout="HWC"), {})
    return Case(params, model_bytes, model, [random_inputs(rng, (h, w, c))])


MAKERS = {"conv2d": make_conv2d, "depthwise_conv2d": make_depthwise_conv2d,
          "fully_connected": make_fully_connected, "add": make_add, "average_pool2d": make_average_pool2d}


# ---- running the three implementations -------------------------------------------------------------

def run_c_model(case: Case, directory) -> np.ndarray:
    """Whole-model C project: emit, compile, run on the integer input batch(es)."""
    proj = emit_c(case.model, directory, cflags=CFLAGS)
    exe = build_host(proj.directory, cflags=CFLAGS)
    (out,) = run_host(exe, case.inputs, [("int8", case.model.tensors[proj.output_tensors[0]].shape)])
    return out


def describe_mismatch(name: str, got: np.ndarray, want: np.ndarray) -> str:
    if got.shape != want.shape:
        return f"{name}: shape {got.shape} != TFLM {want.shape}"
    diff = np.argwhere(got != want)
    shown = ", ".join(f"[{','.join(map(str, idx))}] {name}={int(got[tuple(idx)])} tflm={int(want[tuple(idx)])}"
                      for idx in diff[:6])
    return f"{name}: {len(diff)}/{want.size} elements differ (sample, *index): {shown}"


@pytest.mark.parametrize("block", range(GRAPHS_PER_OP // BLOCK))
@pytest.mark.parametrize("op", OPS)
def test_single_op_matches_tflm(op, block, tmp_path, gcc):
    op_id = OPS.index(op)
    seeds = range(block * BLOCK, (block + 1) * BLOCK)
    cases = [MAKERS[op](np.random.default_rng([op_id, seed]), seed) for seed in seeds]
    for case in cases:
        samples = [[x[i] for x in case.inputs] for i in range(len(case.inputs[0]))]
        case.results["tflm"] = tflm.run_tflm(case.tflite, samples)
        case.results["hwsim"] = simulate(case.model, case.inputs, quantized=True).int_outputs[0]
        case.results["hwsim_ref"] = simulate(case.model, case.inputs, quantized=True, fast=False).int_outputs[0]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        outs = pool.map(lambda ic: run_c_model(ic[1], tmp_path / f"g{ic[0]}"), enumerate(cases))
        for case, out in zip(cases, outs):
            case.results["c"] = out

    failures = []
    for case in cases:
        want = case.results["tflm"]
        assert want.dtype == np.int8 and want.shape == (len(case.inputs[0]), *case.model.tensors["y"].shape)
        problems = [describe_mismatch(name, got, want) for name, got in case.results.items()
                    if name != "tflm" and not np.array_equal(got, want)]
        if problems:
            failures.append(f"{op} {case.params}\n    " + "\n    ".join(problems))
    assert not failures, f"{len(failures)}/{len(cases)} graphs disagree with TFLM:\n" + "\n".join(failures)


def _mutate(model: IntModel, **attrs) -> IntModel:
    model = copy.deepcopy(model)
    model.nodes[-2].attrs.update(attrs)
    return model


def _swap_padding_sides(case):
    pt, pl, pb, pr = case.model.nodes[-2].attrs["padding"]
    return _mutate(case.model, padding=[pb, pr, pt, pl])


def _half_up(case):
    model = copy.deepcopy(case.model)
    model.rounding = "half_up"
    return model


def _depthwise_channel_order(case):
    """Output channel ``m * IC + ic`` instead of TFLM's ``ic * dm + m``."""
    model = copy.deepcopy(case.model)
    w = model.constants["w"]
    ic, dm = case.params["input"][2], case.params["depth_multiplier"]
    model.constants["w"] = np.ascontiguousarray(w.reshape(dm, ic, *w.shape[1:]).swapaxes(0, 1).reshape(w.shape))
    return model


def _first_channel_multiplier(case):
    model = copy.deepcopy(case.model)
    for c in ("m", "s"):
        model.constants[c] = np.full_like(model.constants[c], model.constants[c][0])
    return model


def _add_left_shift_10(case):
    a = case.params
    multipliers, shifts = add_multipliers(a["a_q"][0], a["b_q"][0], a["out_q"][0], 10)
    return _mutate(case.model, left_shift=10, multipliers=multipliers, shifts=shifts)


def _count_padding(case):
    return _mutate(case.model, count_include_pad=1)


MUTATIONS = [("conv2d", _swap_padding_sides), ("conv2d", _half_up), ("depthwise_conv2d", _depthwise_channel_order),
             ("depthwise_conv2d", _half_up), ("fully_connected", _first_channel_multiplier),
             ("add", _add_left_shift_10), ("average_pool2d", _count_padding)]


@pytest.mark.parametrize("op,mutation", MUTATIONS, ids=[f"{op}-{m.__name__.strip('_')}" for op, m in MUTATIONS])
def test_oracle_detects_mutations(op, mutation):
    """The comparison can fail: a plausible mistake in our IR (padding side, rounding mode, channel order,
    per-channel multipliers, ADD's left shift, counting padded taps) makes hwsim disagree with TFLM on
    at least one of the op's graphs, while the unmutated IR agrees on all of them."""
    caught = 0
    for seed in range(GRAPHS_PER_OP):
        case = MAKERS[op](np.random.default_rng([OPS.index(op), seed]), seed)
        samples = [[x[i] for x in case.inputs] for i in range(len(case.inputs[0]))]
        want = tflm.run_tflm(case.tflite, samples)
        assert np.array_equal(simulate(case.model, case.inputs, quantized=True).int_outputs[0], want)
        mutated = mutation(case)
        mutated.validate()
        caught += not np.array_equal(simulate(mutated, case.inputs, quantized=True).int_outputs[0], want)
    assert caught > 0, f"{mutation.__name__} went unnoticed on all {GRAPHS_PER_OP} {op} graphs"


def test_oracle_is_not_vacuous():
    """TFLM reads the parameters we write (a one-step change of the output zero point changes its
    answer) and its output is not near-constant, so agreeing with it is not trivial."""
    case = make_conv2d(np.random.default_rng([0, 1]), 1)
    samples = [[x[i] for x in case.inputs] for i in range(len(case.inputs[0]))]
    base = tflm.run_tflm(case.tflite, samples)
    p = case.params
    other = tflm.conv2d(p["input"], p["in_q"], case.model.tensors["y"].shape, (p["out_q"][0], p["out_q"][1] + 1),
                        case.model.constants["w"], p["w_scales"], case.model.constants["b"], p["stride"],
                        p["dilation"], p["padding"], p["activation"])
    assert not np.array_equal(tflm.run_tflm(other, samples), base)
    sim = simulate(case.model, case.inputs, quantized=True).int_outputs[0]
    assert np.array_equal(sim, base)
    assert len(np.unique(base)) > 10
