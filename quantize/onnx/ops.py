"""One converter per ONNX op (QDQ float form and QOperator form share it): the IR nodes it becomes. A converter
raises :class:`~.convert.Refusal` for what it cannot import; adding an op is a function and a row in
:data:`CONVERTERS`."""

from __future__ import annotations

import math

import numpy as np

from ..dyadic import f64, quantize_multiplier
from ..ir import TensorInfo
from .convert import Converter, Refusal, add_params, mean_multiplier, requant_params
from .reader import OnnxNode


def _where(node: OnnxNode) -> str:
    return node.label


def _weighted(c: Converter, node: OnnxNode, op: str, x, out_q, weight, scales, bias, extra: dict) -> None:
    """A conv2d / dense node: per-channel multipliers of ``s_in · s_w / s_out``, the output's full range."""
    name, s_out, zp_out, kind = out_q
    mult, shift = requant_params(x.scale, scales, s_out, _where(node))
    lo, hi = (-128, 127)
    zp = zp_out - (128 if kind == "uint8" else 0)
    params = {"weight": c.add_constant(name + ":weight", np.ascontiguousarray(weight, np.int8)),
              "bias": c.add_constant(name + ":bias", bias.astype(np.int32)),
              "multiplier": c.add_constant(name + ":multiplier", mult), "shift": c.add_constant(name + ":shift", shift)}
    c.emit(op, [x.name], out_q, {**extra, "input_zp": x.zero_point, "output_zp": zp, "act_min": lo, "act_max": hi},
           params)


def conv(c: Converter, node: OnnxNode) -> None:
    """Conv (QDQ) / QLinearConv: OIHW weights become OHWI, ``pads`` [top, left, bottom, right]."""
    x = c.quantized(node.inputs[0])
    if node.op == "QLinearConv":
        w, scales = c.checked_weights(node.inputs[3], c.scalar(node.inputs[3], "weight"),
                                      c.scalar(node.inputs[4], "weight scale"),
                                      c.scalar(node.inputs[5], "weight zero point"), 0, 0)
        bias_name = node.inputs[8] if len(node.inputs) > 8 else None
        out_q = c.output_quantization(node, False, (node.inputs[6], node.inputs[7]))
    else:
        w, scales = c.weights(node.inputs[1], 0)
        bias_name = node.inputs[2] if len(node.inputs) > 2 else None
        out_q = c.output_quantization(node, True)
    a = node.attrs
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID") or w.ndim != 4:
        raise Refusal(f"auto_pad {a.get('auto_pad')!r} or a {w.ndim - 2}-D convolution")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    _weighted(c, node, "conv2d", x, out_q, w.transpose(0, 2, 3, 1), scales, c.bias(bias_name, w.shape[0]),
              {"stride": list(a.get("strides", [1, 1])), "padding": [pads[0], pads[1], pads[2], pads[3]],
               "dilation": list(a.get("dilations", [1, 1])), "groups": int(a.get("group", 1))})


def gemm(c: Converter, node: OnnxNode) -> None:
    """Gemm (QDQ) / com.microsoft.QGemm with ``alpha = beta = 1``, and MatMul / QLinearMatMul with a constant
    right operand: a dense layer (weights [N, K])."""
    kind = node.op.rsplit(".", 1)[-1]
    a = node.attrs
    if float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0 or a.get("transA", 0):
        raise Refusal("alpha or beta other than 1, or transA")
    x = c.quantized(node.inputs[0])
    transposed = kind in ("Gemm", "QGemm") and a.get("transB", 0)
    axis = 0 if transposed else 1
    if kind in ("QGemm", "QLinearMatMul"):
        w, scales = c.checked_weights(node.inputs[3], c.scalar(node.inputs[3], "weight"),
                                      c.scalar(node.inputs[4], "weight scale"),
                                      c.scalar(node.inputs[5], "weight zero point"), axis, axis)
        if kind == "QGemm" and len(node.inputs) < 9:
            raise Refusal("QGemm with a float output")
        bias_name = node.inputs[6] if kind == "QGemm" else None
        out_q = c.output_quantization(node, False, (node.inputs[7], node.inputs[8]) if kind == "QGemm" else
                                      (node.inputs[6], node.inputs[7]))
    else:
        w, scales = c.weights(node.inputs[1], axis)
        bias_name = node.inputs[2] if kind == "Gemm" and len(node.inputs) > 2 else None
        out_q = c.output_quantization(node, True)
    if not transposed:
        w = w.T
    if w.ndim != 2 or x.shape != (w.shape[1],):
        raise Refusal(f"weights {list(w.shape)} on an input of {list(x.shape)} (intonly imports one row)")
    _weighted(c, node, "dense", x, out_q, w, scales, c.bias(bias_name, w.shape[0]), {})


