"""Per op and rounding mode: hwsim's scalar reference kernel == its fast path == the generated C kernel (and, for
conv2d/dense/matmul on an AVX2 host, the x86 family's SIMD kernel: docs/codegen-families.md).

Cases are drawn by hypothesis (shapes, strides, padding, groups, zero points, multipliers, int8/int16) and
deliberately hit the edges: inputs at the type minimum (-128 / -32768), multipliers of exactly 2^30 so
that requant results land on exact ties, and multipliers large enough to saturate the output clamp.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intonly.codegen.c.kernel_lib import run_node_c
from intonly.hwsim import simulate
from intonly.quantize.bounds import weighted_bound
from intonly.quantize.ir import TensorInfo

from conftest import random_ints, single_op_model
from test_families import host_has_avx2
from test_numerics import reference

MODES = ["half_up", "double", "half_even"]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
X86_FAMILY = host_has_avx2()  # the x86 family's kernels run here
SIMD_OPS = ("conv2d", "dense", "matmul")


def act_info(draw, name, shape, bits=None):
    bits = bits or draw(st.sampled_from([8, 8, 8, 16, 4]))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    zp = draw(st.sampled_from([0, lo, hi, draw(st.integers(lo, hi))]))
    return TensorInfo(name, "int8" if bits <= 8 else "int16", tuple(shape), 0.05, zp, bits)


def inputs_for(draw, rng, info, batch):
    x = random_ints(rng, (batch,) + info.shape, info)
    style = draw(st.sampled_from(["random", "minimum", "maximum", "mixed"]))
    lo, hi = info.qrange()
    if style == "minimum":
        x[:] = lo
    elif style == "maximum":
        x[:] = hi
    elif style == "mixed":
        x[rng.random(x.shape) < 0.3] = lo
    return x


def multiplier(draw, rng, magnitude):
    """(b, c) with b/2^c ~ 127/magnitude times a random factor in [2^-3, 2^3] (>1 saturates the clamp)."""
    b = draw(st.sampled_from([1 << 30, int(rng.integers(1 << 30, 1 << 31))]))
    c = 31 + int(round(math.log2(max(magnitude, 1) / 127))) + draw(st.integers(-3, 3))
    return b, min(max(c, 1), 62)


def check(model, inputs, mode):
    node = next(n for n in model.nodes if n.op not in ("quantize", "dequantize"))
    inputs = inputs if isinstance(inputs, list) else [inputs]
    ref = simulate(model, inputs, rounding=mode, fast=False, quantized=True).int_outputs[0]
    fast = simulate(model, inputs, rounding=mode, fast=True, quantized=True).int_outputs[0]
    c_out = run_node_c(model, node, inputs, rounding=mode)
    np.testing.assert_array_equal(fast, ref, err_msg="fast path != scalar reference")
    np.testing.assert_array_equal(c_out, ref, err_msg="generated C != hwsim")
    if X86_FAMILY and node.op in SIMD_OPS:
        x86 = run_node_c(model, node, inputs, rounding=mode, family="x86")
        np.testing.assert_array_equal(x86, ref, err_msg="x86 family C != hwsim")
    return ref


@st.composite
def conv_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    groups = draw(st.sampled_from([1, 1, 2, "depthwise"]))
    cin = draw(st.integers(1, 6)) * (2 if groups == 2 else 1)
    if groups == "depthwise":
        groups = cin
    oc = groups * draw(st.integers(1, 3)) if groups > 1 else draw(st.integers(1, 8))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(kh, 7)), draw(st.integers(kw, 7))
    stride = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    dilation = [draw(st.integers(1, 2)), 1]
    padding = [draw(st.integers(0, 2)) for _ in range(4)]
    x = act_info(draw, "x", (h, w, cin))
    wbits = draw(st.sampled_from([8, 8, 4, 12]))
    wmax = (1 << (wbits - 1)) - 1
    weight = rng.integers(-wmax, wmax + 1, size=(oc, kh, kw, cin // groups)).astype("int8" if wbits <= 8 else "int16")
    bias = rng.integers(-5000, 5000, size=oc).astype(np.int32)
    # keep the case inside the int32 proof (12-bit weights over a 16-bit asymmetric input can exceed it)
    limit = (2**31 - 1 - 5000) // max(abs(q - x.zero_point) for q in x.qrange())
    rows = int(np.abs(weight.reshape(oc, -1).astype(np.int64)).sum(axis=1).max())
    if rows > limit:
        weight = (weight * (limit / rows)).astype(weight.dtype)   # truncation: every |w| shrinks
    oh = (h + padding[0] + padding[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + padding[1] + padding[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if oh < 1 or ow < 1:
        padding = [2, 2, 2, 2]
        oh = (h + 4 - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (w + 4 - (kw - 1) - 1) // stride[1] + 1
    y = act_info(draw, "y", (oh, ow, oc), bits=draw(st.sampled_from([8, 16])))
    typical = float(np.abs(weight).sum() / oc) * 64
    pairs = [multiplier(draw, rng, typical) for _ in range(oc)]
    lo, hi = y.qrange()
    act_min, act_max = sorted(draw(st.sampled_from([(lo, hi), (y.zero_point, hi), (lo + 3, hi - 5)])))
    attrs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "input_zp": x.zero_point,
             "output_zp": y.zero_point, "act_min": act_min, "act_max": act_max}
    consts = {"weight": weight, "bias": bias, "multiplier": np.array([p[0] for p in pairs], np.int32),
              "shift": np.array([p[1] for p in pairs], np.int32)}
    return x, y, attrs, consts, inputs_for(draw, rng, x, draw(st.integers(1, 3)))


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(case=conv_case())
def test_conv2d(mode, case):
    x, y, attrs, consts, inputs = case
    model = single_op_model("conv2d", [x], y, attrs, consts, mode)
    assert weighted_bound(model, model.nodes[1]) < 2**31
    check(model, inputs, mode)


@st.composite
def dense_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k, n = draw(st.integers(1, 300)), draw(st.integers(1, 12))
    x = act_info(draw, "x", (k,))
    weight = rng.integers(-127, 128, size=(n, k)).astype(np.int8)
    y = act_info(draw, "y", (n,), bits=draw(st.sampled_from([8, 16])))
    pairs = [multiplier(draw, rng, float(np.abs(weight).sum() / n) * 64) for _ in range(n)]
    attrs = {"input_zp": x.zero_point, "output_zp": y.zero_point, "act_min": y.qrange()[0], "act_max": y.qrange()[1]}
    consts = {"weight": weight, "bias": rng.integers(-2**20, 2**20, size=n).astype(np.int32),
              "multiplier": np.array([p[0] for p in pairs], np.int32), "shift": np.array([p[1] for p in pairs], np.int32)}
    return x, y, attrs, consts, inputs_for(draw, rng, x, draw(st.integers(1, 4)))


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(case=dense_case())
def test_dense(mode, case):
    x, y, attrs, consts, inputs = case
    check(single_op_model("dense", [x], y, attrs, consts, mode), inputs, mode)


def test_dense_takes_float64_gemm_when_float32_is_not_provably_exact():
    """int16 activations make sum|w|*max|x| exceed 2^24: the fast path must switch to float64 and stay exact."""
    from intonly.hwsim.ops._weighted import exact_gemm_dtype

    rng = np.random.default_rng(7)
    x = TensorInfo("x", "int16", (512,), 1.0, 0, 16)
    y = TensorInfo("y", "int16", (4,), 1.0, 0, 16)
    weight = rng.integers(-127, 128, size=(4, 512)).astype(np.int8)
    assert exact_gemm_dtype(weight, 32768) is np.float64
    consts = {"weight": weight, "bias": np.zeros(4, np.int32), "multiplier": np.full(4, 1 << 30, np.int32),
              "shift": np.full(4, 40, np.int32)}
    model = single_op_model("dense", [x], y, {"input_zp": 0, "output_zp": 0, "act_min": -32768, "act_max": 32767},
                            consts)
    inputs = np.where(rng.random((3, 512)) < 0.5, -32768, 32767).astype(np.int16)
    out = check(model, inputs, "half_up")
    acc = inputs.astype(np.int64) @ weight.T.astype(np.int64)
    np.testing.assert_array_equal(out, np.clip((acc * (1 << 30) + (1 << 39)) >> 40, -32768, 32767))


@st.composite
def elementwise_case(draw, op):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
    bits = draw(st.sampled_from([8, 16]))
    a = act_info(draw, "a", shape, bits)
    y = act_info(draw, "y", shape, bits)
    lo, hi = y.qrange()
    inputs = inputs_for(draw, rng, a, draw(st.integers(1, 3)))
    if op == "add":
        b = act_info(draw, "b", shape, bits)
        left = 20 if bits == 8 else 15
        mults = [int(rng.integers(1 << 30, 1 << 31)) for _ in range(2)] + [draw(st.sampled_from([1 << 30,
                                                                                               int(rng.integers(1 << 30, 1 << 31))]))]
        # input multipliers below 1/2 (as TFLM's s_i / (2 max s)), so the validator's no-overflow bound holds
        shifts = [draw(st.integers(32, 34)), draw(st.integers(32, 34)), 31 + left - 7 + draw(st.integers(-2, 2))]
        attrs = {"input_zps": [a.zero_point, b.zero_point], "left_shift": left, "multipliers": mults, "shifts": shifts,
                 "output_zp": y.zero_point, "act_min": lo, "act_max": hi}
        return [a, b], y, attrs, [inputs, inputs_for(draw, rng, b, len(inputs))]
    if op == "requantize":
        b, c = multiplier(draw, rng, 64)
        attrs = {"multiplier": b, "shift": c, "input_zp": a.zero_point, "output_zp": y.zero_point, "act_min": lo,
                 "act_max": hi}
    else:  # clamp keeps the input's quantization
        y = TensorInfo("y", a.dtype, shape, a.scale, a.zero_point, a.bits)
        act_min, act_max = sorted(int(v) for v in rng.integers(*a.qrange(), size=2))
        attrs = {"act_min": act_min, "act_max": act_max}
    return [a], y, attrs, [inputs]


@pytest.mark.parametrize("op", ["add", "requantize", "clamp"])
@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(data=st.data())
def test_elementwise(op, mode, data):
    ins, y, attrs, inputs = data.draw(elementwise_case(op))
    check(single_op_model(op, ins, y, attrs, None, mode), inputs if len(inputs) > 1 else inputs[0], mode)


@st.composite
def pool_case(draw, op):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w, c = draw(st.integers(kh, 9)), draw(st.integers(kw, 9)), draw(st.integers(1, 5))
    stride = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    padding = [draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)), draw(st.integers(0, kh - 1)),
               draw(st.integers(0, kw - 1))]
    x = act_info(draw, "x", (h, w, c))
    oh = (h + padding[0] + padding[2] - kh) // stride[0] + 1
    ow = (w + padding[1] + padding[3] - kw) // stride[1] + 1
    y = TensorInfo("y", x.dtype, (oh, ow, c), x.scale, x.zero_point, x.bits)
    attrs = {"kernel": [kh, kw], "stride": stride, "padding": padding}
    if op == "avgpool":
        lo, hi = x.qrange()
        attrs.update(count_include_pad=draw(st.integers(0, 1)), pad_value=x.zero_point, act_min=lo,
                     act_max=draw(st.sampled_from([hi, hi - 10])))
    else:
        attrs["dilation"] = [1, 1]
    return x, y, attrs, inputs_for(draw, rng, x, draw(st.integers(1, 3)))


@pytest.mark.parametrize("op", ["avgpool", "maxpool"])
@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(data=st.data())
def test_pooling(op, mode, data):
    x, y, attrs, inputs = data.draw(pool_case(op))
    check(single_op_model(op, [x], y, attrs, None, mode), inputs, mode)


def test_avgpool_ties_round_away_from_zero():
    x = TensorInfo("x", "int8", (1, 2, 1), 1.0, 0, 8)
    y = TensorInfo("y", "int8", (1, 1, 1), 1.0, 0, 8)
    model = single_op_model("avgpool", [x], y, {"kernel": [1, 2], "stride": [1, 1], "padding": [0, 0, 0, 0],
                                                "count_include_pad": 0, "pad_value": 0, "act_min": -128,
                                                "act_max": 127})
    inputs = np.array([[[[1], [2]]], [[[-1], [-2]]], [[[-128], [-127]]], [[[127], [126]]]], np.int8)
    out = check(model, inputs, "half_up")
    assert out.ravel().tolist() == [2, -2, -128, 127]  # 1.5 -> 2, -1.5 -> -2, -127.5 -> -128, 126.5 -> 127


@pytest.mark.parametrize("op", ["concat", "transpose", "reshape"])
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_data_movement(op, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=3, max_size=3)))
    x = act_info(data.draw, "x", shape)
    inputs = [random_ints(rng, (2,) + shape, x)]
    infos = [x]
    if op == "concat":
        axis = data.draw(st.integers(0, 2))
        other = list(shape)
        other[axis] = data.draw(st.integers(1, 4))
        x2 = TensorInfo("x2", x.dtype, tuple(other), x.scale, x.zero_point, x.bits)
        infos.append(x2)
        inputs.append(random_ints(rng, (2,) + x2.shape, x2))
        out_shape = list(shape)
        out_shape[axis] += other[axis]
        attrs = {"axis": axis}
        expected = np.concatenate(inputs, axis=axis + 1)
    elif op == "transpose":
        perm = list(data.draw(st.permutations([0, 1, 2])))
        out_shape = [shape[p] for p in perm]
        attrs = {"perm": perm}
        expected = np.transpose(inputs[0], [0] + [p + 1 for p in perm])
    else:
        out_shape = [math.prod(shape)]
        attrs = {"shape": out_shape}
        expected = inputs[0].reshape(2, -1)
    y = TensorInfo("y", x.dtype, tuple(out_shape), x.scale, x.zero_point, x.bits)
    out = check(single_op_model(op, infos, y, attrs), inputs if len(inputs) > 1 else inputs[0], "half_up")
    np.testing.assert_array_equal(out, expected)


@st.composite
def matmul_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    m, k, n = draw(st.integers(1, 9)), draw(st.integers(1, 40)), draw(st.integers(1, 9))
    transpose_b = draw(st.integers(0, 1))
    a = act_info(draw, "a", lead + (m, k), bits=draw(st.sampled_from([8, 8, 4, 12])))
    b = act_info(draw, "b", lead + ((n, k) if transpose_b else (k, n)), bits=8)
    y = act_info(draw, "y", lead + (m, n), bits=draw(st.sampled_from([8, 16])))
    spans = [max(abs(q - t.zero_point) for q in t.qrange()) for t in (a, b)]
    mult, shift = multiplier(draw, rng, k * spans[0] * spans[1] / 8)
    lo, hi = y.qrange()
    attrs = {"input_zps": [a.zero_point, b.zero_point], "transpose_b": transpose_b, "multiplier": mult,
             "shift": shift, "output_zp": y.zero_point, "act_min": lo, "act_max": hi}
    batch = draw(st.integers(1, 3))
    return [a, b], y, attrs, [inputs_for(draw, rng, a, batch), inputs_for(draw, rng, b, batch)]


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(case=matmul_case())
def test_matmul(mode, case):
    ins, y, attrs, inputs = case
    model = single_op_model("matmul", ins, y, attrs, None, mode)
    out = check(model, inputs, mode)
    a, b = (x.astype(np.int64) - t.zero_point for x, t in zip(inputs, ins))
    acc = a @ (np.swapaxes(b, -1, -2) if attrs["transpose_b"] else b)
    rounded = np.vectorize(lambda v: reference(mode, int(v), attrs["multiplier"], attrs["shift"]), otypes=[object])
    expected = np.clip(rounded(acc) + attrs["output_zp"], attrs["act_min"], attrs["act_max"]).astype(out.dtype)
    np.testing.assert_array_equal(out, expected)
