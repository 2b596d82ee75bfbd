"""Capture a PyTorch model as a torch.fx graph, fold BatchNorm, and check every op is supported.

The support table :data:`SUPPORTED` maps what a graph node calls (a module class, a function or a
method name) to the *kind* of op the lowering pass knows. Unsupported calls are all collected and
reported together, each with its module path and, where torch.fx recorded it, the source line.
"""

from __future__ import annotations

import copy
import operator
import re

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.experimental.optimization import fuse

from .errors import CaptureError, UnsupportedOpError
from .recurrent import RECURRENT, refusal
from .rewrite import (Conv1dAs2d, PaddedConv2d, ZeroInsertion, conv1ds, functional_convs, merge_zero_pads,
                      multihead_attention_refusal, multihead_attentions, pair, standalone_batchnorms,
                      transposed_conv_refusal, transposed_convs)

MODULE_KINDS = {
    nn.Conv2d: "conv", PaddedConv2d: "conv", Conv1dAs2d: "conv1d", ZeroInsertion: "zero_insert", nn.Linear: "linear",
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.Hardtanh: "hardtanh",
    nn.MaxPool2d: "maxpool", nn.AvgPool2d: "avgpool", nn.AdaptiveAvgPool2d: "adaptive_avgpool",
    nn.AdaptiveMaxPool2d: "adaptive_maxpool",
    nn.Flatten: "flatten", nn.Dropout: "identity", nn.Identity: "identity", nn.LayerNorm: "layernorm",
    nn.GroupNorm: "layernorm",
    nn.GELU: "gelu", nn.Sigmoid: "lookup", nn.Tanh: "lookup", nn.Hardswish: "lookup", nn.Hardsigmoid: "lookup",
    nn.SiLU: "lookup", nn.ELU: "lookup", nn.LeakyReLU: "lookup", nn.Softplus: "lookup", nn.Mish: "lookup",
    nn.PReLU: "lookup", nn.Upsample: "resize", nn.UpsamplingNearest2d: "resize", nn.Softmax: "softmax",
    nn.PixelShuffle: "pixel_shuffle", nn.PixelUnshuffle: "pixel_shuffle",
}
FUNCTION_KINDS = {
    operator.add: "add", operator.iadd: "add", torch.add: "add", F.relu: "relu", torch.relu: "relu",
    F.relu6: "relu6", torch.flatten: "flatten", torch.cat: "cat", torch.concat: "cat",
    F.adaptive_avg_pool2d: "adaptive_avgpool", F.adaptive_max_pool2d: "adaptive_maxpool", F.dropout: "identity", getattr: "shape",
    operator.getitem: "getitem", operator.neg: "neg", torch.neg: "neg", torch.negative: "neg", torch.mean: "mean",
    operator.sub: "sub", torch.sub: "sub", operator.mul: "mul", torch.mul: "mul", operator.truediv: "mul",
    torch.div: "mul", torch.true_divide: "mul",
    torch.sigmoid: "lookup", F.sigmoid: "lookup", torch.tanh: "lookup", F.tanh: "lookup", F.hardswish: "lookup",
    F.hardsigmoid: "lookup", F.silu: "lookup", F.elu: "lookup", F.leaky_relu: "lookup", F.softplus: "lookup",
    F.mish: "lookup", F.interpolate: "resize", torch.stack: "stack", torch.permute: "permute",
    torch.transpose: "permute", torch.swapaxes: "permute", torch.squeeze: "flatten", torch.unsqueeze: "flatten",
    F.softmax: "softmax", torch.softmax: "softmax", F.pixel_shuffle: "pixel_shuffle",
    F.pixel_unshuffle: "pixel_shuffle",
}
METHOD_KINDS = {"relu": "relu", "relu_": "relu", "add": "add", "add_": "add", "flatten": "flatten",
                "view": "flatten", "reshape": "flatten", "contiguous": "identity", "size": "shape",
                "expand": "expand", "neg": "neg", "negative": "neg", "mean": "mean", "sub": "sub",
                "mul": "mul", "div": "mul", "true_divide": "mul", "sigmoid": "lookup", "tanh": "lookup",
                "permute": "permute", "transpose": "permute", "swapaxes": "permute", "squeeze": "flatten",
                "unsqueeze": "flatten", "softmax": "softmax"}
