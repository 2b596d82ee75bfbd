"""Every imported TFLite builtin on random single-op graphs: ``import_tflite`` of a flatbuffer built with
tflite-micro's model editor, then hwsim == the TFLM interpreter on every tensor, and the generated C == hwsim.

The graphs of the five ops the hand-built TFLM oracle test covers come from its generators (other seeds); SOFTMAX
and MAX_POOL_2D have their own here. A failure names the op, the seed and the graph's parameters."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import tflm_builders as tflm
from test_tflm_oracle import MAKERS, loguniform, out_size, random_inputs, window_geometry
from intonly.api import build_and_run
from intonly.hwsim import simulate
from intonly.imported import compare_with_tflm
from intonly.quantize.errors import UnsupportedOpError
from intonly.quantize.tflite import import_tflite

OP = tflm.OP
GRAPHS = 20
FIRST_SEED = 1000   # the oracle test uses seeds 0..49


def softmax_graph(rng, seed: int):
    """SOFTMAX over rows of 1..40 (up to 3 rows deep), input scales 0.005..2 (beta 1 or random): differences from
    "everything saturates" to "every code counts"."""
    shape = tuple(int(v) for v in rng.integers(1, 4, int(rng.integers(0, 3)))) + (int(rng.integers(1, 41)),)
    in_q = (loguniform(rng, 0.005, 2.0), int(rng.integers(-128, 128)))
    beta = 1.0 if seed % 2 else float(np.float32(rng.uniform(0.2, 3.0)))
    params = dict(seed=seed, shape=shape, in_q=in_q, beta=beta)
    return params, tflm.softmax(shape, in_q, beta), [random_inputs(rng, shape)]


def max_pool_graph(rng, seed: int):
    padding = "SAME" if seed % 2 == 0 else "VALID"
    h, w, kh, kw, stride, _ = window_geometry(rng, 12, False, padding)
    c = int(rng.integers(1, 9))
    q = (loguniform(rng, 0.005, 0.1), int(rng.integers(-128, 128)))
    activation = str(rng.choice(["NONE", "RELU", "RELU6"]))
    oh, ow = out_size(h, kh, stride[0], 1, padding), out_size(w, kw, stride[1], 1, padding)
    params = dict(seed=seed, input=(h, w, c), kernel=(kh, kw), stride=stride, padding=padding, activation=activation,
                  q=q)
    return params, tflm.pool2d(OP.MAX_POOL_2D, (h, w, c), q, (oh, ow, c), (kh, kw), stride, padding, activation), \
        [random_inputs(rng, (h, w, c))]


def elementwise_graph(opcode: int, out_q=None, options_type: int = 0, make_options=None, out_ratio=None):
    """A random shape, input quantization (scales 0.002..1, so the interesting region of each function is hit
    at some seeds and saturated at others) and output quantization (``out_q`` when the builtin fixes it; an output
    scale of ``s_in`` times a ratio in ``out_ratio`` when the builtin bounds it)."""
    def make(rng, seed: int):
        shape = tuple(int(v) for v in rng.integers(1, 9, int(rng.integers(1, 4))))
        in_q = (loguniform(rng, 0.002, 1.0), int(rng.integers(-128, 128)))
        q = out_q or (loguniform(rng, 0.002, 1.0) if out_ratio is None else
                      float(np.float32(in_q[0] * loguniform(rng, *out_ratio))), int(rng.integers(-128, 128)))
        options = make_options(rng) if make_options else None
        params = dict(seed=seed, shape=shape, in_q=in_q, out_q=q, options=getattr(options, "__dict__", None))
        # every code once, then random samples
        codes = np.resize(np.arange(-128, 128, dtype=np.int8), (1, *shape))
        inputs = np.concatenate([codes, random_inputs(rng, shape)])
        return params, tflm.elementwise(opcode, shape, in_q, q, options_type, options), [inputs]
    return make


def leaky_relu_options(rng):
    return tflm.tfl.LeakyReluOptionsT(alpha=float(np.float32(rng.choice([0.1, 0.2, 0.01, -0.3, 1.5]))))


def const_ints(name: str, values) -> "tflm.me.Tensor":
    data = np.asarray(values, dtype=np.int32)
    return tflm.me.Tensor(shape=data.shape, dtype=tflm.tfl.TensorType.INT32, name=name, data=data)


def random_q(rng):
    return loguniform(rng, 0.005, 0.2), int(rng.integers(-128, 128))


def image_shape(rng, lo=1, hi=7):
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


def mul_graph(rng, seed: int):
    """MUL of equal shapes, or with a (1, 1, C) gate broadcast over an (H, W, C) image (either operand order)."""
    shape = image_shape(rng)
    other = shape if seed % 3 == 0 else (1, 1, shape[-1])
    a_q, b_q = random_q(rng), random_q(rng)
    out_q = (float(np.float32(a_q[0] * b_q[0] * rng.uniform(100, 1000))), int(rng.integers(-64, 65)))
    activation = str(rng.choice(["NONE", "RELU", "RELU6"]))
    a, b = tflm.act_tensor("a", (1, *shape), *a_q), tflm.act_tensor("b", (1, *other), *b_q)
    y = tflm.act_tensor("y", (1, *shape), *out_q)
    first, second = (a, b) if seed % 2 else (b, a)
    opts = tflm.tfl.MulOptionsT(fusedActivationFunction=tflm.ACTIVATION[activation])
    data = tflm.single_op_model(OP.MUL, tflm.tfl.BuiltinOptions.MulOptions, opts, [first, second], y, [first, second])
    xs = {"a": random_inputs(rng, shape), "b": random_inputs(rng, other)}
    inputs = [xs[first.name], xs[second.name]]
    return dict(seed=seed, shape=shape, other=other, a_q=a_q, b_q=b_q, out_q=out_q, activation=activation), data, inputs


def sub_graph(rng, seed: int):
    shape = image_shape(rng)
    a_q, b_q = random_q(rng), random_q(rng)
    out_q = (float(np.float32(max(a_q[0], b_q[0]) * rng.uniform(0.5, 3.0))), int(rng.integers(-64, 65)))
    a, b, y = (tflm.act_tensor(n, (1, *shape), *q) for n, q in (("a", a_q), ("b", b_q), ("y", out_q)))
    activation = str(rng.choice(["NONE", "RELU"]))
    opts = tflm.tfl.SubOptionsT(fusedActivationFunction=tflm.ACTIVATION[activation])
    data = tflm.single_op_model(OP.SUB, tflm.tfl.BuiltinOptions.SubOptions, opts, [a, b], y, [a, b])
    return dict(seed=seed, shape=shape, a_q=a_q, b_q=b_q, out_q=out_q, activation=activation), data, \
        [random_inputs(rng, shape), random_inputs(rng, shape)]


def concatenation_graph(rng, seed: int):
    axis = int(rng.integers(1, 4))
    q = random_q(rng)
    shapes = []
    for _ in range(int(rng.integers(2, 4))):
        shape = list(image_shape(rng)) if not shapes else list(shapes[0])
        shape[axis - 1] = int(rng.integers(1, 5))
        shapes.append(tuple(shape))
    out_shape = list(shapes[0])
    out_shape[axis - 1] = sum(sh[axis - 1] for sh in shapes)
    xs = [tflm.act_tensor(f"x{i}", (1, *sh), *q) for i, sh in enumerate(shapes)]
    y = tflm.act_tensor("y", (1, *out_shape), *q)
    opts = tflm.tfl.ConcatenationOptionsT(axis=axis if seed % 2 else axis - 4)
    data = tflm.single_op_model(OP.CONCATENATION, tflm.tfl.BuiltinOptions.ConcatenationOptions, opts, xs, y, xs)
    return dict(seed=seed, shapes=shapes, axis=axis), data, [random_inputs(rng, sh) for sh in shapes]


def transpose_graph(rng, seed: int):
    shape = image_shape(rng)
    perm = [0] + [int(p) + 1 for p in rng.permutation(3)]
    q = random_q(rng)
    x = tflm.act_tensor("x", (1, *shape), *q)
    y = tflm.act_tensor("y", (1, *(shape[p - 1] for p in perm[1:])), *q)
    data = tflm.single_op_model(OP.TRANSPOSE, 0, None, [x, const_ints("perm", perm)], y, [x])
    return dict(seed=seed, shape=shape, perm=perm), data, [random_inputs(rng, shape)]


def pad_graph(rng, seed: int):
    """PAD (output zero point) and PADV2 (a constant) on images."""
    shape = image_shape(rng)
    widths = [[0, 0]] + [[int(v) for v in rng.integers(0, 3, 2)] for _ in range(3)]
    q = random_q(rng)
    x = tflm.act_tensor("x", (1, *shape), *q)
    y = tflm.act_tensor("y", (1, *(d + a + b for d, (a, b) in zip(shape, widths[1:]))), *q)
    ins = [x, const_ints("paddings", widths)]
    if seed % 2:
        value = int(rng.integers(-128, 128))
        ins.append(tflm.me.Tensor(shape=(1,), dtype=tflm.tfl.TensorType.INT8, name="value",
                                  data=np.array([value], np.int8),
                                  quantization=tflm.me.Quantization(scales=q[0], zero_points=q[1])))
    data = tflm.single_op_model(OP.PADV2 if seed % 2 else OP.PAD, 0, None, ins, y, [x])
    return dict(seed=seed, shape=shape, widths=widths), data, [random_inputs(rng, shape)]


def mean_graph(rng, seed: int):
    """MEAN over (H, W), H, W or (H, W, C) of an image, with and without keep_dims, input/output scales apart."""
    shape = image_shape(rng, 1, 9)
    axes = [[1, 2], [2, 1], [1], [2], [1, 2, 3], [-3, -2]][seed % 6]
    keep = bool(rng.integers(0, 2))
    in_q, out_q = random_q(rng), random_q(rng)
    reduced = {a % 4 for a in axes}
    kept = [1 if i + 1 in reduced else d for i, d in enumerate(shape)]
    out_shape = kept if keep else [d for i, d in enumerate(shape) if i + 1 not in reduced]
    x = tflm.act_tensor("x", (1, *shape), *in_q)
    y = tflm.act_tensor("y", (1, *out_shape), *out_q)
    opts = tflm.tfl.ReducerOptionsT(keepDims=keep)
    data = tflm.single_op_model(OP.MEAN, tflm.tfl.BuiltinOptions.ReducerOptions, opts, [x, const_ints("axes", axes)],
                                y, [x])
    return dict(seed=seed, shape=shape, axes=axes, keep=keep, in_q=in_q, out_q=out_q), data, \
        [random_inputs(rng, shape)]


def resize_graph(opcode: int):
    def make(rng, seed: int):
        h, w, c = image_shape(rng, 1, 6)
        k = [int(v) for v in rng.integers(1, 4, 2)]
        size = [h * k[0], w * k[1]] if opcode == OP.RESIZE_NEAREST_NEIGHBOR or seed % 2 else \
            [int(v) for v in rng.integers(1, 13, 2)]
        align, half = [(False, False), (False, True), (True, False)][seed % 3]
        q = random_q(rng)
        x = tflm.act_tensor("x", (1, h, w, c), *q)
        y = tflm.act_tensor("y", (1, *size, c), *q)
        if opcode == OP.RESIZE_BILINEAR:
            opts, kind = tflm.tfl.ResizeBilinearOptionsT(alignCorners=align, halfPixelCenters=half), \
                tflm.tfl.BuiltinOptions.ResizeBilinearOptions
        else:
            opts, kind = tflm.tfl.ResizeNearestNeighborOptionsT(alignCorners=False, halfPixelCenters=half), \
                tflm.tfl.BuiltinOptions.ResizeNearestNeighborOptions
        data = tflm.single_op_model(opcode, kind, opts, [x, const_ints("size", size)], y, [x])
        return dict(seed=seed, input=(h, w, c), size=size, align=align, half=half), data, \
            [random_inputs(rng, (h, w, c))]
    return make


def strided_slice_graph(rng, seed: int):
    shape = image_shape(rng, 2, 8)
    begin = [0] + [int(rng.integers(0, d)) for d in shape]
    end = [1] + [int(rng.integers(b + 1, d + 1)) for b, d in zip(begin[1:], shape)]
    shrink = 1 << 3 if seed % 3 == 0 else 0
    if shrink:
        end[3] = begin[3] + 1
    out = [e - b for b, e in zip(begin[1:], end[1:])]
    if shrink:
        out = out[:2]
    q = random_q(rng)
    x = tflm.act_tensor("x", (1, *shape), *q)
    y = tflm.act_tensor("y", (1, *out), *q)
    opts = tflm.tfl.StridedSliceOptionsT(beginMask=0, endMask=0, shrinkAxisMask=shrink)
    data = tflm.single_op_model(OP.STRIDED_SLICE, tflm.tfl.BuiltinOptions.StridedSliceOptions, opts,
                                [x, const_ints("begin", begin), const_ints("end", end),
                                 const_ints("strides", [1, 1, 1, 1])], y, [x])
    return dict(seed=seed, shape=shape, begin=begin, end=end, shrink=shrink), data, [random_inputs(rng, shape)]


def reshape_graph(rng, seed: int):
    """RESHAPE of an image to another shape of the same size (rank 1 to 3, the new shape as a constant input)."""
    shape = image_shape(rng)
    size = math.prod(shape)
    factors = [d for d in range(1, size + 1) if size % d == 0]
    first = int(rng.choice(factors))
    new_shape = [[size], [first, size // first], [first, 1, size // first]][seed % 3]
    q = random_q(rng)
    x = tflm.act_tensor("x", (1, *shape), *q)
    y = tflm.act_tensor("y", (1, *new_shape), *q)
    data = tflm.single_op_model(OP.RESHAPE, 0, None, [x, const_ints("shape", [1, *new_shape])], y, [x])
    return dict(seed=seed, shape=shape, new_shape=new_shape), data, [random_inputs(rng, shape)]


INT16 = tflm.tfl.TensorType.INT16


def random_int16(rng, shape) -> np.ndarray:
    """SAMPLES uniform int16 samples and one of only the extremes."""
    xs = rng.integers(-32768, 32768, (4, *shape))
    return np.concatenate([xs, rng.choice(np.array([-32768, 32767]), (1, *shape))]).astype(np.int16)


def weighted_16x8_graph(kind: str):
    """CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED in TFLite's 16x8 mode: int16 activations (zero point 0),
    int8 per-channel weights, an int64 bias (an int32 one at every third seed for CONV_2D and FULLY_CONNECTED, which
    TFLM then accumulates in int32); output scales that use the int16 range, sometimes saturating."""
    def make(rng, seed: int):
        s_in = loguniform(rng, 1e-4, 1e-2)
        padding = str(rng.choice(["SAME", "VALID"]))
        if kind == "fully_connected":
            k, oc = int(rng.integers(1, 200)), int(rng.integers(1, 17))
            in_shape, fan_in = (k,), k
        else:
            h, w, kh, kw, stride, dilation = window_geometry(rng, 10, True, padding)
            ic = int(rng.integers(1, 9))
            oc = ic * int(rng.integers(1, 3)) if kind == "depthwise" else int(rng.integers(1, 9))
            in_shape, fan_in = (h, w, ic), kh * kw * (1 if kind == "depthwise" else ic)
        w_scales = [loguniform(rng, 0.002, 0.02) for _ in range(oc)]
        s_out = float(np.float32(s_in * np.mean(w_scales) * 18918 * 74 * np.sqrt(fan_in) * 3 / 32767 *
                                 rng.uniform(0.3, 2)))
        wide = kind == "depthwise" or seed % 3 != 0
        bias = rng.integers(-2**20, 2**20, oc).astype(np.int64 if wide else np.int32)
        x = tflm.act_tensor("x", (1, *in_shape), s_in, 0, INT16)
        activation = str(rng.choice(["NONE", "RELU"]))
        act = tflm.ACTIVATION[activation]
        if kind == "fully_connected":
            weight = rng.integers(-127, 128, (oc, k)).astype(np.int8)
            y = tflm.act_tensor("y", (1, oc), s_out, 0, INT16)
            ins = [x, tflm.weight_tensor("w", weight, w_scales, 0), tflm.bias_tensor("b", bias, s_in, w_scales)]
            opts, okind, code = tflm.tfl.FullyConnectedOptionsT(fusedActivationFunction=act), \
                tflm.tfl.BuiltinOptions.FullyConnectedOptions, OP.FULLY_CONNECTED
        else:
            oh, ow = out_size(h, kh, stride[0], dilation[0], padding), out_size(w, kw, stride[1], dilation[1], padding)
            y = tflm.act_tensor("y", (1, oh, ow, oc), s_out, 0, INT16)
            common = dict(padding=tflm.PADDING[padding], strideH=stride[0], strideW=stride[1],
                          dilationHFactor=dilation[0], dilationWFactor=dilation[1], fusedActivationFunction=act)
            if kind == "depthwise":
                weight = rng.integers(-127, 128, (1, kh, kw, oc)).astype(np.int8)
                wt = tflm.weight_tensor("w", weight, w_scales, 3)
                opts, okind, code = tflm.tfl.DepthwiseConv2DOptionsT(depthMultiplier=oc // ic, **common), \
                    tflm.tfl.BuiltinOptions.DepthwiseConv2DOptions, OP.DEPTHWISE_CONV_2D
            else:
                weight = rng.integers(-127, 128, (oc, kh, kw, ic)).astype(np.int8)
                wt = tflm.weight_tensor("w", weight, w_scales, 0)
                opts, okind, code = tflm.tfl.Conv2DOptionsT(**common), tflm.tfl.BuiltinOptions.Conv2DOptions, \
                    OP.CONV_2D
            ins = [x, wt, tflm.bias_tensor("b", bias, s_in, w_scales)]
        params = dict(seed=seed, kind=kind, input=in_shape, oc=oc, bias=str(bias.dtype), activation=activation,
                      s_in=s_in, s_out=s_out)
        return params, tflm.single_op_model(code, okind, opts, ins, y, [x]), [random_int16(rng, in_shape)]
    return make


def add_16_graph(rng, seed: int):
    """ADD of int16 tensors (general scales: left shift 15)."""
    shape = image_shape(rng)
    a_q, b_q = (loguniform(rng, 1e-4, 1e-2), 0), (loguniform(rng, 1e-4, 1e-2), 0)
    out_q = (float(np.float32(max(a_q[0], b_q[0]) * rng.uniform(0.7, 3))), 0)
    a, b, y = (tflm.act_tensor(n, (1, *shape), *q, INT16) for n, q in (("a", a_q), ("b", b_q), ("y", out_q)))
    opts = tflm.tfl.AddOptionsT(fusedActivationFunction=tflm.ACTIVATION["NONE"], potScaleInt16=False)
    data = tflm.single_op_model(OP.ADD, tflm.tfl.BuiltinOptions.AddOptions, opts, [a, b], y, [a, b])
    return dict(seed=seed, shape=shape, a_q=a_q, b_q=b_q, out_q=out_q), data, \
        [random_int16(rng, shape), random_int16(rng, shape)]


def pool_16_graph(opcode: int):
    def make(rng, seed: int):
        padding = "SAME" if seed % 2 == 0 else "VALID"
        h, w, kh, kw, stride, _ = window_geometry(rng, 12, False, padding)
        c = int(rng.integers(1, 9))
        q = (loguniform(rng, 1e-4, 1e-2), 0)
        oh, ow = out_size(h, kh, stride[0], 1, padding), out_size(w, kw, stride[1], 1, padding)
        data = tflm.pool2d(opcode, (h, w, c), q, (oh, ow, c), (kh, kw), stride, padding, "RELU", INT16)
        return dict(seed=seed, input=(h, w, c), kernel=(kh, kw), stride=stride, padding=padding), data, \
            [random_int16(rng, (h, w, c))]
    return make


def sigmoid_16_graph(opcode: int):
    """int16 LOGISTIC / TANH: zero points 0, output scale 2^-15 (TFLite's requirement); input scales that are powers
    of two (TFLM's shortcut, 2^-13..2^-10) at every third seed, else anything in 2^-17..2^-7, so the interpolated
    region and the saturated ends are both hit. The first sample holds consecutive codes around 0."""
    def make(rng, seed: int):
        shape = tuple(int(v) for v in rng.integers(1, 9, int(rng.integers(1, 4))))
        s_in = 2.0 ** int(rng.integers(-13, -9)) if seed % 3 == 0 else loguniform(rng, 2 ** -17, 2 ** -7)
        x = tflm.act_tensor("x", (1, *shape), s_in, 0, INT16)
        y = tflm.act_tensor("y", (1, *shape), 2 ** -15, 0, INT16)
        near_zero = (np.arange(math.prod(shape)) + int(rng.integers(-2000, 2000))).reshape(1, *shape)
        inputs = np.concatenate([near_zero, random_int16(rng, shape)]).astype(np.int16)
        return dict(seed=seed, shape=shape, s_in=s_in), tflm.single_op_model(opcode, 0, None, [x], y, [x]), [inputs]
    return make


def softmax_16_graph(rng, seed: int):
    """int16 SOFTMAX (TFLite's two 513-entry tables): rows of 1..40, input scales 2^-12..2^-4 with zero point 0,
    beta 1 or random, output (1/32768, 0); samples over the whole int16 range and within a few hundred codes."""
    shape = tuple(int(v) for v in rng.integers(1, 4, int(rng.integers(0, 3)))) + (int(rng.integers(1, 41)),)
    s_in = loguniform(rng, 2 ** -12, 2 ** -4)
    beta = 1.0 if seed % 2 else float(np.float32(rng.uniform(0.2, 3.0)))
    x = tflm.act_tensor("x", (1, *shape), s_in, 0, INT16)
    y = tflm.act_tensor("y", (1, *shape), 1 / 32768, 0, INT16)
    data = tflm.single_op_model(OP.SOFTMAX, tflm.tfl.BuiltinOptions.SoftmaxOptions, tflm.tfl.SoftmaxOptionsT(beta=beta),
                                [x], y, [x])
    narrow = rng.integers(-400, 400, (4, *shape)) + rng.integers(-30000, 30000, (4, *shape[:-1], 1))
    return dict(seed=seed, shape=shape, s_in=s_in, beta=beta), data, \
        [np.concatenate([random_int16(rng, shape), narrow]).astype(np.int16)]


def int16_variant(op: str):
    """``op``'s random graph in TFLite's 16x8 mode (tflm_builders.to_16x8), inputs widened to int16."""
    def make(rng, seed: int):
        params, data, inputs = GRAPH_MAKERS[op](rng, seed)
        return {**params, "int16": True}, tflm.to_16x8(data), [tflm.widen_samples(x, rng) for x in inputs]
    return make


INT16_VARIANTS = ["mul", "sub", "relu", "relu6", "leaky_relu", "quantize", "mean", "resize_nearest_neighbor",
                  "concatenation", "transpose", "pad", "strided_slice", "reshape"]


def oracle_graph(op: str):
    def make(rng, seed: int):
        case = MAKERS[op](rng, seed)
        return case.params, case.tflite, case.inputs
    return make


GRAPH_MAKERS = {**{op: oracle_graph(op) for op in MAKERS}, "softmax": softmax_graph, "max_pool2d": max_pool_graph,
                "logistic": elementwise_graph(OP.LOGISTIC, (1 / 256, -128)),
                "tanh": elementwise_graph(OP.TANH, (1 / 128, 0)),
                "relu": elementwise_graph(OP.RELU), "relu6": elementwise_graph(OP.RELU6),
                "leaky_relu": elementwise_graph(OP.LEAKY_RELU, None, tflm.tfl.BuiltinOptions.LeakyReluOptions,
                                                leaky_relu_options),
                "hard_swish": elementwise_graph(OP.HARD_SWISH, out_ratio=(0.05, 4.0)),
                "quantize": elementwise_graph(OP.QUANTIZE),
                "mul": mul_graph, "sub": sub_graph, "concatenation": concatenation_graph, "transpose": transpose_graph,
                "pad": pad_graph, "mean": mean_graph, "resize_bilinear": resize_graph(OP.RESIZE_BILINEAR),
                "resize_nearest_neighbor": resize_graph(OP.RESIZE_NEAREST_NEIGHBOR),
                "strided_slice": strided_slice_graph,
                "conv2d_16x8": weighted_16x8_graph("conv2d"), "depthwise_conv2d_16x8": weighted_16x8_graph("depthwise"),
                "fully_connected_16x8": weighted_16x8_graph("fully_connected"), "add_16x8": add_16_graph,
                "average_pool2d_16x8": pool_16_graph(OP.AVERAGE_POOL_2D),
                "max_pool2d_16x8": pool_16_graph(OP.MAX_POOL_2D), "logistic_16x8": sigmoid_16_graph(OP.LOGISTIC),
                "tanh_16x8": sigmoid_16_graph(OP.TANH), "softmax_16x8": softmax_16_graph,
                "reshape": reshape_graph}
GRAPH_MAKERS.update({f"{op}_16x8": int16_variant(op) for op in INT16_VARIANTS})


def litert_reference(data: bytes, inputs: list[np.ndarray]) -> np.ndarray:
    """The model's output under LiteRT's reference kernels (``ai-edge-litert``, BUILTIN_REF), sample by sample:
    the oracle for builtins TFLM has no kernel for."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         num_threads=1)
    interp.allocate_tensors()
    ins, out = interp.get_input_details(), interp.get_output_details()[0]["index"]
    outs = []
    for i in range(len(inputs[0])):
        for d, x in zip(ins, inputs):
            interp.set_tensor(d["index"], x[i:i + 1])
        interp.invoke()
        outs.append(interp.get_tensor(out)[0])
    return np.stack(outs)


def test_int16_resize_bilinear_equals_litert_reference_kernels(tmp_path):
    """TFLM has no int16 RESIZE_BILINEAR: 20 random 16x8 graphs against LiteRT's reference kernel instead."""
    failures = []
    for seed in range(FIRST_SEED, FIRST_SEED + GRAPHS):
        rng = np.random.default_rng([99, seed])
        params, data, inputs = GRAPH_MAKERS["resize_bilinear"](rng, seed)
        data, inputs = tflm.to_16x8(data), [tflm.widen_samples(x, rng) for x in inputs]
        path = tmp_path / f"resize{seed}.tflite"
        path.write_bytes(data)
        model = import_tflite(path).model
        ours = simulate(model, inputs, quantized=True).int_outputs[0]
        theirs = litert_reference(data, inputs).reshape(ours.shape)
        if not np.array_equal(ours, theirs):
            failures.append(f"{params}: {int(np.count_nonzero(ours != theirs))} elements differ")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("opcode, in_q, out_q, message", [
    (OP.HARD_SWISH, (0.05, 0), (0.05, 0), "no TensorFlow Lite runtime defines an int16 HARD_SWISH"),
    (OP.LOGISTIC, (2 ** -10, 3), (2 ** -15, 0), "zero points 3 (input) and 0 (output); TFLite's int16 LOGISTIC and "
     "TANH take zero point 0"),
    (OP.TANH, (2 ** -10, 0), (2 ** -14, 0), "output scale 6.103515625e-05; TFLite's int16 LOGISTIC and TANH write "
     "scale 2^-15"),
    (OP.SOFTMAX, (2 ** -10, 0), (2 ** -16, 0), "TFLite's int16 softmax takes zero points 0 and writes scale 1/32768"),
])
def test_int16_quantization_tflite_refuses_is_refused_by_name(opcode, in_q, out_q, message, tmp_path):
    x = tflm.act_tensor("x", (1, 4), *in_q, INT16)
    y = tflm.act_tensor("y", (1, 4), *out_q, INT16)
    options = (tflm.tfl.BuiltinOptions.SoftmaxOptions, tflm.tfl.SoftmaxOptionsT(beta=1.0)) if opcode == OP.SOFTMAX \
        else (0, None)
    path = tmp_path / "refused.tflite"
    path.write_bytes(tflm.single_op_model(opcode, *options, [x], y, [x]))
    with pytest.raises(UnsupportedOpError) as e:
        import_tflite(path)
    assert len(e.value.ops) == 1 and message in e.value.ops[0][1]


@pytest.mark.parametrize("op", GRAPH_MAKERS)
def test_imported_op_equals_tflm_on_every_tensor_and_c_equals_hwsim(op, tmp_path, gcc):
    op_id = list(GRAPH_MAKERS).index(op)
    graphs = []
    for seed in range(FIRST_SEED, FIRST_SEED + GRAPHS):
        params, data, inputs = GRAPH_MAKERS[op](np.random.default_rng([op_id, seed]), seed)
        path = tmp_path / f"{op}{seed}.tflite"
        path.write_bytes(data)
        imported = import_tflite(path)
        sim = simulate(imported.model, inputs, quantized=True, keep_values=True)
        oracle = compare_with_tflm(path, imported, inputs, sim.values)
        graphs.append((params, imported.model, inputs, sim, oracle))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        c_outs = list(pool.map(lambda k: build_and_run(graphs[k][1], tmp_path / f"c{k}", graphs[k][2])[1][0],
                               range(len(graphs))))
    failures = [f"{params}: TFLM differs in {oracle.mismatched}" for params, *_, oracle in graphs
                if not oracle.bit_exact]
    failures += [f"{g[0]}: C differs in {int(np.count_nonzero(c != g[3].int_outputs[0]))} elements"
                 for g, c in zip(graphs, c_outs) if not np.array_equal(c, g[3].int_outputs[0])]
    assert not failures, f"{len(failures)} of {GRAPHS} {op} graphs:\n" + "\n".join(failures)
    assert all(o.tensors == len(g[2]) + 1 for *g, o in graphs)   # inputs and the output compared

