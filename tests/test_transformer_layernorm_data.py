"""Transformer ops of docs/transformer-ops.md: layernorm, shift_matmul, mask_keys, embedding, constant, slice,
mean_pool (and dense on (..., K) inputs, transpose up to rank 4).

1. Per op and rounding mode (hypothesis): hwsim's scalar reference == its fast path (outputs and trace counts)
   == the generated C kernel, with 0 overflow events on validated models, and == an independent numpy / Python
   big-integer reading of the spec. Edge cases: all-equal rows (V = 0), qmin/qmax rows, mean ties, C = 1 and 768,
   out-of-range ids, all-zero masks, masked key columns, zero codes (== Z).
2. A whole multi-op model (zero-input constant, two-input nodes, three outputs) emitted as a C project and run on
   the host equals hwsim bit for bit.
3. I-ViT / I-BERT reference equivalence of layernorm (issue requirement), with the formulas written here in
   Python integers.
4. The validator refuses a layernorm whose norm_shift breaks the int32 bound; with the bound bypassed, the
   kernels count the overflow.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intonly.codegen.c.emit import emit_c
from intonly.codegen.c.kernel_lib import run_node_c
from intonly.codegen.c.toolchain import build_host, run_host
from intonly.hwsim import simulate
from intonly.hwsim.executor import LayerTrace, OpContext
from intonly.hwsim.numerics import ROUNDING_IDS, isqrt
from intonly.hwsim.ops import constant as constant_op
from intonly.hwsim.ops.layernorm import rounded_mean
from intonly.quantize.errors import ModelFileError
from intonly.quantize.ir import IntModel, Node, TensorInfo

from conftest import random_ints, single_op_model
from test_numerics import reference
from test_ops_property import SETTINGS, act_info, inputs_for, multiplier

MODES = ["half_up", "double", "half_even"]
INT32_MAX = 2**31 - 1


def traced(model, inputs, mode):
    """Scalar reference == fast path (values and every trace count) == C kernel; returns (output, trace)."""
    node = next(n for n in model.nodes if n.op not in ("quantize", "dequantize"))
    inputs = inputs if isinstance(inputs, list) else [inputs]
    runs = [simulate(model, inputs, rounding=mode, fast=fast, quantized=True) for fast in (False, True)]
    (ref, fast) = (r.int_outputs[0] for r in runs)
    ref_trace, fast_trace = (next(t for t in r.trace if t.node == node.name) for r in runs)
    np.testing.assert_array_equal(fast, ref, err_msg="fast path != scalar reference")
    assert fast_trace == ref_trace
    assert ref_trace.overflows == 0, "a validated model overflowed"
    np.testing.assert_array_equal(run_node_c(model, node, inputs, rounding=mode), ref, err_msg="generated C != hwsim")
    return ref, ref_trace


def info(name, shape, bits, zp=0, **kw):
    return TensorInfo(name, "int8" if bits <= 8 else "int16", tuple(shape), 1.0, zp, bits, **kw)


def requant_clamp(acc, mode, mult, shift, out_zp, lo, hi):
    """Big-integer R + zero point + clamp, elementwise over an int64 array, per-channel (last axis) mult/shift."""
    mult, shift = np.broadcast_to(mult, acc.shape), np.broadcast_to(shift, acc.shape)
    vals = [reference(mode, int(a), int(b), int(c)) for a, b, c in zip(acc.ravel(), mult.ravel(), shift.ravel())]
    return np.clip(np.array(vals, dtype=object).reshape(acc.shape) + out_zp, lo, hi).astype(np.int64)


# ---------------------------------------------------------------------------------------------- layernorm

def round_fraction(value: Fraction, mode: str) -> int:
    floor = value.numerator // value.denominator
    frac = value - floor
    if frac != Fraction(1, 2):
        return floor + (frac > Fraction(1, 2))
    if mode == "half_up":
        return floor + 1
    if mode == "half_even":
        return floor + (floor & 1)
    return floor + 1 if value > 0 else floor  # double: ties away from zero


def layernorm_spec(x_row, mode, k):
    """docs/transformer-ops.md's layernorm up to nrm, in Python integers (exact isqrt)."""
    x_row = [int(v) for v in x_row]
    mean = round_fraction(Fraction(sum(x_row), len(x_row)), mode)
    y = [v - mean for v in x_row]
    sigma = math.isqrt(sum(v * v for v in y)) or 1
    f = INT32_MAX // sigma
    return [(v * f) >> (31 - k) for v in y]


