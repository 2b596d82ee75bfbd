"""Multi-operator int8 TFLite models built with tflite-micro's model editor from seeded random weights: the test
models for the importer beyond single ops (a MobileNetV3-style block with float input and output).

Output scales follow the accumulator's spread for random codes (``s_in · s_w · 128 · sqrt(fan_in)``: three standard
deviations of a sum of ``fan_in`` products of uniform codes land near the int8 range), so every tensor uses its range
rather than saturating.
"""

from __future__ import annotations

import math

import numpy as np

import tflm_builders as tflm

me, tfl, OP = tflm.me, tflm.tfl, tflm.OP


class Graph:
    """Tensors with their quantization, operators in order; :meth:`build` serializes the model."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.operators: list[me.Operator] = []
        self.q: dict[str, tuple[float, int]] = {}
        self.count = 0

    def tensor(self, shape, scale: float, zp: int, prefix: str = "t") -> me.Tensor:
        self.count += 1
        name = f"{prefix}{self.count}"
        self.q[name] = (float(np.float32(scale)), zp)
        return tflm.act_tensor(name, (1, *shape), scale, zp)

    def float_tensor(self, shape, name: str) -> me.Tensor:
        return me.Tensor(shape=(1, *shape), dtype=tfl.TensorType.FLOAT32, name=name)

    def add_op(self, opcode, inputs, output, options_type=0, options=None) -> me.Tensor:
        self.operators.append(me.Operator(opcode=opcode, inputs=inputs, outputs=[output],
                                          _fb=tfl.OperatorT(builtinOptionsType=options_type, builtinOptions=options)))
        return output

    def conv(self, x: me.Tensor, oc: int, k: int, stride: int = 1, activation: str = "NONE",
             depthwise: bool = False) -> me.Tensor:
        h, w, ic = x.shape[1:]
        s_in = self.q[x.name][0]
        fan_in = k * k * (1 if depthwise else ic)
        w_scales = [float(np.float32(self.rng.uniform(0.002, 0.02))) for _ in range(oc)]
        s_out = s_in * float(np.mean(w_scales)) * 128 * math.sqrt(fan_in)
        zp_out = -128 if activation != "NONE" else int(self.rng.integers(-20, 21))
        oh, ow = (h + stride - 1) // stride, (w + stride - 1) // stride
        y = self.tensor((oh, ow, oc), s_out, zp_out)
        bias = self.rng.integers(-2000, 2001, oc).astype(np.int32)
        if depthwise:
            weight = self.rng.integers(-127, 128, (1, k, k, oc)).astype(np.int8)
            opts = tfl.DepthwiseConv2DOptionsT(padding=tfl.Padding.SAME, strideH=stride, strideW=stride,
                                               depthMultiplier=oc // ic, dilationHFactor=1, dilationWFactor=1,
                                               fusedActivationFunction=tflm.ACTIVATION[activation])
            wt = tflm.weight_tensor(f"{y.name}_w", weight, w_scales, axis=3)
            kind, code = tfl.BuiltinOptions.DepthwiseConv2DOptions, OP.DEPTHWISE_CONV_2D
        else:
            weight = self.rng.integers(-127, 128, (oc, k, k, ic)).astype(np.int8)
            opts = tfl.Conv2DOptionsT(padding=tfl.Padding.SAME, strideH=stride, strideW=stride, dilationHFactor=1,
                                      dilationWFactor=1, fusedActivationFunction=tflm.ACTIVATION[activation])
            wt = tflm.weight_tensor(f"{y.name}_w", weight, w_scales, axis=0)
            kind, code = tfl.BuiltinOptions.Conv2DOptions, OP.CONV_2D
        return self.add_op(code, [x, wt, tflm.bias_tensor(f"{y.name}_b", bias, s_in, w_scales)], y, kind, opts)

    def unary(self, opcode, x: me.Tensor, scale: float, zp: int, options_type=0, options=None) -> me.Tensor:
        return self.add_op(opcode, [x], self.tensor(x.shape[1:], scale, zp), options_type, options)

    def build(self, inputs, outputs) -> bytes:
        sg = me.Subgraph(operators=self.operators, inputs=inputs, outputs=outputs)
        return bytes(me.Model(subgraphs=[sg], description="intonly test graph").build())


def mobilenet_v3_block(seed: int = 0, size: int = 8, channels: int = 8) -> bytes:
    """float input -> QUANTIZE -> 1x1 expand conv -> HARD_SWISH -> 3x3 depthwise -> HARD_SWISH -> squeeze-excite
    (MEAN over H, W; 1x1 conv + RELU; 1x1 conv; LOGISTIC; MUL broadcast over the image) -> 1x1 project conv -> ADD
    residual -> MEAN -> FULLY_CONNECTED -> SOFTMAX -> DEQUANTIZE -> float output."""
    g = Graph(seed)
    x_f = g.float_tensor((size, size, channels), "image")
    x = g.add_op(OP.QUANTIZE, [x_f], g.tensor((size, size, channels), 0.02, 3))
    e = g.conv(x, 2 * channels, 1)
    e = g.unary(OP.HARD_SWISH, e, g.q[e.name][0] * 0.6, -100)
    d = g.conv(e, 2 * channels, 3, depthwise=True)
    d = g.unary(OP.HARD_SWISH, d, g.q[d.name][0] * 0.6, -100)
    s_d, zp_d = g.q[d.name]
    pooled = g.add_op(OP.MEAN, [d, tflm_const("axes", [1, 2])], g.tensor((1, 1, 2 * channels), s_d * 0.5, zp_d),
                      tfl.BuiltinOptions.ReducerOptions, tfl.ReducerOptionsT(keepDims=True))
    squeeze = g.conv(pooled, channels // 2, 1, activation="RELU")
    excite = g.conv(squeeze, 2 * channels, 1)
    gate = g.unary(OP.LOGISTIC, excite, 1 / 256, -128)
    gated = g.add_op(OP.MUL, [d, gate], g.tensor((size, size, 2 * channels), s_d * 0.7, zp_d),
                     tfl.BuiltinOptions.MulOptions, tfl.MulOptionsT())
    p = g.conv(gated, channels, 1)
    s_x, s_p = g.q[x.name][0], g.q[p.name][0]
    res = g.add_op(OP.ADD, [p, x], g.tensor((size, size, channels), max(s_x, s_p) * 1.5, 0),
                   tfl.BuiltinOptions.AddOptions, tfl.AddOptionsT())
    s_r, zp_r = g.q[res.name]
    feat = g.add_op(OP.MEAN, [res, tflm_const("axes2", [1, 2])], g.tensor((channels,), s_r * 0.3, zp_r),
                    tfl.BuiltinOptions.ReducerOptions, tfl.ReducerOptionsT(keepDims=False))
    classes = 10
    fc_w = g.rng.integers(-127, 128, (classes, channels)).astype(np.int8)
    fc_scale = [0.01]
    s_feat = g.q[feat.name][0]
    logits = g.add_op(OP.FULLY_CONNECTED, [feat, tflm.weight_tensor("fc_w", fc_w, fc_scale, 0),
                                           tflm.bias_tensor("fc_b", np.zeros(classes, np.int32), s_feat, fc_scale)],
                      g.tensor((classes,), s_feat * 0.01 * 128 * math.sqrt(channels), 0),
                      tfl.BuiltinOptions.FullyConnectedOptions, tfl.FullyConnectedOptionsT())
    probs = g.unary(OP.SOFTMAX, logits, 1 / 256, -128, tfl.BuiltinOptions.SoftmaxOptions,
                    tfl.SoftmaxOptionsT(beta=1.0))
    out = g.add_op(OP.DEQUANTIZE, [probs], g.float_tensor((classes,), "probabilities"))
    return g.build([x_f], [out])


def tflm_const(name: str, values) -> me.Tensor:
    data = np.asarray(values, dtype=np.int32)
    return me.Tensor(shape=data.shape, dtype=tfl.TensorType.INT32, name=name, data=data)