# Leaf modules: a module class with ``intonly_kind`` is captured whole and lowered by the rule of that kind
# (quantize/lower.py); its float ``intermediates(*inputs)`` values are observed during calibration.
LEAF_KINDS = ("attention", "patch_embed", "bert_embeddings", "masked_mean")
ACTIVATIONS = ("relu", "relu6", "hardtanh")
# Module classes whose kind depends on their settings (op_kind), besides their MODULE_KINDS entry.
KIND_VARIANTS = {"prelu": ("torch.nn.PReLU",), "lookup": ("torch.nn.GELU",)}
# The IR ops the lowering of each kind may emit (quantize/lower.py, quantize/lower_transformer.py): the PyTorch
# frontend's column of the op support matrix (``intonly ops``). The lowering refuses to emit an op its kind does
# not list here, so the table cannot fall behind the rules. ``placeholder``/``output``: the graph's inputs and
# outputs; kinds absent here (identity, shape, constant, expand) emit nothing.
LOWERS_TO = {
    "placeholder": ("quantize",), "output": ("dequantize",),
    "conv": ("conv2d",), "conv1d": ("conv2d", "reshape"), "zero_insert": ("zero_insert",),
    "softmax": ("requantize", "shiftmax", "iexp_softmax"), "pixel_shuffle": ("reshape", "transpose"),
    "linear": ("dense",),
    "add": ("add", "negate", "constant", "requantize"),
    "relu": ("clamp",), "relu6": ("clamp",), "hardtanh": ("clamp",), "neg": ("negate",),
    "maxpool": ("maxpool",), "avgpool": ("avgpool",), "adaptive_avgpool": ("avgpool", "adaptive_avgpool"),
    "adaptive_maxpool": ("maxpool",),
    "mean": ("avgpool", "reshape"),
    "sub": ("negate", "add", "constant", "requantize"), "mul": ("negate", "requantize", "mul", "constant"),
    "lookup": ("lookup", "interp_lookup"), "prelu": ("clamp", "negate", "constant", "mul", "add"),
    "resize": ("resize_nearest", "resize_bilinear"),
    "flatten": ("reshape",), "permute": ("transpose", "reshape"), "cat": ("concat", "requantize", "constant"),
    "stack": ("concat", "requantize", "reshape"), "getitem": ("slice", "reshape"),
    "layernorm": ("layernorm", "reshape"), "gelu": ("shiftgelu", "igelu"),
    "attention": ("dense", "reshape", "transpose", "matmul", "mask_keys", "shiftmax", "iexp_softmax", "log2_softmax",
                  "shift_matmul"),
    "patch_embed": ("conv2d", "reshape"),
    "bert_embeddings": ("embedding", "constant", "slice", "add", "layernorm"),
    "masked_mean": ("mean_pool",),
}