def lowering_norm_shift(weight, bias):
    """The largest norm_shift <= 30 for which quantize/bounds.py's ``(|w| << k) + |b| <= 2^31 - 1`` holds."""
    w, b = np.abs(weight.astype(np.int64)), np.abs(bias.astype(np.int64))
    return next(k for k in range(30, -1, -1) if int(((w << k) + b).max()) <= INT32_MAX)


def layernorm_model(x, y, weight, bias, mult, shift, k, act=None, mode="half_up"):
    lo, hi = act or y.qrange()
    attrs = {"norm_shift": k, "output_zp": y.zero_point, "act_min": lo, "act_max": hi}
    consts = {"weight": weight.astype(np.int16), "bias": bias.astype(np.int32),
              "multiplier": np.asarray(mult, np.int32), "shift": np.asarray(shift, np.int32)}
    return single_op_model("layernorm", [x], y, attrs, consts, mode)


@st.composite
def layernorm_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    channels = draw(st.sampled_from([1, 2, 3, 4, 7, 16, 33, 64, 768]))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    x = act_info(draw, "x", lead + (channels,), bits=draw(st.sampled_from([8, 16])))
    batch = draw(st.integers(1, 3))
    xs = inputs_for(draw, rng, x, batch)
    lo, hi = x.qrange()
    style = draw(st.sampled_from(["as drawn", "equal rows", "ties", "extremes", "narrow"]))
    if style == "equal rows":  # V = 0
        xs[:] = rng.integers(lo, hi + 1, size=xs.shape[:-1] + (1,))
    elif style == "ties" and channels % 2 == 0:  # mean exactly a + 1/2
        a = rng.integers(lo, hi, size=xs.shape[:-1] + (1,))
        xs[:] = a + (np.arange(channels) >= channels // 2)
    elif style == "extremes":  # qmin / qmax rows, the largest variance
        xs[:] = np.where(rng.random(xs.shape) < 0.5, lo, hi)
    elif style == "narrow":  # small V, where I-ViT's fixed Newton steps are not yet converged
        xs[:] = rng.integers(-2, 3, size=xs.shape)
    wmax = draw(st.sampled_from([1, 127, 4000, 32767]))
    weight = rng.integers(-wmax, wmax + 1, size=channels)
    bias = rng.integers(-(1 << 20), 1 << 20, size=channels)
    k = lowering_norm_shift(weight, bias)
    out = act_info(draw, "y", x.shape, bits=draw(st.sampled_from([8, 16])))
    typical = max(float(np.abs(weight).mean()), 1.0) * (1 << k) / math.sqrt(channels)
    pairs = [multiplier(draw, rng, typical) for _ in range(channels)]
    return x, out, weight, bias, [p[0] for p in pairs], [p[1] for p in pairs], k, xs


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(case=layernorm_case())
def test_layernorm(mode, case):
    x, y, weight, bias, mult, shift, k, xs = case
    model = layernorm_model(x, y, weight, bias, mult, shift, k, mode=mode)
    out, trace = traced(model, xs, mode)
    rows = xs.reshape(-1, x.shape[-1])
    nrm = np.array([layernorm_spec(r, mode, k) for r in rows], dtype=np.int64)
    expected = requant_clamp(nrm * weight + bias, mode, np.array(mult), np.array(shift), y.zero_point, *y.qrange())
    np.testing.assert_array_equal(out.reshape(rows.shape), expected)
    assert (trace.requants, trace.divides) == (xs.size, 2 * len(rows))


@pytest.mark.parametrize("mode", MODES)
def test_rounded_mean_matches_fractions(mode):
    rng = np.random.default_rng(1)
    sums = list(rng.integers(-(2**31), 2**31, size=300)) + [-3, -1, 1, 3, 5, -5, 0]
    for s in sums:
        for c in (1, 2, 4, 6, 768, int(rng.integers(1, 1000))):
            assert rounded_mean(np.int64(s), np.int64(c), ROUNDING_IDS[mode]) == round_fraction(Fraction(int(s), c),
                                                                                                  mode)
    # the three modes disagree on exactly these ties: 0.5, -0.5, 2.5
    got = [rounded_mean(np.int64(s), np.int64(2), ROUNDING_IDS[mode]) for s in (1, -1, 5)]
    assert got == {"half_up": [1, 0, 3], "double": [1, -1, 3], "half_even": [0, 0, 2]}[mode]


# ------------------------------------------------------------------------------------------- shift_matmul

@st.composite
def shift_matmul_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    code_bits = draw(st.sampled_from([2, 3, 4]))
    z = 1 << code_bits
    b_bits = draw(st.sampled_from([8, 16] if code_bits < 4 else [8]))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    b_zp = draw(st.sampled_from([0, -(1 << (b_bits - 1)), 5]))
    span = max(abs(q - b_zp) for q in (-(1 << (b_bits - 1)), (1 << (b_bits - 1)) - 1))
    k_max = min(64, INT32_MAX // (span << (z - 1)))
    m, k, n = draw(st.integers(1, 6)), draw(st.integers(1, k_max)), draw(st.integers(1, 6))
    a = info("a", lead + (m, k), 8, encoding="log2")
    b = info("b", lead + (k, n), b_bits, b_zp)
    y = act_info(draw, "y", lead + (m, n), bits=draw(st.sampled_from([8, 16])))
    mult, shift = multiplier(draw, rng, span << (z - 1))
    attrs = {"input_zp": b_zp, "code_bits": code_bits, "multiplier": mult, "shift": shift,
             "output_zp": y.zero_point, "act_min": y.qrange()[0], "act_max": y.qrange()[1]}
    batch = draw(st.integers(1, 3))
    style = draw(st.sampled_from(["random", "all zero codes", "one-hot", "with invalid codes"]))
    codes = rng.integers(0, z + 1, size=(batch,) + a.shape)
    if style == "all zero codes":  # code Z means probability 0
        codes[:] = z
    elif style == "one-hot":  # code 0 (probability 1) once per row, Z elsewhere
        codes[:] = z
        codes[..., 0] = 0
    elif style == "with invalid codes":  # outside [0, Z]: contribute nothing
        codes[rng.random(codes.shape) < 0.3] = -1
        codes[rng.random(codes.shape) < 0.2] = 127
    return [a, b], y, attrs, [codes.astype(np.int8), inputs_for(draw, rng, b, batch)]


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(case=shift_matmul_case())
def test_shift_matmul(mode, case):
    ins, y, attrs, inputs = case
    out, _ = traced(single_op_model("shift_matmul", ins, y, attrs, None, mode), inputs, mode)
    z = 1 << attrs["code_bits"]
    codes = inputs[0].astype(np.int64)
    weights = np.where((codes >= 0) & (codes < z), 2 ** np.clip(z - 1 - codes, 0, z - 1), 0)
    acc = weights @ (inputs[1].astype(np.int64) - attrs["input_zp"])
    expected = requant_clamp(acc, mode, attrs["multiplier"], attrs["shift"], attrs["output_zp"], attrs["act_min"],
                             attrs["act_max"])
    np.testing.assert_array_equal(out, expected)


# --------------------------------------------------------------------------------- data and selection ops

@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_mask_keys(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=3)))
    keys = data.draw(st.integers(1, 20))
    scores = act_info(data.draw, "scores", lead + (keys,), bits=data.draw(st.sampled_from([8, 16])))
    mask = info("mask", (keys,), 8)
    batch = data.draw(st.integers(1, 3))
    xs = inputs_for(data.draw, rng, scores, batch)
    ms = (rng.integers(-128, 128, size=(batch, keys)) * (rng.random((batch, keys)) < 0.5)).astype(np.int8)
    ms[0] = data.draw(st.sampled_from([ms[0], 0, 1]))  # a sample with every key (or no key) masked
    y = TensorInfo("y", scores.dtype, scores.shape, scores.scale, scores.zero_point, scores.bits)
    out, _ = traced(single_op_model("mask_keys", [scores, mask], y, {}), [xs, ms], "half_up")
    keep = ms.reshape((batch,) + (1,) * len(lead) + (keys,)) != 0
    np.testing.assert_array_equal(out, np.where(keep, xs, scores.qrange()[0]))


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_embedding(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    vocab, dim = data.draw(st.integers(1, 50)), data.draw(st.integers(1, 24))
    bits = data.draw(st.sampled_from([8, 16]))
    table = random_ints(rng, (vocab, dim), info("w", (), bits))
    ids_shape = tuple(data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=2)))
    ids = info("ids", ids_shape, 16)
    batch = data.draw(st.integers(1, 3))
    xs = rng.integers(-3, vocab + 3, size=(batch,) + ids_shape).astype(np.int16)
    xs.flat[0], xs.flat[-1] = data.draw(st.sampled_from([(-32768, 32767), (0, vocab - 1), (vocab, -1)]))
    y = info("y", ids_shape + (dim,), bits)
    out, trace = traced(single_op_model("embedding", [ids], y, {}, {"weight": table}), xs, "half_up")
    np.testing.assert_array_equal(out, table[np.clip(xs, 0, vocab - 1)])
    assert trace.clamp_events == np.count_nonzero((xs < 0) | (xs >= vocab))


