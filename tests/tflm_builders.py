"""Single-op int8 TFLite models, built with tflite-micro's ``model_editor`` and run by TFLM's interpreter.

Every builder takes plain numpy weights and quantization parameters (float scales are used as float32,
exactly as the flatbuffer stores them) and returns the serialized ``.tflite`` bytes. Activations are
NHWC with batch 1; conv filters are OHWI, depthwise filters ``[1, KH, KW, IC*dm]``.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

OP = tfl.BuiltinOperator
PADDING = {"SAME": tfl.Padding.SAME, "VALID": tfl.Padding.VALID}
ACTIVATION = {"NONE": tfl.ActivationFunctionType.NONE, "RELU": tfl.ActivationFunctionType.RELU,
              "RELU6": tfl.ActivationFunctionType.RELU6}


def act_tensor(name: str, shape, scale: float, zero_point: int, dtype: int = tfl.TensorType.INT8) -> me.Tensor:
    """An int8 (or ``dtype``) activation tensor with per-tensor quantization."""
    return me.Tensor(shape=tuple(shape), dtype=dtype, name=name,
                     quantization=me.Quantization(scales=float(np.float32(scale)), zero_points=int(zero_point)))


def weight_tensor(name: str, data: np.ndarray, scales, axis: int) -> me.Tensor:
    """A constant int8 weight tensor, symmetric, quantized per channel along ``axis`` (or per tensor)."""
    scales = [float(s) for s in np.asarray(scales, dtype=np.float32).ravel()]
    return me.Tensor(shape=data.shape, dtype=tfl.TensorType.INT8, name=name, data=np.ascontiguousarray(data, np.int8),
                     quantization=me.Quantization(scales=scales, zero_points=[0] * len(scales), axis=axis))


def bias_tensor(name: str, data: np.ndarray, input_scale: float, weight_scales) -> me.Tensor:
    """A constant int32 bias (int64 when ``data`` is) with scale ``s_in * s_w[c]`` (per channel when the weights
    are)."""
    scales = [float(np.float32(input_scale) * np.float32(s)) for s in np.asarray(weight_scales).ravel()]
    wide = data.dtype == np.int64
    return me.Tensor(shape=data.shape, dtype=tfl.TensorType.INT64 if wide else tfl.TensorType.INT32, name=name,
                     data=np.ascontiguousarray(data, np.int64 if wide else np.int32),
                     quantization=me.Quantization(scales=scales, zero_points=[0] * len(scales), axis=0))


def single_op_model(opcode: int, options_type: int, options, inputs: list, output: me.Tensor,
                    graph_inputs: list) -> bytes:
    """Serialize a one-subgraph, one-operator model."""
    op = me.Operator(opcode=opcode, inputs=inputs, outputs=[output],
                     _fb=tfl.OperatorT(builtinOptionsType=options_type, builtinOptions=options))
    sg = me.Subgraph(operators=[op], inputs=graph_inputs, outputs=[output])
    return bytes(me.Model(subgraphs=[sg], description="intonly TFLM oracle").build())


def conv2d(in_shape, in_q, out_shape, out_q, weight, w_scales, bias, stride, dilation, padding, activation) -> bytes:
    """CONV_2D: ``weight`` OHWI int8 (``IC/groups`` input channels), per-channel scales on axis 0."""
    x = act_tensor("x", (1, *in_shape), *in_q)
    y = act_tensor("y", (1, *out_shape), *out_q)
    opts = tfl.Conv2DOptionsT(padding=PADDING[padding], strideH=stride[0], strideW=stride[1],
                              dilationHFactor=dilation[0], dilationWFactor=dilation[1],
                              fusedActivationFunction=ACTIVATION[activation])
    w = weight_tensor("w", weight, w_scales, axis=0)
    b = bias_tensor("b", bias, in_q[0], w_scales)
    return single_op_model(OP.CONV_2D, tfl.BuiltinOptions.Conv2DOptions, opts, [x, w, b], y, [x])


def depthwise_conv2d(in_shape, in_q, out_shape, out_q, weight, w_scales, bias, depth_multiplier, stride, dilation,
                     padding, activation) -> bytes:
    """DEPTHWISE_CONV_2D: ``weight`` is ``[1, KH, KW, IC*dm]`` int8, per-channel scales on axis 3."""
    x = act_tensor("x", (1, *in_shape), *in_q)
    y = act_tensor("y", (1, *out_shape), *out_q)
    opts = tfl.DepthwiseConv2DOptionsT(padding=PADDING[padding], strideH=stride[0], strideW=stride[1],
                                       depthMultiplier=depth_multiplier, dilationHFactor=dilation[0],
                                       dilationWFactor=dilation[1], fusedActivationFunction=ACTIVATION[activation])
    w = weight_tensor("w", weight, w_scales, axis=3)
    b = bias_tensor("b", bias, in_q[0], w_scales)
    return single_op_model(OP.DEPTHWISE_CONV_2D, tfl.BuiltinOptions.DepthwiseConv2DOptions, opts, [x, w, b], y, [x])


def fully_connected(k, in_q, out_q, weight, w_scales, bias, activation) -> bytes:
    """FULLY_CONNECTED on a ``[1, K]`` input: ``weight`` is ``[N, K]`` int8 (one scale, or one per output)."""
    x = act_tensor("x", (1, k), *in_q)
    y = act_tensor("y", (1, weight.shape[0]), *out_q)
    opts = tfl.FullyConnectedOptionsT(fusedActivationFunction=ACTIVATION[activation])
    w = weight_tensor("w", weight, w_scales, axis=0)
    b = bias_tensor("b", bias, in_q[0], w_scales)
    return single_op_model(OP.FULLY_CONNECTED, tfl.BuiltinOptions.FullyConnectedOptions, opts, [x, w, b], y, [x])


def add(shape, a_q, b_q, out_q, activation) -> bytes:
    """ADD of two int8 tensors of the same shape (no broadcasting)."""
    a = act_tensor("a", (1, *shape), *a_q)
    b = act_tensor("b", (1, *shape), *b_q)
    y = act_tensor("y", (1, *shape), *out_q)
    opts = tfl.AddOptionsT(fusedActivationFunction=ACTIVATION[activation])
    return single_op_model(OP.ADD, tfl.BuiltinOptions.AddOptions, opts, [a, b], y, [a, b])


def pool2d(opcode: int, in_shape, q, out_shape, kernel, stride, padding, activation,
           dtype: int = tfl.TensorType.INT8) -> bytes:
    """AVERAGE_POOL_2D or MAX_POOL_2D; input and output share the quantization ``q = (scale, zero_point)``."""
    x = act_tensor("x", (1, *in_shape), *q, dtype)
    y = act_tensor("y", (1, *out_shape), *q, dtype)
    opts = tfl.Pool2DOptionsT(padding=PADDING[padding], strideH=stride[0], strideW=stride[1],
                              filterHeight=kernel[0], filterWidth=kernel[1],
                              fusedActivationFunction=ACTIVATION[activation])
    return single_op_model(opcode, tfl.BuiltinOptions.Pool2DOptions, opts, [x], y, [x])


def average_pool2d(in_shape, q, out_shape, kernel, stride, padding, activation) -> bytes:
    return pool2d(OP.AVERAGE_POOL_2D, in_shape, q, out_shape, kernel, stride, padding, activation)


def softmax(shape, in_q, beta: float) -> bytes:
    """SOFTMAX over the last axis of an int8 tensor; the output has TFLite's fixed (1/256, -128)."""
    x = act_tensor("x", (1, *shape), *in_q)
    y = act_tensor("y", (1, *shape), 1 / 256, -128)
    return single_op_model(OP.SOFTMAX, tfl.BuiltinOptions.SoftmaxOptions, tfl.SoftmaxOptionsT(beta=beta), [x], y, [x])