def add(c: Converter, node: OnnxNode) -> None:
    """Add (QDQ) / com.microsoft.QLinearAdd of equal shapes: TFLite's ADD structure (docs/numerics.md#add)."""
    if node.op.endswith("QLinearAdd"):
        xa, xb = c.quantized(node.inputs[0]), c.quantized(node.inputs[3])
        out_q = c.output_quantization(node, False, (node.inputs[6], node.inputs[7] if len(node.inputs) > 7 else None))
    else:
        xa, xb = c.quantized(node.inputs[0]), c.quantized(node.inputs[1])
        out_q = c.output_quantization(node, True)
    if xa.shape != xb.shape:
        raise Refusal(f"operands {list(xa.shape)} and {list(xb.shape)} broadcast")
    multipliers, shifts = add_params(xa.scale, xb.scale, out_q[1], _where(node))
    c.emit("add", [xa.name, xb.name], out_q, {
        "input_zps": [xa.zero_point, xb.zero_point], "left_shift": 20, "multipliers": [int(m) for m in multipliers],
        "shifts": [int(s) for s in shifts], "output_zp": out_q[2] - (128 if out_q[3] == "uint8" else 0),
        "act_min": -128, "act_max": 127})


def max_pool(c: Converter, node: OnnxNode) -> None:
    """MaxPool on quantized codes (input and output quantized alike, as ORT requires)."""
    x = c.quantized(node.inputs[0])
    out_q = c.output_quantization(node, node.inputs[0] in c.dq)
    if (x.scale, x.zero_point) != (out_q[1], out_q[2] - (128 if out_q[3] == "uint8" else 0)):
        raise Refusal("input and output quantized differently")
    a = node.attrs
    if a.get("ceil_mode", 0) or len(a.get("kernel_shape", [])) != 2:
        raise Refusal("ceil_mode or a pool that is not 2-D")
    c.emit("maxpool", [x.name], out_q, {"kernel": list(a["kernel_shape"]), "stride": list(a.get("strides", [1, 1])),
                                        "padding": list(a.get("pads", [0, 0, 0, 0])),
                                        "dilation": list(a.get("dilations", [1, 1]))})