@pytest.mark.parametrize("dtype,bits", [("int8", 8), ("int16", 16), ("int32", 32)])
def test_constant_repeats_the_value_for_every_sample(dtype, bits):
    value = np.random.default_rng(3).integers(-100, 100, size=(3, 5)).astype(dtype)
    y = TensorInfo("y", dtype, (3, 5), 1.0, 0, bits)
    model = single_op_model("constant", [], y, {}, {"value": value}, inputs=[TensorInfo("x", "int8", (1,))])
    node = next(n for n in model.nodes if n.op == "constant")
    for fast in (False, True):
        ctx = OpContext(0, fast, LayerTrace(node.name, node.op, "y"), batch=4)
        out = constant_op.run(model, node, [], ctx)
        assert out.dtype == np.dtype(dtype) and out.flags.c_contiguous
        np.testing.assert_array_equal(out, np.broadcast_to(value, (4, 3, 5)))
    np.testing.assert_array_equal(run_node_c(model, node, [], batch=4), np.broadcast_to(value, (4, 3, 5)))


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_slice(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    axis = data.draw(st.integers(0, len(shape) - 1))
    start = data.draw(st.integers(0, shape[axis] - 1))
    stop = data.draw(st.integers(start + 1, shape[axis]))
    x = act_info(data.draw, "x", shape)
    xs = random_ints(rng, (2,) + shape, x)
    y = TensorInfo("y", x.dtype, tuple(stop - start if i == axis else d for i, d in enumerate(shape)), x.scale,
                   x.zero_point, x.bits)
    out, _ = traced(single_op_model("slice", [x], y, {"axis": axis, "start": start, "stop": stop}), xs, "half_up")
    np.testing.assert_array_equal(out, np.take(xs, range(start, stop), axis=axis + 1))


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_mean_pool(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    tokens, dim = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 8))
    x = act_info(data.draw, "x", lead + (tokens, dim), bits=data.draw(st.sampled_from([8, 16])))
    out_zp = data.draw(st.sampled_from([x.zero_point, x.zero_point, 0]))
    y = TensorInfo("y", x.dtype, lead + (dim,), x.scale, out_zp, x.bits)
    batch = data.draw(st.integers(1, 3))
    xs = inputs_for(data.draw, rng, x, batch)
    if data.draw(st.booleans()):  # x - zp alternating +-1 / +-2 columns: averages land on ties
        xs[:] = np.clip(x.zero_point + (np.arange(tokens) % 2 * 2 - 1)[:, None] * (1 + np.arange(dim) % 2),
                        *x.qrange())
    ms = (rng.random((batch, tokens)) < 0.6).astype(np.int8) * rng.integers(-128, 128, size=(batch, tokens))
    ms = ms.astype(np.int8)
    ms[0] = data.draw(st.sampled_from([ms[0], 0]))  # all tokens masked: output_zp
    model = single_op_model("mean_pool", [x, info("mask", (tokens,), 8)], y,
                            {"input_zp": x.zero_point, "output_zp": out_zp})
    out, trace = traced(model, [xs, ms], "half_up")
    keep = ms.reshape((batch,) + (1,) * len(lead) + (tokens, 1)) != 0
    total = ((xs.astype(np.int64) - x.zero_point) * keep).sum(axis=-2)
    cnt = np.broadcast_to(keep.sum(axis=-2), total.shape)
    avg = [round_fraction(Fraction(int(t), int(c)), "double") if c else 0 for t, c in zip(total.ravel(), cnt.ravel())]
    expected = np.clip(np.array(avg).reshape(total.shape) + out_zp, *y.qrange())
    np.testing.assert_array_equal(out, expected)
    assert trace.divides == np.count_nonzero(cnt)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_dense_on_token_rows(mode, data):
    """dense on (..., K): each leading index is a row (a token)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    lead = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    k, n = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 8))
    x = act_info(data.draw, "x", lead + (k,))
    y = act_info(data.draw, "y", lead + (n,), bits=data.draw(st.sampled_from([8, 16])))
    weight = rng.integers(-127, 128, size=(n, k)).astype(np.int8)
    bias = rng.integers(-5000, 5000, size=n).astype(np.int32)
    pairs = [multiplier(data.draw, rng, float(np.abs(weight).sum() / n) * 64) for _ in range(n)]
    mult, shift = (np.array([p[i] for p in pairs], np.int32) for i in (0, 1))
    attrs = {"input_zp": x.zero_point, "output_zp": y.zero_point, "act_min": y.qrange()[0], "act_max": y.qrange()[1]}
    model = single_op_model("dense", [x], y, attrs, {"weight": weight, "bias": bias, "multiplier": mult,
                                                     "shift": shift}, mode)
    xs = inputs_for(data.draw, rng, x, data.draw(st.integers(1, 3)))
    out, _ = traced(model, xs, mode)
    acc = (xs.astype(np.int64) - x.zero_point) @ weight.T.astype(np.int64) + bias
    np.testing.assert_array_equal(out, requant_clamp(acc, mode, mult, shift, y.zero_point, *y.qrange()))


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_transpose_up_to_rank_4(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    perm = list(data.draw(st.permutations(range(len(shape)))))
    x = act_info(data.draw, "x", shape)
    y = TensorInfo("y", x.dtype, tuple(shape[p] for p in perm), x.scale, x.zero_point, x.bits)
    xs = random_ints(rng, (2,) + shape, x)
    out, _ = traced(single_op_model("transpose", [x], y, {"perm": perm}), xs, "half_up")
    np.testing.assert_array_equal(out, np.transpose(xs, [0] + [p + 1 for p in perm]))


# ------------------------------------------------------------------------------------ whole model, host C

def encoder_tail_model(mode, tokens=6, vocab=20, dim=8):
    """ids -> embedding -> layernorm -> {mask_keys(const key mask) -> slice, mean_pool(mask input), dense}."""
    rng = np.random.default_rng(11)
    t = {}

    def tensor(name, shape, bits=8, dtype=None, zp=0):
        t[name] = TensorInfo(name, dtype or ("int8" if bits <= 8 else "int16"), tuple(shape), 0.1, zp, bits)
        return name

    weight = rng.integers(-3000, 3000, size=dim)
    bias = rng.integers(-(1 << 16), 1 << 16, size=dim)
    k = lowering_norm_shift(weight, bias)
    ln_consts = {"ln.weight": weight.astype(np.int16), "ln.bias": bias.astype(np.int32),
                 "ln.multiplier": np.full(dim, 1 << 30, np.int32), "ln.shift": np.full(dim, k + 33, np.int32)}
    consts = {"emb.weight": rng.integers(-128, 128, size=(vocab, dim)).astype(np.int8),
              "kmask.value": (np.arange(dim) % 3 != 1).astype(np.int8),
              "fc.weight": rng.integers(-127, 128, size=(5, dim)).astype(np.int8),
              "fc.bias": rng.integers(-999, 999, size=5).astype(np.int32),
              "fc.multiplier": np.full(5, 1 << 30, np.int32), "fc.shift": np.full(5, 39, np.int32), **ln_consts}
    for name, shape in (("ids_f", (tokens,)), ("mask_f", (tokens,)), ("sl_f", (2, dim)), ("pool_f", (dim,)),
                        ("fc_f", (tokens, 5))):
        t[name] = TensorInfo(name, "float32", shape)
    nodes = [
        Node("q_ids", "quantize", ["ids_f"], [tensor("ids", (tokens,), 16)], {"perm": [], "form": 0}),
        Node("q_mask", "quantize", ["mask_f"], [tensor("mask", (tokens,))], {"perm": [], "form": 0}),
        Node("kmask", "constant", [], [tensor("kmask", (dim,))], {}, {"value": "kmask.value"}),
        Node("emb", "embedding", ["ids"], [tensor("emb", (tokens, dim))], {}, {"weight": "emb.weight"}),
        Node("ln", "layernorm", ["emb"], [tensor("ln", (tokens, dim), zp=3)],
             {"norm_shift": k, "output_zp": 3, "act_min": -127, "act_max": 127},
             {r: f"ln.{r}" for r in ("weight", "bias", "multiplier", "shift")}),
        Node("mk", "mask_keys", ["ln", "kmask"], [tensor("mk", (tokens, dim))]),
        Node("sl", "slice", ["mk"], [tensor("sl", (2, dim))], {"axis": 0, "start": 1, "stop": 3}),
        Node("pool", "mean_pool", ["ln", "mask"], [tensor("pool", (dim,), zp=3)], {"input_zp": 3, "output_zp": 3}),
        Node("fc", "dense", ["ln"], [tensor("fc", (tokens, 5), 16)],
             {"input_zp": 3, "output_zp": 0, "act_min": -32768, "act_max": 32767},
             {r: f"fc.{r}" for r in ("weight", "bias", "multiplier", "shift")}),
    ]
    nodes += [Node(f"d_{n}", "dequantize", [n], [f"{n}_f"], {"perm": []}) for n in ("sl", "pool", "fc")]
    model = IntModel("encoder_tail", mode, ["ids_f", "mask_f"], ["sl_f", "pool_f", "fc_f"], t, nodes, consts)
    model.validate()
    return model


@pytest.mark.parametrize("mode", MODES)
def test_whole_model_c_equals_hwsim(mode, tmp_path, gcc):
    model = encoder_tail_model(mode)
    rng = np.random.default_rng(5)
    ids = rng.integers(-2, 23, size=(7, 6)).astype(np.int16)
    mask = (rng.random((7, 6)) < 0.7).astype(np.int8)
    mask[0] = 0
    sim = simulate(model, [ids, mask], quantized=True)
    assert [t.overflows for t in sim.trace] == [0] * len(sim.trace)
    assert next(t for t in sim.trace if t.op == "embedding").clamp_events == np.count_nonzero((ids < 0) | (ids >= 20))
    project = emit_c(model, tmp_path / "proj")
    outputs = run_host(build_host(project.directory), [ids, mask],
                       [(model.tensors[n].dtype, model.tensors[n].shape) for n in project.output_tensors])
    for c_out, h_out in zip(outputs, sim.int_outputs):
        np.testing.assert_array_equal(c_out, h_out)
    np.testing.assert_array_equal(sim.int_outputs[1][0], np.full(8, 3))  # every token masked: output_zp
    assert np.any(sim.int_outputs[0] == -128)  # the masked key columns hold the sentinel


# ------------------------------------------------------------------------- I-ViT / I-BERT equivalence

def ivit_newton_sqrt(v: int) -> int:
    """I-ViT's sqrt (zkkli/I-ViT quant_modules.py IntLayerNorm): k_0 = 2^16,
    k_{i+1} = floor((k_i + floor(V / k_i)) / 2), exactly 10 iterations."""
    k = 1 << 16
    for _ in range(10):
        k = (k + v // k) // 2
    return k


def ibert_isqrt(n: int) -> int:
    """I-BERT Alg. 4: x_0 = 2^ceil(bits(n)/2); x_{i+1} = floor((x_i + floor(n/x_i))/2); stop when it stops falling."""
    if n == 0:
        return 0
    x = 1 << -(-n.bit_length() // 2)
    while True:
        nxt = (x + n // x) // 2
        if nxt >= x:
            return x
        x = nxt


def ivit_normalized(x_row, sigma_of=math.isqrt, variance=None):
    """I-ViT I-LayerNorm up to I_n (zkkli/I-ViT quant_modules.py IntLayerNorm): mean = round-half-even(mean),
    y = x - mean, V = sum y^2 (or ``variance``),
    F = floor((2^31 - 1) / sigma), I_n = floor(y F / 2)."""
    x_row = [int(v) for v in x_row]
    mean = round(Fraction(sum(x_row), len(x_row)))  # Python's round: ties to even
    y = [v - mean for v in x_row]
    v = sum(d * d for d in y) if variance is None else variance
    f = INT32_MAX // (sigma_of(v) or 1)
    return [(d * f) // 2 for d in y]


def ivit_constants_model(channels):
    """half_even, norm_shift 30, weight 1, bias 0 and an int32 output with R = identity (b = 2^30, c = 30, no
    rounding): the output is I-ViT's I_n itself."""
    x = info("x", (channels,), 16)
    y = TensorInfo("y", "int32", (channels,), 1.0, 0, 32)
    ones = np.ones(channels, np.int64)
    return layernorm_model(x, y, ones, 0 * ones, (1 << 30) * ones, 30 * ones, 30, act=(-(2**31), INT32_MAX),
                           mode="half_even")


