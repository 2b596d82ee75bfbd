"""A checked ONNX graph (:mod:`.reader`) in QDQ or QOperator form as an IntModel.

Both forms are first reduced to the same quantized operations: a QOperator node (``QLinearConv``,
``com.microsoft.QLinearAdd``, ``com.microsoft.QGemm``, ``QLinearMatMul``, ``com.microsoft.QLinearGlobalAveragePool``,
an integer ``MaxPool``) is one, and so is a float node whose inputs are all ``DequantizeLinear`` outputs and whose
output is read by one ``QuantizeLinear`` (the QDQ pattern ``onnxruntime.quantization.quantize_static`` writes). The
graph's ``QuantizeLinear`` of a float input and ``DequantizeLinear`` of an output become the IR's quantize and
dequantize nodes. Everything else is collected and refused at once (the nodes that read a refused node's result
are not reported again).

Numerics (docs/import.md#onnx): every rescale is a dyadic requantization of the real ratio of the float32 scales
(formed in float64), rounded half to even (the model's rounding is ``half_even``); ONNX Runtime's integer kernels
compute the same ratios in float32 and round the float32 product half to even, so an output can differ by 1 LSB
where the real value lies within float32 rounding of a tie. uint8 tensors are stored as int8 codes ``q - 128``
with zero point ``zp - 128`` (the same real values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..dyadic import add_multipliers, f64, quantize_multiplier, quantize_multipliers
from ..errors import ModelFileError, UnsupportedOpError
from ..graph_builder import GraphBuilder
from ..ir import IntModel, Node, TensorInfo
from ..ops.quantize import FORMS
from .reader import OnnxGraph, OnnxNode

ADD_LEFT_SHIFT = 20
IMAGE_PERM = [1, 2, 0]     # per-sample (C, H, W) -> stored (H, W, C)


class Refusal(Exception):
    """This node cannot be imported; the message says why."""


@dataclass
class Dequantized:
    """A float tensor that a DequantizeLinear made of ``source`` (a quantized tensor or an initializer)."""

    source: str
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int


@dataclass
class OnnxImport:
    """The imported model; for every ONNX integer tensor that became an IR tensor, its IR name; per IR tensor the
    code offset from ONNX's (128 for uint8, stored as int8)."""

    model: IntModel
    tensor_names: dict[str, str]
    offsets: dict[str, int]