def spatial_mean(c: Converter, node: OnnxNode) -> None:
    """GlobalAveragePool, com.microsoft.QLinearGlobalAveragePool and ReduceMean over (H, W): a depthwise
    convolution with unit weights over the whole image and the multiplier ``s_in / (H·W·s_out)``, then a reshape
    when the mean drops the axes."""
    qlinear = node.op.endswith("QLinearGlobalAveragePool")
    x = c.quantized(node.inputs[0])
    keep = True
    if node.op == "ReduceMean":
        axes = node.attrs.get("axes") or (list(c.scalar(node.inputs[1], "axes")) if len(node.inputs) > 1 else [])
        if sorted(int(v) % 4 for v in axes) != [2, 3]:
            raise Refusal(f"ReduceMean over axes {axes}; intonly imports the mean over H and W")
        keep = bool(node.attrs.get("keepdims", 1))
    out_q = c.output_quantization(node, not qlinear, (node.inputs[3], node.inputs[4]) if qlinear else None)
    if len(x.shape) != 3:
        raise Refusal(f"a mean over an input of shape {x.shape}")
    h, w, ch = x.shape
    name, s_out, zp_out, kind = out_q
    m, s = mean_multiplier(x.scale, h * w, s_out, _where(node))
    params = {"weight": c.add_constant(name + ":ones", np.ones((ch, h, w, 1), np.int8)),
              "bias": c.add_constant(name + ":bias", np.zeros(ch, np.int32)),
              "multiplier": c.add_constant(name + ":multiplier", np.full(ch, m, np.int32)),
              "shift": c.add_constant(name + ":shift", np.full(ch, s, np.int32))}
    attrs = {"stride": [1, 1], "padding": [0, 0, 0, 0], "dilation": [1, 1], "groups": ch, "input_zp": x.zero_point,
             "output_zp": zp_out - (128 if kind == "uint8" else 0), "act_min": -128, "act_max": 127}
    if keep:
        c.emit("conv2d", [x.name], out_q, attrs, params)
        return
    pooled = TensorInfo(c.unique(name + ":pooled"), "int8", (1, 1, ch), s_out, attrs["output_zp"], 8, layout="HWC")
    c.tensors[pooled.name] = pooled
    c.append("conv2d", [x.name], pooled, attrs, params)
    c.emit("reshape", [pooled.name], out_q, {"shape": [ch]}, step="squeeze")


def flatten(c: Converter, node: OnnxNode) -> None:
    """Flatten (axis 1) / Reshape to (1, -1): an HWC image is transposed back to CHW first, so the element order
    is ONNX's."""
    x = c.quantized(node.inputs[0])
    out_q = c.output_quantization(node, node.inputs[0] in c.dq)
    if node.op == "Flatten" and int(node.attrs.get("axis", 1)) != 1:
        raise Refusal("Flatten with an axis other than 1")
    if node.op == "Reshape" and list(c.scalar(node.inputs[1], "shape")) not in ([1, -1], [-1, int(np.prod(x.shape))],
                                                                                  [1, int(np.prod(x.shape))]):
        raise Refusal("a Reshape that is not a flatten to one row")
    source = x
    if len(x.shape) == 3:
        source = c.intermediate(x, (x.shape[2], x.shape[0], x.shape[1]), ":chw")
        c.append("transpose", [x.name], source, {"perm": [2, 0, 1]}, step="chw")
    c.emit("reshape", [source.name], out_q, {"shape": [int(np.prod(x.shape))]})


ELEMENTWISE = {  # ONNX op -> its float function of the real input (float64), from the node's attributes
    "Relu": lambda a: lambda v: np.maximum(v, 0.0),
    "Sigmoid": lambda a: lambda v: 1.0 / (1.0 + np.exp(-v)),
    "Tanh": lambda a: np.tanh,
    "LeakyRelu": lambda a: lambda v: np.where(v >= 0, v, float(a.get("alpha", 0.01)) * v),
    "HardSigmoid": lambda a: lambda v: np.clip(float(a.get("alpha", 0.2)) * v + float(a.get("beta", 0.5)), 0, 1),
    "HardSwish": lambda a: lambda v: v * np.clip(v / 6.0 + 0.5, 0, 1),
}


