"""One converter per ONNX op (QDQ float form and QOperator form share it): the IR nodes it becomes. A converter
raises :class:`~.convert.Refusal` for what it cannot import; adding an op is a function and a row in
:data:`CONVERTERS`."""

from __future__ import annotations

import math

import numpy as np

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


def relu(c: Converter, node: OnnxNode) -> None:
    """Relu / Clip between a DequantizeLinear and a QuantizeLinear: the float function on every input code, rounded
    half to even at the output's scale (a ``lookup`` table)."""
    x = c.quantized(node.inputs[0])
    out_q = c.output_quantization(node, True)
    s_out, zp_out = out_q[1], out_q[2] - (128 if out_q[3] == "uint8" else 0)
    lo_f, hi_f = 0.0, math.inf
    if node.op == "Clip":
        lo_f = float(c.scalar(node.inputs[1], "min")) if len(node.inputs) > 1 and node.inputs[1] else -math.inf
        hi_f = float(c.scalar(node.inputs[2], "max")) if len(node.inputs) > 2 and node.inputs[2] else math.inf
    codes = np.arange(-128, 128, dtype=np.float64)
    real = np.clip((codes - x.zero_point) * f32(x.scale), lo_f, hi_f)
    table = np.clip(np.rint(real / f32(s_out)) + zp_out, -128, 127).astype(np.int8)
    c.emit("lookup", [x.name], out_q, {"input_min": -128}, {"table": c.add_constant(out_q[0] + ":table", table)})


def f32(v) -> float:
    return float(np.float32(v))


CONVERTERS = {"Conv": conv, "QLinearConv": conv, "Gemm": gemm, "com.microsoft.QGemm": gemm, "MatMul": gemm,
              "QLinearMatMul": gemm, "Add": add, "com.microsoft.QLinearAdd": add, "MaxPool": max_pool,
              "GlobalAveragePool": spatial_mean, "com.microsoft.QLinearGlobalAveragePool": spatial_mean,
              "ReduceMean": spatial_mean, "Flatten": flatten, "Reshape": flatten, "Relu": relu, "Clip": relu}
