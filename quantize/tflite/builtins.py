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

from ..dyadic import add_multipliers, f64, quantize_multipliers
from ..ops import infer_shape
from .convert import Builder, Refusal, activation_range, effective_scales, window_padding
from . import elementwise
from .elementwise import hard_swish_int8, logistic_int16, logistic_int8, table, tanh_int16, tanh_int8
from .fixedpoint import exp_on_negative_values, quantize_multiplier, round_half_away, softmax_input_scaling, srdhm
from .lut16 import softmax_exp_lut, softmax_reciprocal_lut
from .reader import Operator, _enum_names, _schema

_tfl = _schema()
PADDINGS = _enum_names(_tfl.Padding)
ACTIVATIONS = _enum_names(_tfl.ActivationFunctionType)
ADD_LEFT_SHIFT = {8: 20, 16: 15}   # TFLM add_common.cc: inputs scaled up by 2^20 (int8) / 2^15 (int16)


def _enum(table: dict, value: int, field: str) -> str:
    """The name of an enum option; an out-of-range value is malformed (reported as a ModelFileError)."""
    if value not in table:
        raise ValueError(f"{field} {value} is not one of {sorted(table)}")
    return table[value]


def _positive(options, *fields: str) -> list[int]:
    """Window options (strides, dilations, filter sizes) that must be at least 1."""
    values = [getattr(options, f) for f in fields]
    for f, v in zip(fields, values):
        if v < 1:
            raise ValueError(f"{f} {v} must be at least 1")
    return values


def _activation(op: Operator) -> str:
    return _enum(ACTIVATIONS, op.options.fusedActivationFunction, "fusedActivationFunction")


def _int8_only(*tensors):
    for t in tensors:
        if t.bits != 8:
            raise Refusal(f"tensor {t.source!r} is int{t.bits}; the int16 variant of this builtin is not imported "
                          "yet")


def _same_width(*tensors) -> int:
    """int8 throughout or int16 throughout (TFLite's 16x8 mode); the common width."""
    widths = {t.bits for t in tensors}
    if len(widths) != 1:
        raise Refusal(f"tensors {[t.source for t in tensors]} mix int8 and int16")
    return widths.pop()


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


def _bias(b: Builder, op: Operator, channels: int, x, wide_only: bool = False) -> np.ndarray:
    """The bias: INT32 (an int32 accumulator and the model's requant), or INT64 on an int16 input (TFLite's 16x8
    layer: int64 accumulator, 16x8 requant; quantize/ops/_weighted.py). An omitted bias is zeros of the type
    ``quantizedBiasType`` (or the input) implies. ``wide_only``: TFLM's int16 kernel reads only an int64 bias."""
    index = op.inputs[2] if len(op.inputs) > 2 else -1
    declared = {_tfl.TensorType.INT32: "INT32", _tfl.TensorType.INT64: "INT64"}.get(
        getattr(op.options, "quantizedBiasType", 0), "INT64" if x.bits == 16 else "INT32")
    t = b.constant(index, "the bias") if index >= 0 else None
    kind = t.type if t is not None else declared
    allowed = ("INT64",) if wide_only else ("INT32", "INT64") if x.bits == 16 else ("INT32",)
    shape = t.data.shape if t is not None else (channels,)
    if kind not in allowed or shape != (channels,):
        raise Refusal(f"bias {t.label if t is not None else '(omitted)'} is {kind} {list(shape)}; expected "
                      f"{' or '.join(allowed)} [{channels}] on an int{x.bits} input")
    dtype = np.int64 if kind == "INT64" else np.int32
    return np.zeros(channels, dtype=dtype) if t is None else t.data.astype(dtype)


def _weighted(b: Builder, op: Operator, ir_op: str, x, y, weight: np.ndarray, w_scales, bias, extra: dict):
    """Append a conv2d / dense node with TFLM's per-channel multipliers and the fused activation's clamp."""
    where = f"operator {op.index} {op.name}"
    mult, shift = quantize_multipliers(effective_scales(x.scale, w_scales, y.scale), where)
    act_min, act_max = activation_range(_activation(op), y)
    params = {"weight": b.add_constant(y.name + ":weight", np.ascontiguousarray(weight, dtype=np.int8)),
              "bias": b.add_constant(y.name + ":bias", bias),
              "multiplier": b.add_constant(y.name + ":multiplier", mult),
              "shift": b.add_constant(y.name + ":shift", shift)}
    attrs = {**extra, "input_zp": x.zero_point, "output_zp": y.zero_point, "act_min": act_min, "act_max": act_max}
    b.append(ir_op, [x.name], y, attrs, params)