def elementwise(c: Converter, node: OnnxNode) -> None:
    """Relu, Clip, Sigmoid, Tanh, LeakyRelu, HardSigmoid, HardSwish between a DequantizeLinear and a QuantizeLinear
    (or com.microsoft.QLinearSigmoid / QLinearLeakyRelu): the float function of every input code's real value, rounded
    half to even at the output's scale and clamped (a ``lookup`` table; ONNX Runtime's own tables for these ops are
    built the same way in float32, so they can differ by 1 LSB where a value lies near a tie)."""
    qlinear = node.op.startswith("com.microsoft.QLinear")
    kind = node.op.rsplit(".QLinear", 1)[-1] if qlinear else node.op
    x = c.quantized(node.inputs[0])
    out_q = c.output_quantization(node, not qlinear, (node.inputs[3], node.inputs[4] if len(node.inputs) > 4
                                                      else None) if qlinear else None)
    s_out, zp_out = out_q[1], out_q[2] - (128 if out_q[3] == "uint8" else 0)
    if kind == "Clip":
        lo_f = float(c.scalar(node.inputs[1], "min")) if len(node.inputs) > 1 and node.inputs[1] else -math.inf
        hi_f = float(c.scalar(node.inputs[2], "max")) if len(node.inputs) > 2 and node.inputs[2] else math.inf
        function = lambda v: np.clip(v, lo_f, hi_f)  # noqa: E731
    else:
        function = ELEMENTWISE[kind](node.attrs)
    codes = np.arange(-128, 128, dtype=np.float64)
    real = function((codes - x.zero_point) * f32(x.scale))
    table = np.clip(np.rint(real / f32(s_out)) + zp_out, -128, 127).astype(np.int8)
    c.emit("lookup", [x.name], out_q, {"input_min": -128}, {"table": c.add_constant(out_q[0] + ":table", table)})


def requantized(c: Converter, x, scale: float, zp: int, step: str):
    """``x`` as it is, or requantized to (``scale``, ``zp``) when its quantization differs."""
    if (x.scale, x.zero_point) == (scale, zp):
        return x
    m, sh = quantize_multiplier(f64(x.scale) / f64(scale), step)
    y = TensorInfo(c.unique(x.name + ":requantized"), "int8", x.shape, scale, zp, 8, layout=x.layout)
    c.tensors[y.name] = y
    c.append("requantize", [x.name], y, {"multiplier": int(m), "shift": int(sh), "input_zp": x.zero_point,
                                         "output_zp": zp, "act_min": -128, "act_max": 127}, step=step)
    return y


def concat(c: Converter, node: OnnxNode) -> None:
    """Concat (QDQ) / com.microsoft.QLinearConcat: inputs quantized differently from the output are requantized
    first; the ONNX axis becomes the stored one (channels of an NCHW image are the last stored axis)."""
    qlinear = node.op.endswith("QLinearConcat")
    if qlinear:
        ins = [c.quantized(t) for t in node.inputs[2::3]]
        out_q = c.output_quantization(node, False, (node.inputs[0], node.inputs[1]))
    else:
        ins = [c.quantized(t) for t in node.inputs]
        out_q = c.output_quantization(node, True)
    rank = len(ins[0].shape) + 1
    axis = int(node.attrs.get("axis", 1)) % rank
    if axis == 0:
        raise Refusal("Concat along the batch axis")
    stored_axis = {1: 2, 2: 0, 3: 1}[axis] if rank == 4 else axis - 1
    zp = out_q[2] - (128 if out_q[3] == "uint8" else 0)
    parts = [requantized(c, x, out_q[1], zp, f"requantize{i}").name for i, x in enumerate(ins)]
    c.emit("concat", parts, out_q, {"axis": stored_axis})