def public_name(fn) -> str:
    """How a user writes the function ``fn``: ``operator.add``, ``torch.conv2d`` (not its C binding's
    ``torch._VariableFunctionsClass.conv2d``), ``torch.nn.functional.relu``."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or str(fn)
    module = getattr(fn, "__module__", None)
    if module == operator.__name__ or module == "_operator":
        return f"operator.{fn.__name__}"
    if name.startswith("_VariableFunctionsClass.") or (module is None and hasattr(torch, name)):
        return f"torch.{name.rpartition('.')[2]}"
    return f"{module}.{name}" if module else name


def _where(node: fx.Node) -> str:
    frames = [f for f in re.findall(r'File "([^"]+)", line (\d+)', node.meta.get("stack_trace") or "")
              if "/torch/" not in f[0]]
    return f" at {frames[-1][0]}:{frames[-1][1]}" if frames else ""


def op_kind(gm: fx.GraphModule, node: fx.Node) -> tuple[str | None, str]:
    """``(kind or None, description)`` of an fx node; ``kind`` None means unsupported."""
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        if getattr(mod, "intonly_kind", None) in LEAF_KINDS:
            return mod.intonly_kind, f"{type(mod).__module__}.{type(mod).__name__} ({mod.intonly_kind})"
        kind = MODULE_KINDS.get(type(mod))
        if kind == "gelu" and mod.approximate != "none":   # the tanh form: a table (the erf form: ShiftGELU/i-GELU)
            return "lookup", f"{type(mod).__module__}.{type(mod).__name__}(approximate={mod.approximate!r})"
        if kind in ("conv", "conv1d") and mod.padding_mode != "zeros":
            return None, f"Conv2d with padding_mode={mod.padding_mode!r} (only 'zeros')"
        if kind == "avgpool" and mod.ceil_mode and mod.count_include_pad and max(pair(mod.padding)) > 0:
            return None, ("AvgPool2d with ceil_mode=True, padding and count_include_pad=True (PyTorch counts the "
                          "padding but not the ceil_mode overhang)")
        if kind in ("maxpool", "adaptive_maxpool") and mod.return_indices:
            return None, f"{type(mod).__name__} with return_indices=True"
        if kind == "avgpool" and mod.divisor_override is not None:
            return None, "AvgPool2d with divisor_override"
        if kind == "lookup" and isinstance(mod, nn.PReLU) and mod.num_parameters != 1:
            return "prelu", f"{type(mod).__module__}.{type(mod).__name__}({mod.num_parameters})"
        if type(mod) is nn.ConvTranspose2d:
            why = transposed_conv_refusal(mod) or "an output_size argument"
            return None, f"ConvTranspose2d with {why}"
        if type(mod) is nn.MultiheadAttention:
            return None, f"MultiheadAttention with {multihead_attention_refusal(mod, node)}"
        if isinstance(mod, RECURRENT):
            return None, f"{type(mod).__name__} with {refusal(gm, node) or 'no example input to unroll it over'}"
        if type(mod) is nn.BatchNorm2d or type(mod) is nn.BatchNorm1d:
            return None, f"{type(mod).__name__} not directly after a Conv2d/Linear (cannot be folded)"
        return kind, f"{type(mod).__module__}.{type(mod).__name__}"
    if node.op == "call_function":
        return FUNCTION_KINDS.get(node.target), f"function {public_name(node.target)}"
    if node.op == "call_method":
        return METHOD_KINDS.get(node.target), f"method Tensor.{node.target}"
    if node.op == "get_attr":
        return "constant", f"parameter {node.target}"
    return node.op, node.op  # placeholder, output


class LeafTracer(fx.Tracer):
    """torch.fx tracer that keeps modules with an ``intonly_kind`` whole (besides torch.nn's own modules)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return getattr(m, "intonly_kind", None) in LEAF_KINDS or super().is_leaf_module(m, qualname)


def capture(model: nn.Module) -> fx.GraphModule:
    """Trace ``model`` (a copy, in eval mode) with torch.fx, turn functional convolutions into modules, fold
    Conv2d+BatchNorm2d / Linear+BatchNorm1d, turn the other BatchNorm2d into depthwise 1x1 convolutions, and merge
    zero paddings into the convolutions that read them (quantize/rewrite.py)."""
    model = copy.deepcopy(model).eval()
    tracer = LeafTracer()
    tracer.record_stack_traces = True  # so unsupported ops can be reported with their source line
    try:
        gm = fx.GraphModule(model, tracer.trace(model), type(model).__name__)
    except Exception as exc:  # torch.fx raises many types for data-dependent control flow
        raise CaptureError(f"torch.fx cannot capture {type(model).__name__} as a static graph: "
                           f"{type(exc).__name__}: {exc}") from None
    functional_convs(gm)
    transposed_convs(gm)
    multihead_attentions(gm)
    gm = fuse(gm, no_trace=True)
    conv1ds(gm)
    standalone_batchnorms(gm)
    merge_zero_pads(gm)
    return gm


def unsupported_nodes(gm: fx.GraphModule) -> dict[fx.Node, tuple[str, str]]:
    """Every node whose call no lowering rule knows, in graph order, with ``(module path or node name,
    description and source line)``. Indexing into an unsupported op's result is not listed again."""
    bad: dict[fx.Node, tuple[str, str]] = {}
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target is operator.getitem and node.args[0] in bad:
            continue
        kind, desc = op_kind(gm, node)
        if kind is None:
            path = node.target if node.op == "call_module" else node.name
            bad[node] = (str(path), desc + _where(node))
    return bad


def check_supported(gm: fx.GraphModule) -> None:
    """Raise :class:`UnsupportedOpError` listing every unsupported call (module path and source line). The
    shape-dependent refusals of the lowering come on top of these; :func:`quantize.lower.quantize` lists both."""
    bad = unsupported_nodes(gm)
    if bad:
        raise UnsupportedOpError(list(bad.values()))


class Recorder(fx.Interpreter):
    """Runs the fx graph and hands every floating tensor a node produces to ``sink(name, tensor)``; a leaf
    module's ``intermediates(*args)`` are handed over as ``"<node>.<key>"``."""

    def __init__(self, gm: fx.GraphModule, sink):
        super().__init__(gm)
        self.sink = sink

    def run_node(self, n):
        out = super().run_node(n)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            self.sink(n.name, out.detach())
        if n.op == "call_module" and hasattr(self.module.get_submodule(n.target), "intermediates"):
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            for key, value in self.module.get_submodule(n.target).intermediates(*args, **kwargs).items():
                self.sink(f"{n.name}.{key}", value.detach())
        return out


def as_inputs(data) -> list[np.ndarray]:
    """Calibration/evaluation data as a list of float32 arrays, one per graph input (batch first)."""
    arrays = list(data) if isinstance(data, (list, tuple)) else [data]
    return [np.asarray(a, dtype=np.float32) for a in arrays]


def run_recording(gm: fx.GraphModule, data, sink, batch_size: int = 64) -> None:
    """Feed ``data`` (one array, or a list with one array per input; batch first) through ``gm`` in batches,
    recording every float value."""
    xs = [torch.as_tensor(a) for a in as_inputs(data)]
    with torch.no_grad():
        for start in range(0, len(xs[0]), batch_size):
            Recorder(gm, sink).run(*(x[start:start + batch_size] for x in xs))