def conv_2d(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_width(x, y)
    o = op.options
    oc = b.constant(op.inputs[1], "the filter").shape[0]
    w, scales = _weights(b, op.inputs[1], 0, oc)
    _, kh, kw, icg = w.shape
    ic = x.shape[-1]
    if len(x.shape) != 3 or icg < 1 or ic % icg:
        raise Refusal(f"filter {list(w.shape)} does not fit the input {list(x.shape)}")
    stride, dilation = _positive(o, "strideH", "strideW"), _positive(o, "dilationHFactor", "dilationWFactor")
    padding = window_padding(_enum(PADDINGS, o.padding, "padding"), x.shape[:2], (kh, kw), stride, dilation)
    _weighted(b, op, "conv2d", x, y, w.data, scales, _bias(b, op, oc, x),
              {"stride": stride, "padding": padding, "dilation": dilation, "groups": ic // icg})


def depthwise_conv_2d(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_width(x, y)
    o = op.options
    oc = b.constant(op.inputs[1], "the filter").shape[-1]
    w, scales = _weights(b, op.inputs[1], 3, oc)
    _, kh, kw, _ = w.shape
    ic = x.shape[-1]
    if len(x.shape) != 3 or w.shape[0] != 1 or oc != ic * o.depthMultiplier:
        raise Refusal(f"filter {list(w.shape)} with depth multiplier {o.depthMultiplier} does not fit the input "
                      f"{list(x.shape)}")
    stride, dilation = _positive(o, "strideH", "strideW"), _positive(o, "dilationHFactor", "dilationWFactor")
    padding = window_padding(_enum(PADDINGS, o.padding, "padding"), x.shape[:2], (kh, kw), stride, dilation)
    # [1, KH, KW, IC*dm] -> OHWI [IC*dm, KH, KW, 1]: output channel i*dm + m reads input channel i, as in TFLite
    _weighted(b, op, "conv2d", x, y, w.data.transpose(3, 1, 2, 0), scales, _bias(b, op, oc, x, x.bits == 16),
              {"stride": stride, "padding": padding, "dilation": dilation, "groups": ic})


def fully_connected(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_width(x, y)
    n, k = b.constant(op.inputs[1], "the weights").shape
    w, scales = _weights(b, op.inputs[1], 0, n)
    if math.prod(x.shape) != k or y.shape != (n,):
        raise Refusal(f"weights [{n}, {k}] do not fit input {list(x.shape)} -> output {list(y.shape)} "
                      "(intonly imports FULLY_CONNECTED on one row)")
    if x.shape != (k,):
        flat = b.intermediate(x, (k,), ":flat")
        b.append("reshape", [x.name], flat, {"shape": [k]}, step="flatten")
        x = flat
    _weighted(b, op, "dense", x, y, w.data, scales, _bias(b, op, n, x), {})


def add(b: Builder, op: Operator, ir_op: str = "add") -> None:
    xa, xb, y = b.activation(op.inputs[0]), b.activation(op.inputs[1]), b.activation(op.outputs[0])
    left_shift = ADD_LEFT_SHIFT[_same_width(xa, xb, y)]
    if not xa.shape == xb.shape == y.shape:
        raise Refusal(f"operands {list(xa.shape)} and {list(xb.shape)} broadcast; intonly imports ADD of equal shapes")
    if y.bits == 16 and getattr(op.options, "potScaleInt16", False) and (xa.zero_point, xb.zero_point, y.zero_point) \
            != (0, 0, 0):
        raise Refusal("int16 ADD with power-of-two scales and nonzero zero points")
    multipliers, shifts = add_multipliers(xa.scale, xb.scale, y.scale, left_shift, f"operator {op.index} {op.name}")
    act_min, act_max = activation_range(_activation(op), y)
    b.append(ir_op, [xa.name, xb.name], y, {
        "input_zps": [xa.zero_point, xb.zero_point], "left_shift": left_shift,
        "multipliers": [int(m) for m in multipliers], "shifts": [int(s) for s in shifts],
        "output_zp": y.zero_point, "act_min": act_min, "act_max": act_max})


def _pool_window(x, o) -> dict:
    kernel, stride = _positive(o, "filterHeight", "filterWidth"), _positive(o, "strideH", "strideW")
    return {"kernel": kernel, "stride": stride,
            "padding": window_padding(_enum(PADDINGS, o.padding, "padding"), x.shape[:2], kernel, stride, (1, 1))}


def _same_quantization(x, y):
    if (x.scale, x.zero_point) != (y.scale, y.zero_point):
        raise Refusal(f"input ({x.scale}, {x.zero_point}) and output ({y.scale}, {y.zero_point}) are quantized "
                      "differently; TFLite's int8 pooling keeps the input's codes")


def average_pool_2d(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_width(x, y)
    _same_quantization(x, y)
    act_min, act_max = activation_range(_activation(op), y)
    b.append("avgpool", [x.name], y, {**_pool_window(x, op.options), "count_include_pad": 0,
                                      "pad_value": x.zero_point, "act_min": act_min, "act_max": act_max})


def max_pool_2d(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_width(x, y)
    _same_quantization(x, y)
    act_min, act_max = activation_range(_activation(op), y)
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
    if x.bits == 16:
        softmax16(b, x, y, float(np.float32(op.options.beta)))
        return
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

def softmax16(b: Builder, x, y, beta: float) -> None:
    """TFLite's int16 SOFTMAX: zero points 0, output scale 1/32768 (within 0.1 %, as TFLM checks), the input rescaled
    by ``QuantizeMultiplier(s_in · beta / (10 / 65535))`` so that [-65535, 0] spans [-10, 0], and TFLite's two
    513-entry tables (quantize/tflite/lut16.py) in the ``tflite_softmax16`` kernel."""
    _same_width(x, y)
    if x.zero_point != 0 or y.zero_point != 0 or abs(float(y.scale) - 1 / 32768) > 0.001 / 32768:
        raise Refusal(f"quantization ({x.scale}, {x.zero_point}) -> ({y.scale}, {y.zero_point}); TFLite's int16 "
                      "softmax takes zero points 0 and writes scale 1/32768")
    multiplier, left_shift = quantize_multiplier(float(np.float32(x.scale)) * beta / (10.0 / 65535.0))
    if left_shift > 15:
        raise Refusal(f"input scale {x.scale} times beta {beta} rescales a code difference by 2^{left_shift}; "
                      "differences up to 65535 must stay inside int32")
    b.append("tflite_softmax16", [x.name], y, {"multiplier": multiplier, "left_shift": left_shift},
             {"exp_lut": b.add_constant(y.name + ":exp_lut", softmax_exp_lut().copy()),
              "reciprocal_lut": b.add_constant(y.name + ":reciprocal_lut", softmax_reciprocal_lut().copy())})


def _axis(b: Builder, index: int, axis: int) -> int:
    """A TFLite axis of tensor ``index`` (negative counts from the end) as an axis of the per-sample shape."""
    rank = len(b.graph.tensors[index].shape)
    full = axis + rank if axis < 0 else axis
    if not 1 <= full < rank:
        raise Refusal(f"axis {axis} of a rank-{rank} tensor is the batch axis or outside it")
    return full - 1


def _ints(b: Builder, index: int, what: str) -> list[int]:
    t = b.constant(index, what)
    if t.type not in ("INT32", "INT64"):
        raise Refusal(f"{what} {t.label} is {t.type}, expected INT32")
    return [int(v) for v in t.data.ravel()]


def mul(b: Builder, op: Operator) -> None:
    """reference_integer_ops::Mul: ``zp_out + MBQM((a - za)(b - zb))`` with the multiplier of ``double(s_a) ·
    double(s_b) / double(s_out)``, clamped to the fused activation's range. Equal shapes, or one operand
    broadcast over the other's leading axes (a per-channel gate)."""
    xa, xb, y = b.activation(op.inputs[0]), b.activation(op.inputs[1]), b.activation(op.outputs[0])
    _same_width(xa, xb, y)     # int16: the same formula (TFLM's int16 MUL; the product is proven int32)
    if xa.shape != y.shape:
        xa, xb = xb, xa    # the product is symmetric: the full-size operand first
    try:
        ok = xa.shape == y.shape and infer_shape("mul", {}, [xa.shape, xb.shape], {}) == y.shape
    except ValueError:
        ok = False
    if not ok:
        raise Refusal(f"operands {list(xa.shape)} x {list(xb.shape)} -> {list(y.shape)}: intonly imports MUL of "
                      "equal shapes or with one operand broadcast over the other's leading axes")
    (multiplier,), (shift,) = quantize_multipliers([f64(xa.scale) * f64(xb.scale) / f64(y.scale)],
                                                   f"operator {op.index} {op.name}")
    act_min, act_max = activation_range(_activation(op), y)
    b.append("mul", [xa.name, xb.name], y, {"input_zps": [xa.zero_point, xb.zero_point],
                                            "multiplier": int(multiplier), "shift": int(shift),
                                            "output_zp": y.zero_point, "act_min": act_min, "act_max": act_max})


def sub(b: Builder, op: Operator) -> None:
    """SUB: ADD's parameters, the rescaled second input subtracted (the ``sub`` op)."""
    add(b, op, "sub")


def concatenation(b: Builder, op: Operator) -> None:
    ins, y = [b.activation(i) for i in op.inputs], b.activation(op.outputs[0])
    for x in ins:
        _same_quantization(x, y)
    if _activation(op) != "NONE":
        raise Refusal("a fused activation on CONCATENATION")
    b.append("concat", [x.name for x in ins], y, {"axis": _axis(b, op.outputs[0], op.options.axis)})


def transpose(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    perm = _ints(b, op.inputs[1], "the permutation")
    if not perm or perm[0] != 0 or sorted(perm) != list(range(len(perm))):
        raise Refusal(f"permutation {perm} moves the batch axis or is not a permutation")
    b.append("transpose", [x.name], y, {"perm": [p - 1 for p in perm[1:]]})


def pad(b: Builder, op: Operator) -> None:
    """PAD / PADV2: a border of the output zero point (PAD) or of the constant third input (PADV2)."""
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_quantization(x, y)
    widths = _ints(b, op.inputs[1], "the paddings")
    if len(widths) != 2 * (len(x.shape) + 1) or widths[:2] != [0, 0] or min(widths) < 0:
        raise Refusal(f"paddings {widths} pad the batch axis, are negative or do not fit rank {len(x.shape) + 1}")
    value = y.zero_point
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        c = b.constant(op.inputs[2], "the pad value")
        if c.type != f"INT{x.bits}" or c.data.size != 1:
            raise Refusal(f"pad value {c.label} is {c.type} {list(c.data.shape)}, expected one INT{x.bits}")
        value = int(c.data.ravel()[0])
    b.append("pad", [x.name], y, {"pads": widths[2:], "value": value})


def mean(b: Builder, op: Operator) -> None:
    """MEAN over H and/or W (and C) of an NHWC int8 tensor: TFLite's QuantizedMeanOrSum sums ``x - zp_in`` in int32
    and requantizes with ``m' = (m << k) / N``, ``shift' = shift - k`` (``k = min(floor(log2 N), 32, 31 +
    shift)``, ``(m, shift)`` of ``double(s_in) / double(s_out)``). That is exactly a convolution with weights 1 over
    the reduced axes, bias 0 and that per-channel multiplier (then a reshape without ``keep_dims``)."""
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_width(x, y)
    if len(x.shape) != 3:
        raise Refusal(f"MEAN of a {list(x.shape)} tensor (intonly imports it on NHWC images)")
    axes = sorted({_axis(b, op.inputs[0], a) for a in _ints(b, op.inputs[1], "the axes")})
    h, w, c = x.shape
    kh, kw = (h if 0 in axes else 1), (w if 1 in axes else 1)
    count = kh * kw * (c if 2 in axes else 1)
    m, shift = quantize_multiplier(f64(x.scale) / f64(y.scale))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    m, shift = ((m << k) // count if m >= 0 else -((-m << k) // count)), shift - k
    if not (0 <= m < 2**31 and 1 <= 31 - shift <= 62):
        raise Refusal(f"requantization ({m}, {shift}) outside the IR's dyadic range")
    channels = 1 if 2 in axes else c
    weight = np.ones((channels, kh, kw, c if 2 in axes else 1), dtype=np.int8)
    out_shape = (h // kh, w // kw, channels)
    target = y if out_shape == y.shape else b.intermediate(y, out_shape, ":mean")
    act_min, act_max = y.qrange()
    params = {"weight": b.add_constant(y.name + ":ones", weight),
              "bias": b.add_constant(y.name + ":bias", np.zeros(channels, dtype=np.int32)),
              "multiplier": b.add_constant(y.name + ":multiplier", np.full(channels, m, dtype=np.int32)),
              "shift": b.add_constant(y.name + ":shift", np.full(channels, 31 - shift, dtype=np.int32))}
    b.append("conv2d", [x.name], target, {"stride": [1, 1], "padding": [0, 0, 0, 0], "dilation": [1, 1],
                                          "groups": 1 if 2 in axes else c, "input_zp": x.zero_point,
                                          "output_zp": y.zero_point, "act_min": act_min, "act_max": act_max}, params)
    if target is not y:
        b.append("reshape", [target.name], y, {"shape": list(y.shape)}, step="squeeze")


def resize_bilinear(b: Builder, op: Operator) -> None:
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_width(x, y)   # int16: the same ResizeBilinearInteger (checked against LiteRT's reference kernel)
    _same_quantization(x, y)
    size = _ints(b, op.inputs[1], "the size")
    o = op.options
    b.append("resize_bilinear", [x.name], y, {"size": size, "half_pixel_centers": int(bool(o.halfPixelCenters)),
                                              "align_corners": int(bool(o.alignCorners))})


def resize_nearest_neighbor(b: Builder, op: Operator) -> None:
    """RESIZE_NEAREST_NEIGHBOR where TFLite's float32 source index equals ``floor(o / k)`` for an integer factor
    ``k`` on each axis (checked for every output index, emulating GetNearestNeighbor's float32 arithmetic)."""
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_quantization(x, y)
    o = op.options
    factors = []
    for axis, (n_in, n_out) in enumerate(zip(x.shape[:2], y.shape[:2])):
        k = n_out // n_in
        source = [_nearest_source(i, n_in, n_out, bool(o.alignCorners), bool(o.halfPixelCenters))
                  for i in range(n_out)]
        if n_out % n_in or source != [i // k for i in range(n_out)]:
            raise Refusal(f"axis {axis}: {n_in} -> {n_out} is not an integer upscaling TFLite maps to "
                          "floor(o / k)")
        factors.append(k)
    b.append("resize_nearest", [x.name], y, {"scale": factors})


def _nearest_source(i: int, n_in: int, n_out: int, align_corners: bool, half_pixel_centers: bool) -> int:
    f32 = np.float32
    scale = f32(n_in - 1) / f32(n_out - 1) if align_corners and n_out > 1 else f32(n_in) / f32(n_out)
    v = (f32(i) + f32(0.5 if half_pixel_centers else 0.0)) * scale
    src = min(round_half_away(float(v)) if align_corners else math.floor(float(v)), n_in - 1)
    return max(0, src) if half_pixel_centers else src


def strided_slice(b: Builder, op: Operator) -> None:
    """STRIDED_SLICE with unit strides and no ellipsis / new-axis masks: one ``slice`` per cut axis, then a
    reshape for the shrunk axes."""
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    _same_quantization(x, y)
    begin, end, strides = (_ints(b, i, w) for i, w in zip(op.inputs[1:], ("the begin", "the end", "the strides")))
    o = op.options
    rank = len(x.shape) + 1
    if any(s != 1 for s in strides) or o.ellipsisMask or o.newAxisMask or len(begin) != rank:
        raise Refusal(f"strides {strides}, ellipsis/new-axis masks {o.ellipsisMask}/{o.newAxisMask}: intonly "
                      "imports unit-stride slices")
    current = x
    for axis in range(1, rank):
        n = x.shape[axis - 1]
        start = 0 if o.beginMask >> axis & 1 else begin[axis] + (n if begin[axis] < 0 else 0)
        stop = n if o.endMask >> axis & 1 else end[axis] + (n if end[axis] < 0 else 0)
        if o.shrinkAxisMask >> axis & 1:
            stop = start + 1
        start, stop = max(0, min(start, n)), max(0, min(stop, n))
        if (start, stop) == (0, n):
            continue
        shape = tuple(stop - start if i == axis - 1 else d for i, d in enumerate(current.shape))
        nxt = b.intermediate(y, shape, f":slice{axis}")
        b.append("slice", [current.name], nxt, {"axis": axis - 1, "start": start, "stop": stop}, step=f"axis{axis}")
        current = nxt
    if current is x or current.shape != y.shape:
        b.append("reshape", [current.name], y, {"shape": list(y.shape)}, step="shape")
    else:
        b.nodes[-1].outputs = [y.name]
        del b.tensors[current.name]


def _lookup(b: Builder, op: Operator, make, int16: bool = False) -> None:
    """An elementwise builtin as a ``lookup`` of its exact per-code result (quantize/tflite/elementwise.py):
    ``make(s_in, zp_in, s_out, zp_out, output range)`` returns the function of one code; ``int16``: the builtin's
    int16 variant computes the same formula (a table of 65,536 entries)."""
    x, y = b.activation(op.inputs[0]), b.activation(op.outputs[0])
    if not int16:
        _int8_only(x, y)
    if x.shape != y.shape:
        raise Refusal(f"input {list(x.shape)} and output {list(y.shape)} differ in shape")
    f = make(x.scale, x.zero_point, y.scale, y.zero_point, y.qrange())
    b.append("lookup", [x.name], y, {"input_min": x.qrange()[0]},
             {"table": b.add_constant(y.name + ":table", table(f, x.bits, y.dtype))})


def _refusing(make):
    """``make`` with its ValueError (a quantization TFLite's Prepare refuses) raised as a Refusal."""
    def checked(*args):
        try:
            return make(*args)
        except ValueError as e:
            raise Refusal(str(e)) from None
    return checked


def _sigmoid_int16(b: Builder, op: Operator, make) -> None:
    """An int16 LOGISTIC / TANH as a table of its per-code results."""
    _lookup(b, op, _refusing(lambda *q: make(*q[:4])), int16=True)


def logistic(b: Builder, op: Operator) -> None:
    if b.activation(op.inputs[0]).bits == 16:
        return _sigmoid_int16(b, op, logistic_int16)
    zp_out = b.activation(op.outputs[0]).zero_point
    if zp_out != -128:
        raise Refusal(f"output zero point {zp_out}; TFLite's int8 LOGISTIC writes zero point -128 (scale 1/256)")
    _lookup(b, op, lambda s_in, zp_in, *_: logistic_int8(s_in, zp_in))


def tanh(b: Builder, op: Operator) -> None:
    if b.activation(op.inputs[0]).bits == 16:
        return _sigmoid_int16(b, op, tanh_int16)
    zp_out = b.activation(op.outputs[0]).zero_point
    if zp_out != 0:
        raise Refusal(f"output zero point {zp_out}; TFLite's int8 TANH writes zero point 0 (scale 1/128)")
    _lookup(b, op, lambda s_in, zp_in, *_: tanh_int8(s_in, zp_in))


def relu(b: Builder, op: Operator) -> None:
    _lookup(b, op, elementwise.relu, int16=True)


def relu6(b: Builder, op: Operator) -> None:
    """TFLite's RELU6 clamps the input's own codes (no output quantization is read)."""
    _lookup(b, op, lambda s_in, zp_in, s_out, zp_out, out_range: elementwise.relu6(s_in, zp_in, out_range),
            int16=True)


def leaky_relu(b: Builder, op: Operator) -> None:
    alpha = float(np.float32(op.options.alpha))
    _lookup(b, op, lambda *q: elementwise.leaky_relu(*q[:4], alpha, q[4]), int16=True)


def hard_swish(b: Builder, op: Operator) -> None:
    x = b.activation(op.inputs[0])
    if x.bits != 8:
        raise Refusal(f"tensor {x.source!r} is int{x.bits}; no TensorFlow Lite runtime defines an int16 HARD_SWISH "
                      "(TFLM and LiteRT accept int8 and uint8 only), so there is no definition to reproduce")
    _lookup(b, op, _refusing(lambda *q: hard_swish_int8(*q[:4])))


def quantize(b: Builder, op: Operator) -> None:
    """QUANTIZE of an integer tensor (int8/int16 to int8/int16): a requantization table."""
    _lookup(b, op, elementwise.requantize, int16=True)


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
    "MUL": Builtin(mul, (2, 2), "MulOptionsT"),
    "SUB": Builtin(sub, (2, 2), "SubOptionsT"),
    "CONCATENATION": Builtin(concatenation, (1, 1 << 16), "ConcatenationOptionsT"),
    "TRANSPOSE": Builtin(transpose, (2, 2), None),
    "PAD": Builtin(pad, (2, 2), None),
    "PADV2": Builtin(pad, (3, 3), None),
    "MEAN": Builtin(mean, (2, 2), "ReducerOptionsT"),
    "RESIZE_BILINEAR": Builtin(resize_bilinear, (2, 2), "ResizeBilinearOptionsT"),
    "RESIZE_NEAREST_NEIGHBOR": Builtin(resize_nearest_neighbor, (2, 2), "ResizeNearestNeighborOptionsT"),
    "STRIDED_SLICE": Builtin(strided_slice, (4, 4), "StridedSliceOptionsT"),
}