def average_pool(c: Converter, node: OnnxNode) -> None:
    """AveragePool (QDQ) / com.microsoft.QLinearAveragePool. Unpadded: a depthwise convolution with unit weights and
    the multiplier ``s_in / (k·s_out)``, rounded half to even once, as ONNX Runtime rounds its float average. Padded,
    with the input's quantization kept: ``avgpool`` (rounding division of the codes, ties away from zero: 1 LSB from
    ONNX Runtime at exact halves)."""
    qlinear = node.op.endswith("QLinearAveragePool")
    x = c.quantized(node.inputs[0])
    out_q = c.output_quantization(node, not qlinear, (node.inputs[3], node.inputs[4]) if qlinear else None)
    a = node.attrs
    if a.get("ceil_mode", 0) or len(a.get("kernel_shape", [])) != 2 or len(x.shape) != 3:
        raise Refusal("ceil_mode or a pool that is not 2-D")
    kernel, stride = list(a["kernel_shape"]), list(a.get("strides", [1, 1]))
    pads = list(a.get("pads", [0, 0, 0, 0]))
    zp_out = out_q[2] - (128 if out_q[3] == "uint8" else 0)
    if any(pads) and (x.scale, x.zero_point) == (out_q[1], zp_out):
        c.emit("avgpool", [x.name], out_q, {"kernel": kernel, "stride": stride, "padding": pads,
                                            "count_include_pad": int(a.get("count_include_pad", 0)),
                                            "pad_value": x.zero_point, "act_min": -128, "act_max": 127})
        return
    if any(pads):
        raise Refusal("a padded average pool whose output is quantized differently from its input")
    ch = x.shape[2]
    m, sh = mean_multiplier(x.scale, kernel[0] * kernel[1], out_q[1], _where(node))
    params = {"weight": c.add_constant(out_q[0] + ":ones", np.ones((ch, *kernel, 1), np.int8)),
              "bias": c.add_constant(out_q[0] + ":bias", np.zeros(ch, np.int32)),
              "multiplier": c.add_constant(out_q[0] + ":multiplier", np.full(ch, m, np.int32)),
              "shift": c.add_constant(out_q[0] + ":shift", np.full(ch, sh, np.int32))}
    c.emit("conv2d", [x.name], out_q, {"stride": stride, "padding": [0, 0, 0, 0], "dilation": [1, 1], "groups": ch,
                                       "input_zp": x.zero_point, "output_zp": zp_out, "act_min": -128,
                                       "act_max": 127}, params)


def mul(c: Converter, node: OnnxNode) -> None:
    """Mul (QDQ) / com.microsoft.QLinearMul: equal shapes or a per-channel gate, one dyadic requantization of
    ``s_a·s_b / s_out`` (ONNX Runtime multiplies in float: 1 LSB near ties)."""
    qlinear = node.op.endswith("QLinearMul")
    if qlinear:
        xa, xb = c.quantized(node.inputs[0]), c.quantized(node.inputs[3])
        out_q = c.output_quantization(node, False, (node.inputs[6], node.inputs[7] if len(node.inputs) > 7 else None))
    else:
        xa, xb = c.quantized(node.inputs[0]), c.quantized(node.inputs[1])
        out_q = c.output_quantization(node, True)
    if len(xa.shape) < len(xb.shape) or (xa.shape != xb.shape and math.prod(xa.shape) < math.prod(xb.shape)):
        xa, xb = xb, xa
    (m,), (sh,) = requant_params(xa.scale, [xb.scale], out_q[1], _where(node))
    c.emit("mul", [xa.name, xb.name], out_q, {"input_zps": [xa.zero_point, xb.zero_point], "multiplier": int(m),
                                             "shift": int(sh), "output_zp": out_q[2] - (128 if out_q[3] == "uint8"
                                                                                      else 0),
                                             "act_min": -128, "act_max": 127})


def f32(v) -> float:
    return float(np.float32(v))


CONVERTERS = {"Conv": conv, "QLinearConv": conv, "Gemm": gemm, "com.microsoft.QGemm": gemm, "MatMul": gemm,
              "QLinearMatMul": gemm, "Add": add, "com.microsoft.QLinearAdd": add, "MaxPool": max_pool,
              "GlobalAveragePool": spatial_mean, "com.microsoft.QLinearGlobalAveragePool": spatial_mean,
              "ReduceMean": spatial_mean, "Flatten": flatten, "Reshape": flatten, "Clip": elementwise,
              **{op: elementwise for op in ELEMENTWISE}, "com.microsoft.QLinearSigmoid": elementwise,
              "com.microsoft.QLinearLeakyRelu": elementwise, "Concat": concat, "com.microsoft.QLinearConcat": concat,
              "AveragePool": average_pool, "com.microsoft.QLinearAveragePool": average_pool, "Mul": mul,
              "com.microsoft.QLinearMul": mul}