@pytest.mark.parametrize("channels", [2, 7, 64, 768])
def test_layernorm_equals_ivit_formula_with_exact_sqrt(channels):
    rng = np.random.default_rng(channels)
    rows = [rng.integers(-32768, 32768, size=channels), rng.normal(0, 3000, size=channels).round(),
            rng.integers(-3, 4, size=channels), np.full(channels, -32768), np.arange(channels) % 2 * 65535 - 32768,
            np.arange(channels) - channels // 2 + 100]
    xs = np.clip(np.array(rows), -32768, 32767).astype(np.int16)
    out, _ = traced(ivit_constants_model(channels), xs, "half_even")
    assert out.dtype == np.int32
    assert out.tolist() == [ivit_normalized(r) for r in xs]


def test_ivit_newton_sqrt_is_inexact_where_ours_is_exact():
    # small V: 10 halvings from 2^16 are not enough
    assert (ivit_newton_sqrt(1), isqrt(1)) == (64, 1)
    assert (ivit_newton_sqrt(100), isqrt(100)) == (64, 10)
    # V >= 2^32: stops on the high side of the final oscillation (V = n^2 - 1), or far away for large V
    assert 65899**2 - 1 >= 2**32
    assert (ivit_newton_sqrt(65899**2 - 1), isqrt(65899**2 - 1)) == (65899, 65898)
    assert (ivit_newton_sqrt(2**48), isqrt(2**48)) == (16788475, 2**24)
    # and the resulting I_n differ from ours on a row with small V
    row = np.array([0, 0, 1, -1], np.int16)
    ours, _ = traced(ivit_constants_model(4), row[None], "half_even")
    assert ours[0].tolist() == ivit_normalized(row) == [0, 0, 1073741823, -1073741824]
    assert ivit_normalized(row, ivit_newton_sqrt) == [0, 0, 16777215, -16777216]


def test_ibert_isqrt_equals_ours():
    rng = np.random.default_rng(4)
    values = [0, 1, 2, 3, 4, 15, 16, 17, 2**32 - 1, 2**32, 2**62, 2**63 - 1]
    values += [int(v) for v in rng.integers(0, 2**63 - 1, size=500, dtype=np.int64)]
    values += [int(v) >> int(s) for v, s in zip(rng.integers(0, 2**63 - 1, size=500, dtype=np.int64),
                                                rng.integers(0, 63, size=500))]
    values += [n * n + d for n in rng.integers(1, 3_000_000_000, size=200).tolist() for d in (-1, 0, 1)]
    for v in values:
        assert ibert_isqrt(v) == isqrt(v) == math.isqrt(v), v


def test_uint32_variance_wraps_on_a_realistic_int16_row_where_ours_is_exact():
    """TVM's I-ViT LayerNorm: int32 square, cast to uint32, uint32 sum. A 768-channel int16 residual row with a
    standard deviation of 3000 codes has V ~ 6.9e9 >= 2^32, so TVM's V wraps; ours is int64 and exact."""
    rng = np.random.default_rng(0)
    row = np.clip(rng.normal(0, 3000, size=768).round(), -32768, 32767).astype(np.int16)
    mean = round(Fraction(int(row.astype(np.int64).sum()), 768))
    y = row.astype(np.int32) - np.int32(mean)
    exact = sum(int(d) * int(d) for d in y)
    with np.errstate(over="ignore"):
        tvm = int((y * y).astype(np.uint32).sum(dtype=np.uint32))
    assert exact >= 2**32 and tvm == exact % 2**32 != exact
    ours, _ = traced(ivit_constants_model(768), row[None], "half_even")
    assert ours[0].tolist() == ivit_normalized(row)
    assert ours[0].tolist() != ivit_normalized(row, variance=tvm)


# ------------------------------------------------------------------------------ validator and overflow count

def test_validator_refuses_layernorm_whose_norm_shift_overflows_int32():
    x, y = info("x", (4,), 16), info("y", (4,), 8)
    weight = np.full(4, 32767)
    assert lowering_norm_shift(weight, 0 * weight) == 16  # 32767 << 16 = 2147418112 <= 2^31 - 1
    layernorm_model(x, y, weight, 0 * weight, [1 << 30] * 4, [40] * 4, 16)
    with pytest.raises(ModelFileError) as err:
        layernorm_model(x, y, weight, 0 * weight, [1 << 30] * 4, [40] * 4, 17)
    assert str(err.value) == ("model: node 1 'op' (layernorm): normalized * gamma + beta (norm_shift=17) can overflow "
                              "(|value| <= 4294836224 > 2147483647)")


@pytest.mark.parametrize("fast", [False, True])
def test_overflow_counter_fires_when_the_bound_is_bypassed(fast):
    x, y = info("x", (4,), 16), info("y", (4,), 8)
    weight = np.full(4, 32767)
    model = layernorm_model(x, y, weight, 0 * weight, [1 << 30] * 4, [50] * 4, 16)
    model.nodes[1].attrs["norm_shift"] = 30  # bypasses the validator: |nrm * w| reaches 32767 * 2^30
    xs = np.array([[-32768, 32767, 0, 0], [5, 5, 5, 5]], np.int16)
    sim = simulate(model, xs, fast=fast, quantized=True)
    assert next(t for t in sim.trace if t.op == "layernorm").overflows == 2  # the two channels with |y| = sigma of the first row
