"""One converter per TensorFlow Lite builtin: the IR nodes that reproduce TFLM's reference kernel exactly.

A converter reads the operator's tensors through the :class:`~.convert.Builder` (which checks that activations
are quantized per tensor and batch-1) and raises :class:`~.convert.Refusal` for anything it cannot reproduce
bit for bit. Adding a builtin is adding a function and its row in :data:`CONVERTERS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..dyadic import add_multipliers, quantize_multipliers
from .convert import Builder, Refusal, activation_range, effective_scales, window_padding
from .elementwise import hard_swish_int8, leaky_relu_int8, logistic_int8, relu6_int8, relu_int8, table, tanh_int8
from .fixedpoint import (exp_on_negative_values, multiply_by_quantized_multiplier, quantize_multiplier,
                         softmax_input_scaling, srdhm)
from .reader import Operator, _enum_names, _schema

_tfl = _schema()
PADDINGS = _enum_names(_tfl.Padding)
ACTIVATIONS = _enum_names(_tfl.ActivationFunctionType)
ADD_LEFT_SHIFT_INT8 = 20   # TFLM add_common.cc: inputs scaled up by 2^20 before the common rescale


def _int8_only(*tensors):
    for t in tensors:
        if t.bits != 8:
            raise Refusal(f"tensor {t.source!r} is int{t.bits}; only int8 activations are imported so far")


def _weights(b: Builder, index: int, axis: int, channels: int):
    """The int8 filter (symmetric: zero points 0) and one scale per output channel (a per-tensor scale repeated)."""
    w = b.constant(index, "the filter")
    if w.type != "INT8":
        raise Refusal(f"filter {w.label} is {w.type}; intonly imports int8 weights")
    if w.scales is None:
        raise Refusal(f"filter {w.label} has no quantization parameters")
    if np.any(w.zero_points != 0):
        raise Refusal(f"filter {w.label} has nonzero zero points {sorted(set(w.zero_points.tolist()))[:4]}")
    if w.per_channel and w.axis != axis:
        raise Refusal(f"filter {w.label} is quantized per channel along axis {w.axis}, expected axis {axis}")
    scales = w.scales if w.per_channel else np.repeat(w.scales, channels)
    if len(scales) != channels:
        raise Refusal(f"filter {w.label} has {len(scales)} scales for {channels} output channels")
    return w, scales


def _bias(b: Builder, op: Operator, channels: int) -> np.ndarray:
    index = op.inputs[2] if len(op.inputs) > 2 else -1
    if index < 0:
        return np.zeros(channels, dtype=np.int32)
    t = b.constant(index, "the bias")
    if t.type != "INT32" or t.data.shape != (channels,):
        raise Refusal(f"bias {t.label} is {t.type} {list(t.data.shape)}; expected INT32 [{channels}]")
    return t.data.astype(np.int32)


def _weighted(b: Builder, op: Operator, ir_op: str, x, y, weight: np.ndarray, w_scales, bias, extra: dict):
    """Append a conv2d / dense node with TFLM's per-channel multipliers and the fused activation's clamp."""
    where = f"operator {op.index} {op.name}"
    mult, shift = quantize_multipliers(effective_scales(x.scale, w_scales, y.scale), where)
    act_min, act_max = activation_range(ACTIVATIONS[op.options.fusedActivationFunction], y)
    params = {"weight": b.add_constant(y.name + ":weight", np.ascontiguousarray(weight, dtype=np.int8)),
              "bias": b.add_constant(y.name + ":bias", bias),
              "multiplier": b.add_constant(y.name + ":multiplier", mult),
              "shift": b.add_constant(y.name + ":shift", shift)}
    attrs = {**extra, "input_zp": x.zero_point, "output_zp": y.zero_point, "act_min": act_min, "act_max": act_max}
    b.append(ir_op, [x.name], y, attrs, params)


def conv_2d(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _int8_only(x, y)
    o = op.options
    oc = b.constant(op.inputs[1], "the filter").shape[0]
    w, scales = _weights(b, op.inputs[1], 0, oc)
    _, kh, kw, icg = w.shape
    ic = x.shape[-1]
    if len(x.shape) != 3 or icg < 1 or ic % icg:
        raise Refusal(f"filter {list(w.shape)} does not fit the input {list(x.shape)}")
    stride, dilation = [o.strideH, o.strideW], [o.dilationHFactor, o.dilationWFactor]
    padding = window_padding(PADDINGS[o.padding], x.shape[:2], (kh, kw), stride, dilation)
    _weighted(b, op, "conv2d", x, y, w.data, scales, _bias(b, op, oc),
              {"stride": stride, "padding": padding, "dilation": dilation, "groups": ic // icg})


def depthwise_conv_2d(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _int8_only(x, y)
    o = op.options
    oc = b.constant(op.inputs[1], "the filter").shape[-1]
    w, scales = _weights(b, op.inputs[1], 3, oc)
    _, kh, kw, _ = w.shape
    ic = x.shape[-1]
    if len(x.shape) != 3 or w.shape[0] != 1 or oc != ic * o.depthMultiplier:
        raise Refusal(f"filter {list(w.shape)} with depth multiplier {o.depthMultiplier} does not fit the input "
                      f"{list(x.shape)}")
    stride, dilation = [o.strideH, o.strideW], [o.dilationHFactor, o.dilationWFactor]
    padding = window_padding(PADDINGS[o.padding], x.shape[:2], (kh, kw), stride, dilation)
    # [1, KH, KW, IC*dm] -> OHWI [IC*dm, KH, KW, 1]: output channel i*dm + m reads input channel i, as in TFLite
    _weighted(b, op, "conv2d", x, y, w.data.transpose(3, 1, 2, 0), scales, _bias(b, op, oc),
              {"stride": stride, "padding": padding, "dilation": dilation, "groups": ic})


def fully_connected(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _int8_only(x, y)
    n, k = b.constant(op.inputs[1], "the weights").shape
    w, scales = _weights(b, op.inputs[1], 0, n)
    if math.prod(x.shape) != k or y.shape != (n,):
        raise Refusal(f"weights [{n}, {k}] do not fit input {list(x.shape)} -> output {list(y.shape)} "
                      "(intonly imports FULLY_CONNECTED on one row)")
    if x.shape != (k,):
        flat = b.intermediate(x, (k,), ":flat")
        b.append("reshape", [x.name], flat, {"shape": [k]}, step="flatten")
        x = flat
    _weighted(b, op, "dense", x, y, w.data, scales, _bias(b, op, n), {})


def add(b: Builder, op: Operator) -> None:
    xa, xb, y = b.activation(op.inputs[0]), b.activation(op.inputs[1]), b.activation(op.outputs[0])
    _int8_only(xa, xb, y)
    if not xa.shape == xb.shape == y.shape:
        raise Refusal(f"operands {list(xa.shape)} and {list(xb.shape)} broadcast; intonly imports ADD of equal shapes")
    multipliers, shifts = add_multipliers(xa.scale, xb.scale, y.scale, ADD_LEFT_SHIFT_INT8,
                                          f"operator {op.index} {op.name}")
    act_min, act_max = activation_range(ACTIVATIONS[op.options.fusedActivationFunction], y)
    b.append("add", [xa.name, xb.name], y, {
        "input_zps": [xa.zero_point, xb.zero_point], "left_shift": ADD_LEFT_SHIFT_INT8,
        "multipliers": [int(m) for m in multipliers], "shifts": [int(s) for s in shifts],
        "output_zp": y.zero_point, "act_min": act_min, "act_max": act_max})


def _pool_window(x, o) -> dict:
    kernel, stride = [o.filterHeight, o.filterWidth], [o.strideH, o.strideW]
    return {"kernel": kernel, "stride": stride,
            "padding": window_padding(PADDINGS[o.padding], x.shape[:2], kernel, stride, (1, 1))}


def _same_quantization(x, y):
    if (x.scale, x.zero_point) != (y.scale, y.zero_point):
        raise Refusal(f"input ({x.scale}, {x.zero_point}) and output ({y.scale}, {y.zero_point}) are quantized "
                      "differently; TFLite's int8 pooling keeps the input's codes")


def average_pool_2d(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _int8_only(x, y)
    _same_quantization(x, y)
    act_min, act_max = activation_range(ACTIVATIONS[op.options.fusedActivationFunction], y)
    b.append("avgpool", [x.name], y, {**_pool_window(x, op.options), "count_include_pad": 0,
                                      "pad_value": x.zero_point, "act_min": act_min, "act_max": act_max})


def max_pool_2d(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _int8_only(x, y)
    _same_quantization(x, y)
    act_min, act_max = activation_range(ACTIVATIONS[op.options.fusedActivationFunction], y)
    if (act_min, act_max) == y.qrange():
        b.append("maxpool", [x.name], y, {**_pool_window(x, op.options), "dilation": [1, 1]})
        return
    pooled = b.intermediate(y, y.shape, ":pooled")
    b.append("maxpool", [x.name], pooled, {**_pool_window(x, op.options), "dilation": [1, 1]})
    b.append("clamp", [pooled.name], y, {"act_min": act_min, "act_max": act_max}, step="activation")


def reshape(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_quantization(x, y)
    b.append("reshape", [x.name], y, {"shape": list(y.shape)})


def softmax(b: Builder, op: Operator) -> None:
    """TFLite's int8 SOFTMAX: the exp of every code difference 0..255 tabulated with gemmlowp's fixed point
    (input ``diff`` rescaled by the beta multiplier to Q5.26, ``exp_on_negative_values``; 0 where ``diff <
    diff_min``, which TFLite skips), the rest in the ``tflite_softmax`` kernel."""
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _int8_only(x, y)
    if y.zero_point != -128 or np.float32(y.scale) != np.float32(1 / 256):
        raise Refusal(f"output quantization ({y.scale}, {y.zero_point}); TFLite's int8 softmax writes scale 1/256, "
                      "zero point -128")
    multiplier, left_shift, diff_min = softmax_input_scaling(float(np.float32(op.options.beta)),
                                                             float(np.float32(x.scale)))
    table = np.zeros(256, dtype=np.int32)
    for d in range(256):
        if -d >= diff_min:
            table[d] = exp_on_negative_values(srdhm(-d * (1 << left_shift), multiplier), 5)
    b.append("tflite_softmax", [x.name], y, {}, {"exp_table": b.add_constant(y.name + ":exp_table", table)})


def _lookup(b: Builder, op: Operator, f) -> None:
    """An int8 elementwise builtin as a ``lookup`` of its exact per-code result ``f`` (quantize/tflite/
    elementwise.py)."""
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _int8_only(x, y)
    if x.shape != y.shape:
        raise Refusal(f"input {list(x.shape)} and output {list(y.shape)} differ in shape")
    b.append("lookup", [x.name], y, {"input_min": -128}, {"table": b.add_constant(y.name + ":table", table(f))})


def _io_quantization(b: Builder, op: Operator):
    x, y = b.graph.tensors[op.inputs[0]], b.graph.tensors[op.outputs[0]]
    b.activation(op.inputs[0]), b.activation(op.outputs[0])
    return float(x.scales[0]), int(x.zero_points[0]), float(y.scales[0]), int(y.zero_points[0])


def logistic(b: Builder, op: Operator) -> None:
    s_in, zp_in, _, zp_out = _io_quantization(b, op)
    if zp_out != -128:
        raise Refusal(f"output zero point {zp_out}; TFLite's int8 LOGISTIC writes zero point -128 (scale 1/256)")
    _lookup(b, op, logistic_int8(s_in, zp_in))


def tanh(b: Builder, op: Operator) -> None:
    s_in, zp_in, _, zp_out = _io_quantization(b, op)
    if zp_out != 0:
        raise Refusal(f"output zero point {zp_out}; TFLite's int8 TANH writes zero point 0 (scale 1/128)")
    _lookup(b, op, tanh_int8(s_in, zp_in))


def relu(b: Builder, op: Operator) -> None:
    _lookup(b, op, relu_int8(*_io_quantization(b, op), None))


def relu6(b: Builder, op: Operator) -> None:
    s_in, zp_in, *_ = _io_quantization(b, op)    # TFLite's int8 RELU6 clamps the input's own codes
    _lookup(b, op, relu6_int8(s_in, zp_in))


def leaky_relu(b: Builder, op: Operator) -> None:
    _lookup(b, op, leaky_relu_int8(*_io_quantization(b, op), float(np.float32(op.options.alpha))))


def hard_swish(b: Builder, op: Operator) -> None:
    try:
        f = hard_swish_int8(*_io_quantization(b, op))
    except ValueError as e:
        raise Refusal(str(e)) from None
    _lookup(b, op, f)


def quantize(b: Builder, op: Operator) -> None:
    """QUANTIZE of an int8 tensor to int8 (a requantization): ``zp_out + MBQM(q - zp_in)`` with the multiplier of
    ``double(s_in) / double(s_out)``, clamped (reference_ops::Requantize)."""
    s_in, zp_in, s_out, zp_out = _io_quantization(b, op)
    multiplier, shift = quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    _lookup(b, op, lambda q: min(max(zp_out + multiply_by_quantized_multiplier(q - zp_in, multiplier, shift), -128),
                                 127))


@dataclass(frozen=True)
class Builtin:
    """A converter with the operator shape it expects: ``inputs`` (fewest, most; -1 marks an omitted optional
    input) and the schema's options class (None: the builtin has none)."""

    convert: Callable[[Builder, Operator], None]
    inputs: tuple[int, int]
    options: str | None