class Converter(GraphBuilder):
    """The IR under construction, with the IR name of every ONNX integer tensor converted so far and the
    DequantizeLinear outputs seen (float name -> its quantized source)."""

    def __init__(self, graph: OnnxGraph, name: str):
        super().__init__()
        self.g, self.name = graph, name
        self.names: dict[str, str] = {}       # ONNX integer tensor -> IR tensor
        self.offsets: dict[str, int] = {}
        self.dq: dict[str, Dequantized] = {}
        self.quantizer = {n.inputs[0]: n for n in graph.nodes if n.op == "QuantizeLinear"}
        self.readers: dict[str, int] = {}
        for n in graph.nodes:
            for t in n.inputs:
                self.readers[t] = self.readers.get(t, 0) + 1

    # ---- tensors --------------------------------------------------------------------------------
    def scalar(self, name: str, what: str) -> np.ndarray:
        if name not in self.g.initializers:
            raise Refusal(f"{what} {name!r} is not a constant")
        return self.g.initializers[name]

    def qparams(self, scale_name: str, zp_name: str | None) -> tuple[float, int, str]:
        """One (scale, zero point, storage type) of an activation: float32 scale, int8/uint8 zero point."""
        s = self.scalar(scale_name, "scale").ravel()
        zp = self.scalar(zp_name, "zero point").ravel() if zp_name else np.zeros(1, np.uint8)
        if s.size != 1 or zp.size != 1:
            raise Refusal(f"activation quantization {scale_name!r} is per axis; activations need one scale")
        if zp.dtype.name not in ("int8", "uint8"):
            raise Refusal(f"zero point {zp_name!r} is {zp.dtype.name}; intonly imports int8 and uint8 activations")
        scale = float(np.float32(s[0]))
        if not (math.isfinite(scale) and scale > 0):
            raise Refusal(f"scale {scale_name!r} = {scale} is not a finite positive number")
        return scale, int(zp[0]), zp.dtype.name

    def define(self, onnx_name: str, scale: float, zp: int, kind: str, stored: tuple | None = None) -> TensorInfo:
        """The IR tensor of ONNX integer tensor ``onnx_name`` (NCHW images stored HWC; uint8 re-encoded as int8).
        Its shape is ONNX's where shape inference knows it, else ``stored`` (the IR op's output shape)."""
        shape = self.g.shapes.get(onnx_name)
        if shape is not None:
            if len(shape) < 2 or shape[0] != 1:
                raise Refusal(f"tensor {onnx_name!r} has shape {shape}; intonly imports batch-1 graphs")
            per_sample = tuple(shape[1:])
            stored = tuple(per_sample[i] for i in IMAGE_PERM) if len(per_sample) == 3 else per_sample
        elif stored is None:
            raise Refusal(f"tensor {onnx_name!r} has no known shape")
        offset = 128 if kind == "uint8" else 0
        info = TensorInfo(self.unique(onnx_name), "int8", tuple(stored), scale, zp - offset, 8, source=onnx_name,
                          layout="HWC" if len(stored) == 3 else "")
        self.tensors[info.name] = info
        self.names[onnx_name], self.offsets[info.name] = info.name, offset
        return info

    def quantized(self, float_or_int: str) -> TensorInfo:
        """The IR tensor behind an ONNX input: an integer tensor, or the float output of its DequantizeLinear."""
        if float_or_int in self.names:
            return self.tensors[self.names[float_or_int]]
        d = self.dq.get(float_or_int)
        if d is None or d.source not in self.names:
            raise Refusal(f"input {float_or_int!r} is neither a quantized tensor nor its DequantizeLinear")
        return self.tensors[self.names[d.source]]

    def output_quantization(self, node: OnnxNode, float_output: bool, scale_zp=None):
        """``(ONNX name, scale, zero point, storage type)`` of a node's quantized output: the QuantizeLinear that
        reads a float node's output, the node's own output with ``scale_zp`` (its scale and zero-point inputs) for a
        QLinear node, or its input's quantization for an integer data-movement node."""
        out = node.outputs[0]
        if float_output:
            q = self.quantizer.get(out)
            if q is None or self.readers.get(out, 0) != 1:
                raise Refusal(f"output {out!r} is not quantized by exactly one QuantizeLinear")
            return (q.outputs[0], *self.qparams(q.inputs[1], q.inputs[2] if len(q.inputs) > 2 else None))
        if scale_zp is not None:
            return (out, *self.qparams(*scale_zp))
        x = self.quantized(node.inputs[0])
        return out, x.scale, x.zero_point + self.offsets[x.name], "uint8" if self.offsets[x.name] else "int8"

    def emit(self, op: str, inputs: list[str], out_q, attrs: dict, params=None, step: str = "") -> TensorInfo:
        """Append the IR node and define its output tensor, shaped by the op's own shape rule."""
        from ..ops import infer_shape

        shapes = {r: tuple(self.constants[n].shape) for r, n in (params or {}).items()}
        try:
            stored = infer_shape(op, attrs, [self.tensors[t].shape for t in inputs], shapes)
        except ValueError as e:
            raise Refusal(str(e)) from None
        y = self.define(*out_q, stored)
        self.append(op, inputs, y, attrs, params, step)
        return y

    def weights(self, name: str, channels_axis: int) -> tuple[np.ndarray, np.ndarray]:
        """A constant int8 weight (symmetric: zero points 0) and its float32 scales, one per output channel."""
        d = self.dq.get(name)
        if d is not None:
            w, scales, zps, axis = self.g.initializers.get(d.source), d.scale, d.zero_point, d.axis
        else:
            w, scales, zps, axis = self.g.initializers.get(name), None, None, channels_axis
        if w is None or scales is None:
            raise Refusal(f"weight {name!r} is not a dequantized constant")
        return self.checked_weights(name, w, scales, zps, axis, channels_axis)

    def checked_weights(self, name, w, scales, zps, axis, channels_axis):
        if w.dtype != np.int8:
            raise Refusal(f"weight {name!r} is {w.dtype}; intonly imports int8 weights")
        if np.any(np.asarray(zps) != 0):
            raise Refusal(f"weight {name!r} has nonzero zero points")
        scales = np.asarray(scales, np.float32).ravel()
        channels = w.shape[channels_axis]
        if scales.size == 1:
            scales = np.repeat(scales, channels)
        elif scales.size != channels or axis % w.ndim != channels_axis:
            raise Refusal(f"weight {name!r}: {scales.size} scales on axis {axis}, expected {channels} on axis "
                          f"{channels_axis}")
        return w, scales

    def bias(self, name: str | None, channels: int) -> np.ndarray:
        if not name:
            return np.zeros(channels, np.int32)
        d = self.dq.get(name)
        arr = self.g.initializers.get(d.source if d is not None else name)
        if arr is None or arr.dtype != np.int32 or arr.shape != (channels,):
            raise Refusal(f"bias {name!r} is not an int32 constant of {channels} values")
        return arr