def elementwise(opcode: int, shape, in_q, out_q, options_type: int = 0, options=None) -> bytes:
    """A one-input elementwise builtin (LOGISTIC, TANH, RELU, RELU6, LEAKY_RELU, HARD_SWISH, QUANTIZE) on int8."""
    x = act_tensor("x", (1, *shape), *in_q)
    y = act_tensor("y", (1, *shape), *out_q)
    return single_op_model(opcode, options_type, options, [x], y, [x])


def to_16x8(model: bytes) -> bytes:
    """The same graph in TFLite's 16x8 mode: every int8 activation (and a PADV2 value) becomes int16 with zero point
    0 and its scale divided by 256; constant weights stay int8 and biases as they are."""
    m = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(model, 0))
    sg = m.subgraphs[0]
    weighted = {OP.CONV_2D, OP.DEPTHWISE_CONV_2D, OP.FULLY_CONNECTED}
    weights = {op.inputs[1] for op in sg.operators                          # conv/depthwise/FC filters
               if max(m.operatorCodes[op.opcodeIndex].builtinCode,
                      m.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) in weighted}
    for i, t in enumerate(sg.tensors):
        if t.type != tfl.TensorType.INT8 or i in weights:
            continue
        t.type = tfl.TensorType.INT16
        q = t.quantization
        q.scale, q.zeroPoint = [float(np.float32(s / 256)) for s in q.scale], [0] * len(q.zeroPoint)
        data = m.buffers[t.buffer].data
        if data is not None and len(data):
            m.buffers[t.buffer].data = (np.frombuffer(bytes(data), np.int8).astype(np.int16) * 256).view(np.uint8)
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def widen_samples(batch: np.ndarray, rng) -> np.ndarray:
    """int8 samples as int16 codes of about the same real values: ``256 q`` plus a random low byte."""
    return (batch.astype(np.int16) * 256 + rng.integers(0, 256, batch.shape)).astype(np.int16)


def run_tflm(model: bytes, samples: list[list[np.ndarray]]) -> np.ndarray:
    """Run ``model`` once per sample (each a list of per-input arrays without batch dim); stack the outputs."""
    interp = runtime.Interpreter.from_bytes(model, arena_size=max(len(model) * 10, 1 << 16))
    outs = []
    for sample in samples:
        for i, arr in enumerate(sample):
            interp.set_input(np.ascontiguousarray(arr, np.int8)[None], i)
        interp.invoke()
        outs.append(np.array(interp.get_output(0))[0])
    return np.stack(outs)