CONVERTERS = {
    "CONV_2D": Builtin(conv_2d, (2, 3), "Conv2DOptionsT"),
    "DEPTHWISE_CONV_2D": Builtin(depthwise_conv_2d, (2, 3), "DepthwiseConv2DOptionsT"),
    "FULLY_CONNECTED": Builtin(fully_connected, (2, 3), "FullyConnectedOptionsT"),
    "ADD": Builtin(add, (2, 2), "AddOptionsT"),
    "AVERAGE_POOL_2D": Builtin(average_pool_2d, (1, 1), "Pool2DOptionsT"),
    "MAX_POOL_2D": Builtin(max_pool_2d, (1, 1), "Pool2DOptionsT"),
    "RESHAPE": Builtin(reshape, (1, 2), None),
    "SOFTMAX": Builtin(softmax, (1, 1), "SoftmaxOptionsT"),
    "LOGISTIC": Builtin(logistic, (1, 1), None),
    "TANH": Builtin(tanh, (1, 1), None),
    "RELU": Builtin(relu, (1, 1), None),
    "RELU6": Builtin(relu6, (1, 1), None),
    "LEAKY_RELU": Builtin(leaky_relu, (1, 1), "LeakyReluOptionsT"),
    "HARD_SWISH": Builtin(hard_swish, (1, 1), None),
    "QUANTIZE": Builtin(quantize, (1, 1), None),
}