def import_graph(graph: OnnxGraph, name: str) -> OnnxImport:
    from .ops import CONVERTERS

    c = Converter(graph, name)
    refused: list[tuple[str, str]] = []
    inputs = []
    poisoned: set[str] = set()   # outputs of refused nodes: their readers are not reported again
    for node in graph.nodes:
        c.node_prefix = f"n{node.index}:{node.op}"
        sources = {c.dq[t].source if t in c.dq else t for t in node.inputs}
        if sources & poisoned:
            poisoned.update(node.outputs)
            poisoned.update(c.quantizer[o].outputs[0] for o in node.outputs if o in c.quantizer)
            continue
        try:
            if node.op == "QuantizeLinear" and node.inputs[0] in graph.inputs:
                q = c.define(node.outputs[0], *c.qparams(node.inputs[1], node.inputs[2] if len(node.inputs) > 2
                                                         else None))
                f = TensorInfo(c.unique(node.inputs[0]), "float32", tuple(graph.shapes[node.inputs[0]][1:]))
                c.tensors[f.name] = f
                inputs.append(f.name)
                c.nodes.append(Node(f"n{node.index}:quantize", "quantize", [f.name], [q.name],
                                    {"perm": IMAGE_PERM if len(q.shape) == 3 else [],
                                     "form": FORMS["onnx"]}))
            elif node.op == "QuantizeLinear":
                continue   # read with the node that produces its input
            elif node.op == "DequantizeLinear":
                scale = c.scalar(node.inputs[1], "scale")
                zp = c.scalar(node.inputs[2], "zero point") if len(node.inputs) > 2 and node.inputs[2] else \
                    np.zeros_like(scale, dtype=np.uint8)
                c.dq[node.outputs[0]] = Dequantized(node.inputs[0], scale, zp, int(node.attrs.get("axis", 1)))
            else:
                convert = CONVERTERS.get(node.op)
                if convert is None:
                    raise Refusal("op not supported")
                convert(c, node)
        except (KeyError, IndexError, ValueError, ZeroDivisionError, OverflowError, TypeError) as e:
            # attributes or initializers the checker lets through but no exporter writes
            raise ModelFileError(f"{graph.path}: {node.label}: inconsistent node data ({type(e).__name__}: {e})") \
                from None
        except Refusal as r:
            io = f"inputs {node.inputs} -> outputs {node.outputs}"
            refused.append((node.label, f"{r} ({io})"))
            poisoned.update(node.outputs)
            poisoned.update(c.quantizer[o].outputs[0] for o in node.outputs if o in c.quantizer)
    outputs = []
    for out in graph.outputs:
        d = c.dq.get(out)
        if d is None or d.source not in c.names:
            if not refused:
                refused.append((f"graph output {out!r}", "not the DequantizeLinear of a quantized tensor"))
            continue
        q = c.tensors[c.names[d.source]]
        f = TensorInfo(c.unique(out), "float32", tuple(graph.shapes[out][1:]))
        c.tensors[f.name] = f
        outputs.append(f.name)
        c.nodes.append(Node(f"dequantize:{q.name}", "dequantize", [q.name], [f.name],
                            {"perm": [2, 0, 1] if len(q.shape) == 3 else []}))
    if refused:
        raise UnsupportedOpError(refused)
    model = IntModel(name, "half_even", inputs, outputs, c.tensors, c.nodes, c.constants)
    model.validate(f"{graph.path} (imported)")
    return OnnxImport(model, dict(c.names), dict(c.offsets))


# ---- the arithmetic the op converters share -------------------------------------------------------------------

def requant_params(s_in: float, w_scales, s_out: float, where: str):
    return quantize_multipliers([f64(s_in) * f64(s) / f64(s_out) for s in np.asarray(w_scales).ravel()], where)


def add_params(sa: float, sb: float, s_out: float, where: str):
    return add_multipliers(sa, sb, s_out, ADD_LEFT_SHIFT, where)


def mean_multiplier(s_in: float, count: int, s_out: float, where: str) -> tuple[int, int]:
    return quantize_multiplier(f64(s_in) / (count * f64(s_out)), where)
