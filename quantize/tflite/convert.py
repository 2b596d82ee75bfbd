"""A checked TensorFlow Lite graph (:mod:`.reader`) as an IntModel with TFLite's exact integer numerics.

Each builtin has a converter in :data:`CONVERTERS` (``quantize/tflite/builtins.py``) that appends IR nodes
reproducing the reference kernels of TensorFlow Lite Micro bit for bit; a converter refuses what it cannot
reproduce by raising :class:`Refusal`, and every refusal and every builtin without a converter is collected
before one :class:`~quantize.errors.UnsupportedOpError` lists them all, with operator index and tensor names.

The IntModel's rounding is ``double`` (gemmlowp's, which TFLM uses by default); the graph inputs enter through a
``quantize`` node at the input tensor's own scale and zero point (float data ``s·(q - zp)`` maps back to ``q``
exactly), and every graph output leaves through a ``dequantize`` node. Shapes lose the batch dimension (TFLite's
first, which must be 1); image tensors stay NHWC, which is the IR's HWC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dyadic import f64
from ..errors import ModelFileError, UnsupportedOpError
from ..graph_builder import GraphBuilder
from ..ir import IntModel, Node, TensorInfo, storage_dtype
from ..ops.quantize import FORMS
from .fixedpoint import round_half_away
from .reader import Operator, Tensor, TFLiteGraph

ACTIVATION_TYPES = {"INT8": 8, "INT16": 16}


class Refusal(Exception):
    """A converter cannot reproduce this operator exactly; the message says why."""


@dataclass
class TFLiteImport:
    """The imported model; for every TFLite tensor index that became an IR tensor, its IR name; and per graph input
    whether the TFLite model takes it as float (quantized by a QUANTIZE at its input scale) rather than integer."""

    model: IntModel
    tensor_names: dict[int, str]
    float_inputs: list[bool]


class Builder(GraphBuilder):
    """The IR under construction, with the IR name of every TFLite tensor index converted so far."""

    def __init__(self, graph: TFLiteGraph, name: str):
        super().__init__()
        self.graph, self.name = graph, name
        self.names: dict[int, str] = {}
        self.inputs: list[str] = []

    def activation(self, index: int) -> TensorInfo:
        """The IR tensor of TFLite tensor ``index`` (an integer activation), created on first use."""
        if index in self.names:
            return self.tensors[self.names[index]]
        t = self.graph.tensors[index]
        bits = ACTIVATION_TYPES.get(t.type)
        if bits is None or t.data is not None:
            raise Refusal(f"{t.label} is {'a constant' if t.data is not None else t.type}; intonly imports int8 and "
                          "int16 activations")
        if t.scales is None or len(t.scales) != 1:
            raise Refusal(f"{t.label} has {'no' if t.scales is None else 'per-channel'} quantization; activations "
                          "need one scale and zero point")
        if len(t.shape) < 1 or t.shape[0] != 1:
            raise Refusal(f"{t.label} has shape {list(t.shape)}; intonly imports batch-1 graphs (first dimension 1)")
        zp = int(t.zero_points[0])
        info = TensorInfo(self.unique(t.name), storage_dtype(bits), tuple(t.shape[1:]) or (1,), float(t.scales[0]),
                          zp, bits, source=t.name)
        lo, hi = info.qrange()
        if not lo <= zp <= hi:
            raise ModelFileError(f"{self.graph.path}: {t.label}: zero point {zp} outside the {t.type} range")
        self.tensors[info.name] = info
        self.names[index] = info.name
        return info

    def constant(self, index: int, what: str) -> Tensor:
        """TFLite tensor ``index`` as a constant (its data present), or a refusal naming ``what`` it should be."""
        t = self.graph.tensor(index)
        if t is None or t.data is None:
            raise Refusal(f"{what} {'is omitted' if t is None else t.label + ' is not a constant'}")
        return t



def boundary_operators(graph: TFLiteGraph) -> tuple[dict[int, int], dict[int, int], set[int]]:
    """The float boundary TFLite converters leave when a model keeps float inputs or outputs: a FLOAT32 graph input
    read only by a QUANTIZE, a FLOAT32 graph output written by a DEQUANTIZE. Returns ``{float input: its quantized
    tensor}``, ``{float output: the integer tensor it dequantizes}`` and the indices of those operators; the IR's
    own quantize / dequantize nodes take their place."""
    readers: dict[int, list] = {}
    for op in graph.operators:
        for i in op.inputs:
            readers.setdefault(i, []).append(op)
    inputs, outputs, skipped = {}, {}, set()
    for index in graph.inputs:
        ops = readers.get(index, [])
        if graph.tensors[index].type == "FLOAT32" and len(ops) == 1 and ops[0].name == "QUANTIZE":
            inputs[index] = ops[0].outputs[0]
            skipped.add(ops[0].index)
    for op in graph.operators:
        if op.name == "DEQUANTIZE" and op.outputs and op.outputs[0] in graph.outputs and op.inputs:
            outputs[op.outputs[0]] = op.inputs[0]
            skipped.add(op.index)
    return inputs, outputs, skipped


def import_graph(graph: TFLiteGraph, name: str) -> TFLiteImport:
    from .builtins import CONVERTERS

    b = Builder(graph, name)
    refused: list[tuple[str, str]] = []
    float_inputs, float_outputs, skipped = boundary_operators(graph)
    for index in graph.inputs:
        try:
            q = b.activation(float_inputs.get(index, index))
        except Refusal as r:
            refused.append((f"graph input {index}", str(r)))
            continue
        f = TensorInfo(b.unique(q.name + ":float"), "float32", q.shape)
        b.tensors[f.name] = f
        b.inputs.append(f.name)
        b.nodes.append(Node(f"quantize:{q.name}", "quantize", [f.name], [q.name],
                             {"perm": [], "form": FORMS["tflite"]}))
    for op in graph.operators:
        if op.index in skipped:
            continue
        b.node_prefix = f"op{op.index}:{op.name}"
        where = f"operator {op.index} {op.name}"
        io = _describe_io(graph, op)
        builtin = CONVERTERS.get(op.name)
        if builtin is None:
            refused.append((where, f"builtin not supported ({io})"))
            continue
        check_operator(graph, op, builtin)
        try:
            builtin.convert(b, op)
        except Refusal as r:
            refused.append((where, f"{r} ({io})"))
        except (KeyError, IndexError, ValueError, ZeroDivisionError, OverflowError, TypeError) as e:
            # options or tensors that no TFLite writer produces (an enum out of range, a zero stride...)
            raise ModelFileError(f"{graph.path}: {where}: inconsistent operator data ({type(e).__name__}: {e}; "
                                 f"{io})") from None
    outputs = []
    for index in graph.outputs:
        source = float_outputs.get(index, index)
        if source not in b.names:
            if not refused:
                refused.append((f"graph output {index}", f"{graph.tensors[index].label} is not an integer tensor "
                                                         "any imported operator writes"))
            continue
        q = b.tensors[b.names[source]]
        f = TensorInfo(b.unique(q.name + ":float"), "float32", q.shape)
        b.tensors[f.name] = f
        outputs.append(f.name)
        b.nodes.append(Node(f"dequantize:{q.name}", "dequantize", [q.name], [f.name], {"perm": []}))
    if refused:
        raise UnsupportedOpError(refused)
    model = IntModel(name, "double", b.inputs, outputs, b.tensors, b.nodes, b.constants)
    model.validate(f"{graph.path} (imported)")
    return TFLiteImport(model, dict(b.names), [index in float_inputs for index in graph.inputs])


def check_operator(graph: TFLiteGraph, op: Operator, builtin) -> None:
    """The operator has the inputs, the one output and the options object its builtin's converter reads."""
    at = f"{graph.path}: operator {op.index} {op.name}"
    fewest, most = builtin.inputs
    if not fewest <= len(op.inputs) <= most or any(i < 0 for i in op.inputs[:fewest]):
        raise ModelFileError(f"{at}: {len(op.inputs)} inputs {op.inputs}; the builtin takes {fewest} to {most}, the "
                             f"first {fewest} present")
    if len(op.outputs) != 1:
        raise ModelFileError(f"{at}: {len(op.outputs)} outputs; the builtin writes one")
    got = type(op.options).__name__ if op.options is not None else None
    if builtin.options is not None and got != builtin.options:
        raise ModelFileError(f"{at}: builtin options {got or 'missing'}, expected {builtin.options[:-1]}")


def _describe_io(graph: TFLiteGraph, op: Operator) -> str:
    def names(idxs):
        return ", ".join(repr(graph.tensors[i].name) if i >= 0 else "-" for i in idxs)
    return f"inputs {names(op.inputs)} -> outputs {names(op.outputs)}"


# ---- TFLite's definitions the converters share -----------------------------------------------------------

def activation_range(fused: str, out: TensorInfo) -> tuple[int, int]:
    """TFLM ``CalculateActivationRangeQuantized``: ``zp + round(float32(f) / float32(scale))`` within the type."""
    lo, hi = out.qrange()

    def q(f: float) -> int:
        return out.zero_point + round_half_away(float(np.float32(f) / np.float32(out.scale)))
    if fused == "NONE":
        return lo, hi
    if fused == "RELU":
        return max(lo, q(0.0)), hi
    if fused == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if fused == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    raise Refusal(f"fused activation {fused} is not supported")


def same_padding(size: int, k: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """TFLite SAME: ``(out, before, after)`` with ``before = total // 2`` (ComputePaddingWithOffset)."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return out, total // 2, total - total // 2


def window_padding(padding: str, hw: tuple, kernel: tuple, stride: tuple, dilation: tuple) -> list[int]:
    """IR padding ``[top, left, bottom, right]`` for TFLite's SAME or VALID."""
    if padding == "VALID":
        return [0, 0, 0, 0]
    (_, top, bottom), (_, left, right) = (same_padding(hw[i], kernel[i], stride[i], dilation[i]) for i in (0, 1))
    return [top, left, bottom, right]


def effective_scales(s_in: float, w_scales, s_out: float) -> list[float]:
    """Per channel ``f64(s_in) * f64(s_w[c]) / f64(s_out)``, TFLM's PopulateConvolutionQuantizationParams."""
    return [f64(s_in) * f64(s) / f64(s_out) for s in np.asarray(w_scales, dtype=np.float32).ravel()]
