"""Post-training quantization: captured float graph + calibration statistics -> IntModel.

Weights: per-output-channel symmetric, ``s_w[c] = max|W_c| / (2^(k-1)-1)``, ``q = clamp(rint(W/s_w))``
(rint = round half to even). With ``bias_correction`` (default) the float bias of every Conv2d/Linear first absorbs
the mean output error of its rounded weights on the calibration data (quantize/bias_correction.py).
Bias: int32 ``rint(b / (s_in*s_w[c]))``, at most ``BIAS_LIMIT`` = 2^30 in magnitude:
a channel whose bias would exceed it gets ``s_w[c] = |b| / (s_in * 2^30)`` instead (its weights are at least
2^30 / 127 times smaller than ``b / s_in``, a channel BatchNorm folding left "dead"; its output stays exact to
the bias' rounding, its weights become coarser or 0). With ``rounding="double"`` (TFLM's), a layer with an int16
input and int8 weights takes TFLite's 16x8 form: the same bias stored as int64, an int64 accumulator and TFLite's
16x8 requantization (quantize/ops/_weighted.py).
Activations: per tensor, range from the configured observer, qparams from
:func:`quantize.observers.choose_qparams`. Requant multipliers: ``s_in*s_w[c]/s_out`` via
:func:`quantize.dyadic.quantize_multiplier`. ReLU / ReLU6 / Hardtanh that directly follow a conv,
linear or add are folded into that op's output clamp; elsewhere they become a ``clamp`` node.
Layouts (:data:`STORAGE`): image tensors are HWC in the IR (the input ``quantize`` node permutes CHW -> HWC), a
Conv1d's (C, L) values are stored LC, everything else in PyTorch's order. Each rule converts an operand to the
layout it needs with one ``transpose``, made once per tensor (:meth:`_Lowering.in_layout`): flattening an image
transposes it back to CHW first (so PyTorch's flatten order is kept), a permute whose result is the stored memory
is a reshape, and outputs are permuted back to PyTorch's order by ``dequantize``.
"""

from __future__ import annotations

import copy
import math
import operator

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from .capture import ACTIVATIONS, LOWERS_TO, _where, capture, op_kind, run_recording, unsupported_nodes
from .config import QuantConfig
from .data_checks import checked_batch
from .dyadic import add_multipliers, f64, quantize_multiplier, quantize_multipliers
from .errors import DataError, IntonlyError, QuantizationError, UnsupportedOpError
from .bias_correction import InputMeans, corrected_bias
from .bounds import node_bounds, row_abs_sums, span
from .ir import IntModel, Node, TensorInfo, storage_dtype
from .ops import infer_shape
from .ops._weighted import MIN_SHIFT_16X8, accumulator_bounds
from .ops.quantize import FORMS
from .ops.interp_lookup import SEGMENT_SHIFT, TABLE_MARGIN, interpolate
from .lower_transformer import TransformerRules
from .observers import Observer, choose_qparams
from .recurrent import unroll_recurrent
from .equalization import equalize
from .rewrite import conv_padding, pair
from .widths import choose_widths
from .weights import quantize_weight

# Storage layouts: the PyTorch per-sample axis each stored axis holds. An image (C, H, W) is stored HWC; a Conv1d's
# (C, L) is stored LC; any other tensor ("", or "CHW" for a flattened image's intermediate) in PyTorch's order.
STORAGE = {"HWC": (1, 2, 0), "LC": (1, 0)}
BIAS_LIMIT = 2**30  # |int32 bias| at most this: the weights' share of the accumulator keeps the other 2^30


class _Lowering(TransformerRules):
    def __init__(self, gm: fx.GraphModule, cfg: QuantConfig, observers: dict, shapes: dict, name: str,
                 input_means: InputMeans | None = None, rescaled: set[str] = frozenset()):
        self.gm, self.cfg, self.obs, self.shapes, self.input_means = gm, cfg, observers, shapes, input_means
        self.rescaled = rescaled   # fx values cross-layer equalization changed: no longer the model's (no source)
        self.bits: dict[str, int] = choose_widths(gm, cfg, observers)
        self.constants: dict[str, np.ndarray] = {}  # fx name -> per-sample float value of a parameter used as data
        self.skipped: set[str] = set()  # fx values that are shapes, not tensors
        self.symmetric_values = {n.args[0].name for n in gm.graph.nodes if op_kind(gm, n)[0] == "gelu"}
        self.model = IntModel(name=name, rounding=cfg.rounding, inputs=[], outputs=[], tensors={}, nodes=[],
                              constants={})
        self.ir_of: dict[str, str] = {}  # fx node name -> IR tensor name
        self.fused: set[str] = set()     # activation fx nodes folded into their producer
        self.kind: str | None = None     # the kind of the fx node being lowered (capture.LOWERS_TO)
        self.node_names: set[str] = set()  # the IR nodes emitted so far
        self.constant_names: dict[tuple, str] = {}  # (dtype, shape, bytes) -> the constant holding them
        self.relayouts: dict[tuple[str, str], str] = {}  # (tensor, layout) -> the same values in that layout

    # ---- helpers -------------------------------------------------------------------------
    def tensor(self, name: str) -> TensorInfo:
        return self.model.tensors[self.ir_of[name]]

    def new_tensor(self, name, shape, scale, zp, source="", layout="", bits=None) -> TensorInfo:
        bits = bits or self.cfg.act_bits
        info = TensorInfo(name=name, dtype=storage_dtype(bits), shape=tuple(int(d) for d in shape),
                          scale=float(scale), zero_point=int(zp), bits=bits,
                          source="" if source in self.rescaled else source, layout=layout)
        self.model.tensors[name] = info
        return info

    def like(self, name: str, src: TensorInfo, shape=None, layout=None, source="") -> TensorInfo:
        return self.new_tensor(name, src.shape if shape is None else shape, src.scale, src.zero_point, source,
                               src.layout if layout is None else layout, src.bits)

    def emit(self, name, op, inputs, output, attrs, params=None) -> Node:
        if op not in LOWERS_TO.get(self.kind, ()):
            raise AssertionError(f"internal: the {self.kind!r} rule emitted {op!r}, which capture.LOWERS_TO does not "
                                 "list for it (add it there, so `intonly ops` shows the frontend)")
        return self.append(name, op, inputs, output, attrs, params)

    def append(self, name, op, inputs, output, attrs, params=None) -> Node:
        node = Node(name=name, op=op, inputs=list(inputs), outputs=[output], attrs=attrs, params=params or {})
        self.model.nodes.append(node)
        self.node_names.add(name)
        return node

    def in_layout(self, x: TensorInfo, layout: str) -> TensorInfo:
        """``x`` stored in ``layout`` (:data:`STORAGE`; "" is PyTorch's order): itself, or one ``transpose`` of it,
        made once per tensor and layout (converting back returns the original tensor)."""
        order = storage_order(x.layout, len(x.shape))
        if order == storage_order(layout, len(x.shape)):
            return x
        if (x.name, layout) not in self.relayouts:
            if layout in STORAGE and len(STORAGE[layout]) != len(x.shape):
                raise UnsupportedOpError([(x.source or x.name, f"a tensor of per-sample shape {self.pytorch_shape(x)}"
                                                               f" where a {layout} layout (rank {len(STORAGE[layout])})"
                                                               " is needed")])
            target = storage_order(layout, len(x.shape))
            perm = [order.index(axis) for axis in target]
            out = self.like(f"{x.name}_{layout.lower() or 'plain'}", x, [x.shape[p] for p in perm], layout=layout)
            self.append(out.name, "transpose", [x.name], out.name, {"perm": perm})
            self.relayouts[(x.name, layout)] = out.name
            self.relayouts[(out.name, x.layout)] = x.name
        return self.model.tensors[self.relayouts[(x.name, layout)]]

    def in_common_layout(self, tensors: list[TensorInfo]) -> list[TensorInfo]:
        """Operands of an elementwise op or a concat in one layout: an image's if one is an image, else a Conv1d
        sequence's if one is one, else PyTorch's order."""
        layouts = {t.layout for t in tensors if len(t.shape) == len(STORAGE.get(t.layout, ()))}
        layout = next((name for name in STORAGE if name in layouts), "")
        return [self.in_layout(t, layout) if len(t.shape) == len(STORAGE.get(layout, t.shape)) else t
                for t in tensors]

    @staticmethod
    def pytorch_axes(x: TensorInfo) -> tuple[int, ...]:
        """The PyTorch per-sample axis each stored axis of ``x`` holds."""
        return storage_order(x.layout, len(x.shape))

    @staticmethod
    def pytorch_shape(x: TensorInfo) -> tuple:
        order = storage_order(x.layout, len(x.shape))
        return tuple(x.shape[order.index(k)] for k in range(len(x.shape)))

    def bits_of(self, fx_name: str) -> int:
        return self.bits.get(fx_name, self.cfg.act_bits)

    def qparams_of(self, fx_name: str, symmetric: bool = False) -> tuple[float, int]:
        bits, symmetric = self.bits_of(fx_name), symmetric or self.cfg.act_symmetric
        lo, hi = self.obs[fx_name].range(bits, symmetric)
        return choose_qparams(lo, hi, bits, symmetric)

    def value_tensor(self, fx_name: str, shape, layout: str = "", symmetric: bool = False,
                     tensor_name: str | None = None) -> TensorInfo:
        """A new IR tensor (named ``fx_name`` unless given) for the float value ``fx_name``, with its calibrated
        qparams and chosen width."""
        scale, zp = self.qparams_of(fx_name, symmetric)
        return self.new_tensor(tensor_name or fx_name, shape, scale, zp, fx_name, layout, self.bits_of(fx_name))

    def fused_activation(self, node: fx.Node) -> tuple[fx.Node, tuple[float, float]]:
        """The node whose value the op's output represents (a sole activation user, folded), and its bounds."""
        users = list(node.users)
        if len(users) == 1:
            kind, _ = op_kind(self.gm, users[0])
            if kind in ACTIVATIONS:
                self.fused.add(users[0].name)
                return users[0], self.activation_bounds(users[0], kind)
        return node, (-math.inf, math.inf)

    def activation_bounds(self, node: fx.Node, kind: str) -> tuple[float, float]:
        if kind == "relu":
            return 0.0, math.inf
        if kind == "relu6":
            return 0.0, 6.0
        mod = self.gm.get_submodule(node.target)
        return float(mod.min_val), float(mod.max_val)

    def layer_weights(self, w: np.ndarray, x: TensorInfo, min_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`quantize_weight` at ``weight_bits``; with ``wide_weights`` the widest weights, up to 16 bits,
        that keep ``max_oc sum|w_q| * max|x - zp|`` below 2^30 at the input's actual width and zero point (the
        int32 proof's share for the products; the bias keeps the other 2^30)."""
        bits = self.cfg.weight_bits
        if self.cfg.wide_weights:
            x_span = span(self.model, x.name, x.zero_point)
            for wide in range(16, bits, -1):
                qw, s_w = quantize_weight(w, wide, min_scale)
                if int(row_abs_sums(qw).max()) * x_span < 2**30:
                    return qw, s_w
        return quantize_weight(w, bits, min_scale)

    @staticmethod
    def clamp_bounds(info: TensorInfo, bounds: tuple[float, float]) -> tuple[int, int]:
        """Integer clamp realising a float activation range on ``info``'s grid, within its bit range.
        As TFLM's CalculateActivationRangeQuantized: ``zp + round_half_away(float32(v) / float32(scale))``."""
        qmin, qmax = info.qrange()

        def on_grid(v: float) -> int:
            ratio = float(np.float32(v) / np.float32(info.scale))
            return info.zero_point + int(math.copysign(math.floor(abs(ratio) + 0.5), ratio))

        lo, hi = bounds
        act_min = qmin if lo == -math.inf else max(qmin, min(qmax, on_grid(lo)))
        act_max = qmax if hi == math.inf else min(qmax, max(qmin, on_grid(hi)))
        return act_min, act_max

    def input_qparams(self, name: str) -> tuple[float, int, int]:
        """``(scale, zp, bits)`` of a graph input: calibrated, or exact (scale 1) for integer-valued inputs such
        as token ids and attention masks."""
        obs = self.obs[name]
        if not obs.integral:
            return (*self.qparams_of(name), self.bits_of(name))
        for bits in (8, 16):
            if -(1 << (bits - 1)) <= obs.lo and obs.hi < 1 << (bits - 1):
                return 1.0, 0, bits
        raise UnsupportedOpError([(name, f"integer input with values up to {obs.hi:g} (at most 16-bit ids)")])

    def add_constant(self, name: str, arr: np.ndarray) -> str:
        """Store ``arr`` as constant ``name``, or return the name of an equal constant stored before (a layer
        called at every step of an unrolled LSTM keeps one copy of its weights)."""
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self.constant_names:
            self.model.constants[name] = arr
            self.constant_names[key] = name
        return self.constant_names[key]

    # ---- ops -----------------------------------------------------------------------------
    def weighted(self, node: fx.Node, mod, op: str):
        """conv2d / dense module: the output represents the node (or its fused activation)."""
        x = self.tensor(node.args[0].name)
        x = self.in_layout(x, "HWC" if op == "conv2d" and len(x.shape) == 3 else "")
        rep, bounds = self.fused_activation(node)
        out = self.value_tensor(rep.name, self.shape_of(rep, x.layout), x.layout,
                                symmetric=rep.name in self.symmetric_values)
        path = self.ir_name(node)
        input_mean = self.input_means.mean(node.name) if self.input_means is not None else None
        self.linear_layer(path, op, mod, x, out, bounds, input_mean=input_mean)
        self.ir_of[node.name] = self.ir_of[rep.name] = out.name

    def linear_layer(self, path: str, op: str, mod, x: TensorInfo, out: TensorInfo,
                     bounds=(-math.inf, math.inf), weight=None, bias=None, input_mean=None) -> Node:
        """conv2d / dense from float ``weight``/``bias`` (default: the module's): per-channel int weights,
        int32 bias (bias-corrected with ``input_mean``, :meth:`InputMeans.mean`, when given), per-channel dyadic
        requant into ``out``, fused clamp. Proves the int32 accumulator."""
        if op == "conv2d" and x.layout != "HWC":
            raise UnsupportedOpError([(path, f"Conv2d on a tensor of shape {x.shape} (needs C,H,W)")])
        w = (mod.weight if weight is None else weight).detach().double().numpy()
        b = mod.bias if bias is None and mod is not None else bias
        bias = b.detach().double().numpy() if b is not None else np.zeros(w.shape[0])
        # A channel whose bias would exceed BIAS_LIMIT at s_in * s_w (a "dead" channel after BatchNorm folding:
        # weights ~1e-9 beside a bias of ~1) gets the weight scale that holds its bias instead.
        qw, s_w = self.layer_weights(w, x, min_scale=np.abs(bias) / (f64(x.scale) * BIAS_LIMIT))
        if input_mean is not None:
            rounded = qw * s_w.astype(np.float64).reshape((-1,) + (1,) * (w.ndim - 1))
            bias = corrected_bias(bias, w, rounded, input_mean, int(mod.groups) if op == "conv2d" else 1)
        if op == "conv2d":
            qw = np.ascontiguousarray(qw.transpose(0, 2, 3, 1))  # OIHW -> OHWI
        s_acc = f64(x.scale) * s_w.astype(np.float64)
        qb = np.rint(bias / s_acc)   # |qb| <= 2^30 up to the float32 rounding of s_w
        if not np.all(np.abs(qb) <= 2**31 - 1):      # NaN or infinite weights or bias
            raise QuantizationError(f"{path}: bias or weights are not finite numbers")
        mult, shift = quantize_multipliers(s_acc / f64(out.scale), path)
        act_min, act_max = self.clamp_bounds(out, bounds)
        attrs = {"input_zp": x.zero_point, "output_zp": out.zero_point, "act_min": act_min, "act_max": act_max}
        if op == "conv2d":
            attrs.update(stride=pair(mod.stride), padding=conv_padding(mod), dilation=pair(mod.dilation),
                         groups=int(mod.groups))
        # TFLite's 16x8 form (quantize/ops/_weighted.py) where the config's rounding is TFLM's: an int64 bias, the
        # int64 accumulator and the 16x8 requant that TFLM's and CMSIS-NN's int16 x int8 kernels use
        tflite_16x8 = self.cfg.rounding == "double" and x.dtype == "int16" and qw.dtype == np.int8 and \
            int(shift.min(initial=MIN_SHIFT_16X8)) >= MIN_SHIFT_16X8
        params = {role: self.add_constant(f"{path}.{role}", arr) for role, arr in
                  (("weight", qw), ("bias", qb.astype(np.int64 if tflite_16x8 else np.int32)), ("multiplier", mult),
                   ("shift", shift))}
        ir_node = self.emit(path, op, [x.name], out.name, attrs, params)
        for b in accumulator_bounds(self.model, ir_node):
            if not b.holds:
                raise QuantizationError(f"{path}: the {b.what} can overflow (|acc| <= {b.value}); lower "
                                        "weight_bits/act_bits")
        return ir_node

    def conv1d(self, node: fx.Node):
        """``nn.Conv1d`` (a :class:`quantize.rewrite.Conv1dAs2d` after capture): its (C, L) input, stored LC, is the
        (1, L, C) image of a ``conv2d`` with a (1, k) kernel; the output image is stored LC again (``reshape``s
        only: consecutive Conv1d layers never transpose)."""
        x = self.tensor(node.args[0].name)
        if len(x.shape) != 2:
            raise UnsupportedOpError([(str(node.target), f"Conv1d on a tensor of per-sample shape {x.shape} "
                                                         "(needs C, L)")])
        x = self.in_layout(x, "LC")
        image = self.tensor_as(x, (1, *x.shape), "HWC")
        rep, bounds = self.fused_activation(node)
        channels, length = self.shapes[rep.name]
        result = self.value_tensor(rep.name, (1, length, channels), "HWC", tensor_name=f"{rep.name}_image")
        result.source = ""
        input_mean = self.input_means.mean(node.name) if self.input_means is not None else None
        self.linear_layer(self.ir_name(node), "conv2d", self.gm.get_submodule(node.target), image, result, bounds,
                          input_mean=input_mean)
        out = self.tensor_as(result, (length, channels), "LC", rep.name)
        self.ir_of[node.name] = self.ir_of[rep.name] = out.name

    def tensor_as(self, x: TensorInfo, shape, layout: str, name: str | None = None) -> TensorInfo:
        """A ``reshape`` of ``x`` to ``shape`` in ``layout`` (same memory; made once per tensor and layout unless
        ``name`` gives the new tensor, the fx value it represents)."""
        key = (x.name, f"{layout}{tuple(shape)}")
        if name is None and key in self.relayouts:
            return self.model.tensors[self.relayouts[key]]
        out = self.like(name or f"{x.name}_{layout.lower() or 'as'}_{'x'.join(map(str, shape))}", x, shape,
                        layout=layout, source=name or "")
        self.emit(out.name, "reshape", [x.name], out.name, {"shape": list(shape)})
        if name is None:
            self.relayouts[key] = out.name
        return out

    def shape_of(self, node: fx.Node, layout: str = "HWC") -> tuple:
        """Per-sample IR shape of an fx value stored in ``layout`` (default: HWC for a 3-D value)."""
        shape = self.shapes[node.name]
        order = storage_order(layout, len(shape)) if len(STORAGE.get(layout, shape)) == len(shape) else None
        return tuple(shape[k] for k in order) if order else shape

    def add(self, node: fx.Node, subtract: bool = False):
        """``x + alpha * y`` of two tensors: the integer ``add`` with y's multiplier taken at scale
        ``|alpha| * s_y``; ``x - alpha * y`` (``subtract``) and a negative alpha: ``negate(y)`` first (exact, on
        y's scale). A tensor and a number: :meth:`add_number`."""
        a, b = node.args[:2]
        alpha = node.kwargs.get("alpha", 1)
        if len(node.args) > 2 or set(node.kwargs) - {"alpha"} or not _finite_number(alpha) or alpha == 0:
            what = "subtraction" if subtract else "add"
            raise UnsupportedOpError([(node.name, f"{what} needs two tensor operands or a tensor and a finite "
                                                  "number, and a nonzero finite alpha")])
        if sum(isinstance(t, fx.Node) for t in (a, b)) == 1 and all(isinstance(t, fx.Node) or _finite_number(t)
                                                                    for t in (a, b)):
            if isinstance(b, fx.Node) and alpha != 1:
                raise UnsupportedOpError([(node.name, "a number plus alpha times a tensor")])
            return self.add_number(node, a, b * alpha if not isinstance(b, fx.Node) else b, subtract)
        if not all(isinstance(t, fx.Node) for t in (a, b)):
            raise UnsupportedOpError([(node.name, "add or subtraction of two numbers")])
        rep, bounds = self.fused_activation(node)
        bits = self.bits_of(node.name)
        ta, tb = self.in_common_layout([self.operand(t, f"{node.name}.operand{i}", bits) for i, t in enumerate((a, b))])
        if subtract != (alpha < 0):
            tb = self.negated(f"{node.name}_negated", tb)
        out = self.value_tensor(rep.name, ta.shape, ta.layout)
        self.add_tensors(node.name, ta, tb, out, bounds, b_factor=abs(alpha))
        self.ir_of[node.name] = self.ir_of[rep.name] = out.name

    def add_tensors(self, name: str, ta: TensorInfo, tb: TensorInfo, out: TensorInfo,
                    bounds=(-math.inf, math.inf), b_factor: float = 1.0) -> None:
        """TFLM-style integer add of ``a + b_factor * b`` into ``out`` (left shift 20 up to 8 bits, else 15)."""
        left = 20 if max(ta.bits, tb.bits, out.bits) <= 8 else 15
        mults, shifts = add_multipliers(ta.scale, tb.scale * b_factor, out.scale, left, name)
        act_min, act_max = self.clamp_bounds(out, bounds)
        self.emit(name, "add", [ta.name, tb.name], out.name,
                  {"input_zps": [ta.zero_point, tb.zero_point], "left_shift": left, "multipliers": mults,
                   "shifts": shifts, "output_zp": out.zero_point, "act_min": act_min, "act_max": act_max})

    def pool(self, node: fx.Node, kind: str):
        """MaxPool2d, AvgPool2d (also ``ceil_mode``), AdaptiveAvgPool2d (uneven windows: ``adaptive_avgpool``) and
        AdaptiveMaxPool2d (evenly dividing windows) on an image."""
        x = self.in_layout(self.tensor(node.args[0].name), "HWC")
        h, w, _ = x.shape
        adaptive = kind.startswith("adaptive")
        if adaptive:
            size = self.gm.get_submodule(node.target).output_size if node.op == "call_module" else node.args[1]
            size = (size, size) if isinstance(size, int) else tuple(size)
            oh, ow = (d if d is not None else full for d, full in zip(size, (h, w)))
            if (h % oh or w % ow) and kind == "adaptive_maxpool":
                raise UnsupportedOpError([(self.ir_name(node), f"AdaptiveMaxPool2d {h}x{w} -> {oh}x{ow} (only evenly "
                                                               "dividing windows)")])
            if h % oh or w % ow:   # PyTorch's uneven windows
                out = self.like(node.name, x, (oh, ow, x.shape[2]), source=node.name)
                qmin, qmax = x.qrange()
                self.emit(self.ir_name(node), "adaptive_avgpool", [x.name], out.name,
                          {"output_size": [oh, ow], "act_min": qmin, "act_max": qmax})
                self.ir_of[node.name] = out.name
                return
            kernel, stride, pads, include_pad = [h // oh, w // ow], [h // oh, w // ow], [0, 0, 0, 0], 1
        else:
            mod = self.gm.get_submodule(node.target)
            kernel = pair(mod.kernel_size)
            stride = pair(mod.stride if mod.stride is not None else mod.kernel_size)
            ph, pw = pair(mod.padding)
            pads = [ph, pw, ph, pw]
            include_pad = int(getattr(mod, "count_include_pad", 1))
        out = self.like(node.name, x, self.shape_of(node), source=node.name)
        name = str(node.target) if node.op == "call_module" else node.name
        dil = pair(self.gm.get_submodule(node.target).dilation) if kind == "maxpool" else [1, 1]
        if not adaptive:
            # ceil_mode: the windows PyTorch adds at the bottom/right read past the input and its padding; that
            # overhang becomes extra padding, which never wins a max and which an average does not count
            # (capture refuses an average that would count the explicit padding but not the overhang)
            oh, ow = out.shape[:2]
            extra = [(oh - 1) * stride[0] + dil[0] * (kernel[0] - 1) + 1 - h - pads[0] - pads[2],
                     (ow - 1) * stride[1] + dil[1] * (kernel[1] - 1) + 1 - w - pads[1] - pads[3]]
            pads[2], pads[3] = pads[2] + max(extra[0], 0), pads[3] + max(extra[1], 0)
            include_pad = include_pad and max(extra) <= 0
        if kind in ("maxpool", "adaptive_maxpool"):
            self.emit(name, "maxpool", [x.name], out.name, {"kernel": kernel, "stride": stride, "padding": pads,
                                                             "dilation": dil})
        else:
            qmin, qmax = x.qrange()
            self.emit(name, "avgpool", [x.name], out.name,
                      {"kernel": kernel, "stride": stride, "padding": pads, "count_include_pad": int(include_pad),
                       "pad_value": x.zero_point, "act_min": qmin, "act_max": qmax})
        self.ir_of[node.name] = out.name

    def add_number(self, node: fx.Node, a, b, subtract: bool):
        """``x + c``, ``c + x``, ``x - c``, ``c - x`` for a number c: one ``requantize`` (after an exact ``negate``
        for ``c - x``) whose output zero point is shifted by ``rint(c / s_y)``: ``y = R(x - zp_x; s_x/s_y) + zp_y +
        rint(c / s_y)``. The output's range is the calibrated one widened to contain c, so the shifted zero point
        stays inside it."""
        tensor, number = (a, b) if isinstance(a, fx.Node) else (b, a)
        constant = float(number) * (-1 if subtract and tensor is a else 1)
        x = self.tensor(tensor.name)
        if subtract and tensor is b:
            x = self.negated(f"{node.name}_negated", x)
        rep, bounds = self.fused_activation(node)
        bits, symmetric = self.bits_of(rep.name), self.cfg.act_symmetric
        lo, hi = self.obs[rep.name].range(bits, symmetric)
        scale, zp = choose_qparams(min(lo, constant), max(hi, constant), bits, symmetric)
        out = self.new_tensor(rep.name, x.shape, scale, zp, rep.name, x.layout, bits)
        qmin, qmax = out.qrange()
        shifted = int(min(max(zp + np.rint(constant / f64(scale)), qmin), qmax))
        mult, shift = quantize_multiplier(f64(x.scale) / f64(scale), node.name)
        act_min, act_max = self.clamp_bounds(out, bounds)
        self.emit(node.name, "requantize", [x.name], out.name,
                  {"multiplier": mult, "shift": shift, "input_zp": x.zero_point, "output_zp": shifted,
                   "act_min": act_min, "act_max": act_max})
        self.ir_of[node.name] = self.ir_of[rep.name] = out.name

    def sub(self, node: fx.Node):
        self.add(node, subtract=True)

    def negated(self, name: str, x: TensorInfo) -> TensorInfo:
        """A ``negate`` node: ``-x`` on x's scale and bits, exactly (``output_zp = -1 - input_zp``)."""
        out = self.like(name, x)
        out.zero_point = -1 - x.zero_point
        qmin, qmax = out.qrange()
        self.emit(name, "negate", [x.name], out.name, {"input_zp": x.zero_point, "output_zp": out.zero_point,
                                                       "act_min": qmin, "act_max": qmax})
        return out

    def mul(self, node: fx.Node):
        """``x * y`` of two tensors: the integer ``mul`` (the operand with fewer elements broadcast, as a
        squeeze-and-excitation gate). ``x * c`` / ``c * x`` for a nonzero number ``c``: ``requantize`` from x's
        scale times ``|c|`` to the calibrated output's (after an exact ``negate`` when ``c < 0``)."""
        a, b = node.args[:2]
        if node.target in DIVISIONS:   # x / c: a product with 1/c (a tensor divisor is refused below)
            b = 1.0 / b if _finite_number(b) and b != 0 else b
        elif len(node.args) == 2 and not node.kwargs and all(isinstance(t, fx.Node) for t in (a, b)):
            return self.tensor_product(node, a, b)
        tensor, factor = (a, b) if isinstance(a, fx.Node) else (b, a)
        if len(node.args) > 2 or node.kwargs or not isinstance(tensor, fx.Node) or not _finite_number(factor) or \
                factor == 0:
            raise UnsupportedOpError([(node.name, "multiplication or division by zero or by something other than a "
                                                  "tensor or a number (no keyword arguments)")])
        x = self.tensor(tensor.name)
        if factor < 0:
            x = self.negated(f"{node.name}_negated", x)
        out = self.value_tensor(node.name, x.shape, x.layout)
        mult, shift = quantize_multiplier(f64(x.scale) * abs(factor) / f64(out.scale), node.name)
        qmin, qmax = out.qrange()
        self.emit(node.name, "requantize", [x.name], out.name,
                  {"multiplier": mult, "shift": shift, "input_zp": x.zero_point, "output_zp": out.zero_point,
                   "act_min": qmin, "act_max": qmax})
        self.ir_of[node.name] = out.name

    def ir_name(self, node: fx.Node) -> str:
        """The IR node name of an fx node: its module path (a module called more than once: the later calls get
        ``path@<fx node>``, unique), or the fx node's own name."""
        if node.op != "call_module":
            return node.name
        path = str(node.target)
        return f"{path}@{node.name}" if path in self.node_names else path

    def lookup(self, node: fx.Node):
        """An elementwise float function of one tensor (Sigmoid, Tanh, Hardswish, SiLU, ELU, LeakyReLU, ...) as a
        ``lookup`` table: the node's own module or function evaluated in float64 at every input code, rounded half
        to even onto the calibrated output's grid and clamped to its range (quantize/ops/lookup.py). An input above
        8 bits gets the smallest ``interp_lookup`` table (every ``2^s``-th code, interpolated) whose output is within
        1 LSB of that exact table on every input code, checked here on all of them (quantize/ops/interp_lookup.py)."""
        extra = [*node.args[1:], *node.kwargs.values()]
        if any(isinstance(a, fx.Node) for a in extra):
            raise UnsupportedOpError([(self.ir_name(node), "elementwise function of several tensors")])
        x = self.tensor(node.args[0].name)
        out = self.value_tensor(node.name, x.shape, x.layout)
        qmin, qmax = x.qrange()
        # an interpolated table's boundaries may start below qmin and end past qmax
        margin = (1 << SEGMENT_SHIFT.hi) if x.bits > 8 else 0
        codes = np.arange(qmin - margin, qmax + 1 + margin, dtype=np.float64)
        values = torch.from_numpy((codes - x.zero_point) * f64(x.scale))
        with torch.no_grad():
            if node.op == "call_module":
                result = copy.deepcopy(self.gm.get_submodule(node.target)).double()(values)
            elif node.op == "call_method":
                result = getattr(values, node.target)(*node.args[1:], **node.kwargs)
            else:
                result = node.target(values, *node.args[1:], **node.kwargs)
        lo, hi = out.qrange()
        unclamped = np.clip(np.rint(result.numpy() / f64(out.scale)) + out.zero_point, lo - TABLE_MARGIN,
                            hi + TABLE_MARGIN).astype(np.int64)
        name = self.ir_name(node)
        exact = np.clip(unclamped[margin:margin + qmax - qmin + 1], lo, hi)
        inputs = np.arange(qmin, qmax + 1)
        for shift, origin in interp_layouts(qmin, x.zero_point) if x.bits > 8 else ():
            start = origin - (qmin - margin)
            coarse = unclamped[start::1 << shift][:((qmax - origin) >> shift) + 2].astype(np.int32)
            if np.abs(np.clip(interpolate(inputs, coarse, origin, shift), lo, hi) - exact).max() <= 1:
                self.emit(name, "interp_lookup", [x.name], out.name,
                          {"input_min": origin, "segment_shift": shift, "act_min": lo, "act_max": hi},
                          {"table": self.add_constant(f"{name}.table", coarse)})
                break
        else:
            self.emit(name, "lookup", [x.name], out.name, {"input_min": qmin},
                      {"table": self.add_constant(f"{name}.table", exact.astype(out.dtype))})
        self.ir_of[node.name] = out.name

    def prelu(self, node: fx.Node):
        """``nn.PReLU`` with one slope per channel: ``relu(x) - a_c * relu(-x)``: two clamps at the zero point (one
        after an exact ``negate``), a ``mul`` by the slopes (an int8 constant broadcast over the channel axis,
        stored last), and the ``add`` of the first clamp and the negated product. The intermediate ranges follow
        from x's (no calibration needed): the product lies in ``[min(0, m a_min), max(0, m a_max)]`` with ``m`` the
        largest value of ``relu(-x)``."""
        x = self.tensor(node.args[0].name)
        x = self.in_layout(x, {3: "HWC", 2: "LC"}.get(len(x.shape), ""))
        slopes = self.gm.get_submodule(node.target).weight.detach().double().numpy()
        name, bits, qmax = self.ir_name(node), self.bits_of(node.name), x.qrange()[1]
        positive = self.derived(f"{name}.positive", x, x.shape, "clamp", {"act_min": x.zero_point, "act_max": qmax},
                                x.layout)
        flipped = self.negated(f"{name}.negated", x)
        negative = self.derived(f"{name}.negative", flipped, x.shape, "clamp",
                                {"act_min": flipped.zero_point, "act_max": qmax}, x.layout)
        slope = self.constant_tensor(f"{name}.slopes", slopes.reshape((1,) * (len(x.shape) - 1) + (-1,)), 8)
        largest = (qmax - flipped.zero_point) * f64(flipped.scale)
        scale, zp = choose_qparams(min(0.0, largest * slopes.min()), max(0.0, largest * slopes.max()), bits,
                                   self.cfg.act_symmetric)
        product = self.new_tensor(f"{name}.product", x.shape, scale, zp, "", x.layout, bits)
        lo, hi = product.qrange()
        mult, shift = quantize_multiplier(f64(negative.scale) * f64(slope.scale) / f64(scale), name)
        self.emit(product.name, "mul", [negative.name, slope.name], product.name,
                  {"input_zps": [negative.zero_point, slope.zero_point], "multiplier": mult, "shift": shift,
                   "output_zp": zp, "act_min": lo, "act_max": hi})
        out = self.value_tensor(node.name, x.shape, x.layout)
        self.add_tensors(name, positive, self.negated(f"{name}.product_negated", product), out)
        self.ir_of[node.name] = out.name

    def tensor_product(self, node: fx.Node, a: fx.Node, b: fx.Node):
        ta, tb = self.in_common_layout([self.operand(t, f"{node.name}.operand{i}", self.bits_of(node.name))
                                        for i, t in enumerate((a, b))])
        if math.prod(tb.shape) > math.prod(ta.shape):
            ta, tb = tb, ta
        try:
            infer_shape("mul", {}, [ta.shape, tb.shape], {})
        except ValueError:
            raise UnsupportedOpError([(node.name, f"product of tensors of per-sample shapes {self.shapes[a.name]} and "
                                                  f"{self.shapes[b.name]} (equal, or one broadcast over the other's "
                                                  "leading axes, as a per-channel gate)")]) from None
        rep, bounds = self.fused_activation(node)
        out = self.value_tensor(rep.name, ta.shape, ta.layout)
        mult, shift = quantize_multiplier(f64(ta.scale) * f64(tb.scale) / f64(out.scale), node.name)
        act_min, act_max = self.clamp_bounds(out, bounds)
        ir_node = self.emit(node.name, "mul", [ta.name, tb.name], out.name,
                            {"input_zps": [ta.zero_point, tb.zero_point], "multiplier": mult, "shift": shift,
                             "output_zp": out.zero_point, "act_min": act_min, "act_max": act_max})
        for bound in node_bounds(self.model, ir_node):
            if not bound.holds:   # operands the width rule could not narrow (read through a width-preserving op)
                raise QuantizationError(f"{node.name}: the int32 product {bound.what} can reach {bound.value} with "
                                        f"{ta.bits}- and {tb.bits}-bit operands; lower act_bits")
        self.ir_of[node.name] = self.ir_of[rep.name] = out.name

    def pixel_shuffle(self, node: fx.Node):
        """``nn.PixelShuffle(r)`` / ``F.pixel_shuffle`` (``y[c, h r + i, w r + j] = x[c r^2 + i r + j, h, w]``) and
        ``nn.PixelUnshuffle(r)`` / ``F.pixel_unshuffle`` (its inverse) on the HWC storage: data movement as two
        rank-4 ``transpose``s between ``reshape``s, through (H, W, r, r, C) = ``[h, w, i, j, c]``."""
        x = self.in_layout(self.tensor(node.args[0].name), "HWC")
        if node.op == "call_module":
            mod = self.gm.get_submodule(node.target)
            shuffle, r = isinstance(mod, nn.PixelShuffle), getattr(mod, "upscale_factor", None) or mod.downscale_factor
        else:
            shuffle, r = node.target is F.pixel_shuffle, node.args[1] if len(node.args) > 1 else next(
                iter(node.kwargs.values()))
        name, (h, w, c) = self.ir_name(node), x.shape
        steps = ([((h * w, c // (r * r), r, r), [0, 2, 3, 1]), ((h, w, r, r * (c // (r * r))), [0, 2, 1, 3])] if shuffle
                 else [((h // r, r, w // r, r * c), [0, 2, 1, 3]), ((h // r * (w // r), r, r, c), [0, 3, 1, 2])])
        for k, (shape, perm) in enumerate(steps):
            x = self.derived(f"{name}_split{k}", x, shape, "reshape", {"shape": list(shape)})
            x = self.derived(f"{name}_moved{k}", x, [shape[p] for p in perm], "transpose", {"perm": perm})
        out = self.like(node.name, x, self.shape_of(node), layout="HWC", source=node.name)
        self.emit(node.name, "reshape", [x.name], out.name, {"shape": list(out.shape)})
        self.ir_of[node.name] = out.name

    def zero_insert(self, node: fx.Node):
        """The zeros a ConvTranspose2d inserts (quantize/rewrite.py): ``zero_insert`` filled with the input's zero
        point, the integer for real 0."""
        x = self.in_layout(self.tensor(node.args[0].name), "HWC")
        mod = self.gm.get_submodule(node.target)
        out = self.like(node.name, x, self.shape_of(node), source=node.name)
        self.emit(str(node.target), "zero_insert", [x.name], out.name,
                  {"stride": list(mod.stride), "extra": list(mod.extra), "pad_value": x.zero_point})
        self.ir_of[node.name] = out.name

    def resize(self, node: fx.Node):
        """``nn.Upsample`` / ``F.interpolate`` of an image: mode ``nearest`` or ``nearest-exact`` to an integer
        multiple of the input size: ``resize_nearest`` (data movement on the input's scale); mode ``bilinear`` (no
        antialias) to any size: ``resize_bilinear`` (TFLite's integer definition; ``align_corners=False`` is its
        ``half_pixel_centers``)."""
        if node.op == "call_module":
            mod = self.gm.get_submodule(node.target)
            mode, align_corners, antialias = mod.mode, mod.align_corners, False
        else:
            args = dict(zip(("input", "size", "scale_factor", "mode", "align_corners"), node.args), **node.kwargs)
            mode, align_corners, antialias = (args.get("mode", "nearest"), args.get("align_corners"),
                                              args.get("antialias", False))
        x = self.tensor(node.args[0].name)
        x = self.in_layout(x, "HWC") if len(x.shape) == 3 else x
        c, oh, ow = self.shapes[node.name] if len(self.shapes[node.name]) == 3 else (0, 0, 0)
        h, w = x.shape[:2] if x.layout == "HWC" else (0, 0)
        if mode == "bilinear" and h and not antialias:
            out = self.like(node.name, x, (oh, ow, c), source=node.name)
            self.emit(self.ir_name(node), "resize_bilinear", [x.name], out.name,
                      {"size": [oh, ow], "half_pixel_centers": int(not align_corners),
                       "align_corners": int(bool(align_corners))})
            self.ir_of[node.name] = out.name
            return
        if mode not in ("nearest", "nearest-exact") or not h or oh % h or ow % w:
            raise UnsupportedOpError([(self.ir_name(node), f"resize with mode={mode!r} of per-sample shape "
                                                           f"{self.shapes[node.args[0].name]} to "
                                                           f"{self.shapes[node.name]} (only nearest by integer "
                                                           "factors, or bilinear without antialias, of an image)")])
        out = self.like(node.name, x, (oh, ow, c), source=node.name)
        self.emit(self.ir_name(node), "resize_nearest", [x.name], out.name, {"scale": [oh // h, ow // w]})
        self.ir_of[node.name] = out.name

    def mean(self, node: fx.Node):
        """``x.mean(dim=(2, 3))`` / ``torch.mean(x, (-2, -1), keepdim)`` of an image: a global ``avgpool`` (integer
        mean with C's truncating division, docs/numerics.md), then a ``reshape`` to (C,) unless ``keepdim``."""
        args = dict(zip(("input", "dim", "keepdim"), node.args), **node.kwargs)
        x = self.tensor(node.args[0].name)
        x = self.in_layout(x, "HWC") if len(x.shape) == 3 else x
        dims = args.get("dim")
        dims = {d % 4 for d in ((dims,) if isinstance(dims, int) else dims)} if dims is not None else None
        if x.layout != "HWC" or dims != {2, 3} or args.get("dtype") is not None:
            raise UnsupportedOpError([(node.name, f"mean over dim={args.get('dim')!r} of a tensor of per-sample "
                                                  f"shape {self.shapes[node.args[0].name]} (only the spatial dims "
                                                  "(2, 3) of an image)")])
        h, w, c = x.shape
        qmin, qmax = x.qrange()
        pooled = self.like(node.name if args.get("keepdim") else f"{node.name}_pooled", x, (1, 1, c),
                           source=node.name if args.get("keepdim") else "")
        self.emit(pooled.name, "avgpool", [x.name], pooled.name,
                  {"kernel": [h, w], "stride": [h, w], "padding": [0, 0, 0, 0], "count_include_pad": 1,
                   "pad_value": x.zero_point, "act_min": qmin, "act_max": qmax})
        if not args.get("keepdim"):
            out = self.like(node.name, pooled, (c,), layout="", source=node.name)
            self.emit(node.name, "reshape", [pooled.name], out.name, {"shape": [c]})
            pooled = out
        self.ir_of[node.name] = pooled.name

    def activation(self, node: fx.Node, kind: str):
        x = self.tensor(node.args[0].name)
        out = self.like(node.name, x, source=node.name)
        act_min, act_max = self.clamp_bounds(x, self.activation_bounds(node, kind))
        self.emit(str(node.target) if node.op == "call_module" else node.name, "clamp", [x.name], out.name,
                  {"act_min": act_min, "act_max": act_max})
        self.ir_of[node.name] = out.name

    def negate(self, node: fx.Node):
        """``-x`` on x's scale and bits, exactly: ``output_zp = -1 - input_zp`` makes ``y = -1 - x`` (the real value
        ``-scale * (x - zp)``), which no value of x's range leaves."""
        out = self.negated(node.name, self.tensor(node.args[0].name))
        out.source = node.name
        self.ir_of[node.name] = out.name

    def flatten(self, node: fx.Node):
        """``flatten``, ``view``, ``reshape``, ``squeeze``, ``unsqueeze`` keeping the batch axis: a ``reshape`` of the
        value in PyTorch's element order (an image or Conv1d sequence is transposed to it first)."""
        x = self.tensor(node.args[0].name)
        shape = self.shapes[node.name]
        if not shape or math.prod(shape) != math.prod(x.shape):
            raise UnsupportedOpError([(node.name, f"reshape of per-sample shape {self.shapes[node.args[0].name]} to "
                                                  f"{shape} (the batch axis must stay first and alone)")])
        if x.layout == "HWC" and x.shape[0] * x.shape[1] == 1 and len(shape) == 1:
            src = x   # a 1x1 image is already in PyTorch's order
        else:
            src = self.in_layout(x, "")
        out = self.like(node.name, src, shape, layout="", source=node.name)
        self.emit(node.name, "reshape", [src.name], out.name, {"shape": list(shape)})
        self.ir_of[node.name] = out.name

    def permute(self, node: fx.Node):
        """``permute`` / ``transpose`` of the per-sample axes (the batch stays first): no data movement where the
        permuted value's storage is the input's (``x.permute(0, 2, 3, 1)`` of an image is its HWC storage read as a
        plain (H, W, C) tensor; ``permute(0, 3, 1, 2)`` back), else one ``transpose`` into PyTorch's order."""
        x = self.tensor(node.args[0].name)
        rank = len(x.shape)
        dims = [*node.args[1:], *node.kwargs.values()]
        dims = list(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        if node.target in ("transpose", torch.transpose, "swapaxes", torch.swapaxes):
            full = list(range(rank + 1))
            a, b = (d % (rank + 1) for d in dims)
            full[a], full[b] = full[b], full[a]
            dims = full
        dims = [d % (rank + 1) for d in dims]
        if len(dims) != rank + 1 or dims[0] != 0:
            raise UnsupportedOpError([(node.name, f"permutation {tuple(dims)} of a tensor of per-sample shape "
                                                  f"{self.shapes[node.args[0].name]} (the batch axis must stay "
                                                  "first)")])
        q = [d - 1 for d in dims[1:]]    # per-sample: output axis j is input axis q[j]
        stored = storage_order(x.layout, rank)   # the input's storage in terms of its PyTorch axes
        for layout in ("", *STORAGE):
            if len(storage_order(layout, rank)) == rank and [q[k] for k in storage_order(layout, rank)] == \
                    list(stored):   # the output stored in this layout is the input's memory as it is
                out = self.like(node.name, x, [x.shape[i] for i in range(rank)], layout=layout, source=node.name)
                self.emit(node.name, "reshape", [x.name], out.name, {"shape": list(out.shape)})
                break
        else:
            out = self.like(node.name, x, self.shapes[node.name], layout="", source=node.name)
            self.emit(node.name, "transpose", [x.name], out.name, {"perm": [stored.index(k) for k in q]})
        self.ir_of[node.name] = out.name

    def cat(self, node: fx.Node):
        tensors = node.args[0]
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        self.joined(node, tensors, dim, [self.shapes[t.name] for t in tensors])

    def stack(self, node: fx.Node):
        """``torch.stack(tensors, dim)``: each operand reshaped to hold the new axis, then joined as by ``cat``."""
        tensors = node.args[0]
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        rank = len(self.shapes[tensors[0].name])
        dim = dim % (rank + 2)
        if dim == 0 or rank == 3 or any(t.name in self.constants for t in tensors):
            raise UnsupportedOpError([(node.name, f"stack along dim {dim} of tensors of per-sample shape "
                                                  f"{self.shapes[tensors[0].name]} (only computed non-image "
                                                  "tensors, not along the batch)")])
        expanded = [self.shapes[t.name][:dim - 1] + (1,) + self.shapes[t.name][dim - 1:] for t in tensors]
        self.joined(node, tensors, dim, expanded)

    def joined(self, node: fx.Node, tensors, dim: int, shapes: list[tuple]):
        """``concat`` of ``tensors`` (each reshaped to its per-sample ``shapes`` entry first where that differs)
        along PyTorch dim ``dim``, every operand requantized to the output's calibrated scale where it differs."""
        computed = self.in_common_layout([self.tensor(t.name) for t in tensors if t.name not in self.constants])
        layout = computed[0].layout
        rank = len(shapes[0])
        dim = dim % (rank + 1)
        if dim == 0:
            raise UnsupportedOpError([(node.name, "concatenation along the batch dimension")])
        axis = storage_order(layout, rank).index(dim - 1)
        out = self.value_tensor(node.name, self.shape_of(node, layout), layout)
        s_out, zp_out = out.scale, out.zero_point
        inputs = []
        for i, (t, shape) in enumerate(zip(tensors, shapes)):
            x = self.operand(t, f"{node.name}_in{i}", out.bits, s_out, zp_out)
            x = self.in_layout(x, layout) if len(x.shape) == len(STORAGE.get(layout, x.shape)) else x
            if x.layout not in STORAGE and tuple(x.shape) != tuple(shape):
                x = self.derived(f"{node.name}_in{i}_reshaped", x, shape, "reshape", {"shape": list(shape)})
            if (x.scale, x.zero_point) != (s_out, zp_out):
                b, c = quantize_multiplier(f64(x.scale) / f64(s_out), node.name)
                rq = self.like(f"{node.name}_in{i}", out, x.shape)
                qmin, qmax = rq.qrange()
                self.emit(rq.name, "requantize", [x.name], rq.name,
                          {"multiplier": b, "shift": c, "input_zp": x.zero_point, "output_zp": zp_out,
                           "act_min": qmin, "act_max": qmax})
                x = rq
            inputs.append(x.name)
        self.emit(node.name, "concat", inputs, out.name, {"axis": axis})
        self.ir_of[node.name] = out.name

    # ---- driver --------------------------------------------------------------------------
    def run(self, unsupported: dict | None = None) -> IntModel:
        """Lower every node. ``unsupported``: :func:`quantize.capture.unsupported_nodes` of the graph. Every
        problem is collected before anything is raised: the unsupported nodes, and what the rules refuse once
        shapes are known (an uneven adaptive pool, a LayerNorm over several axes, ...), each with its module path
        and source line; nodes reading a refused value are skipped. Then one :class:`UnsupportedOpError` lists
        them all in graph order."""
        unsupported = unsupported or {}
        problems: list[tuple[str, str]] = []
        refused: set[fx.Node] = set()
        for node in self.gm.graph.nodes:
            if node in unsupported:
                problems.append(unsupported[node])
            elif not any(arg in refused for arg in node.all_input_nodes):
                try:
                    self.lower_node(node)
                    continue
                except UnsupportedOpError as exc:
                    problems.extend((path, desc if " at " in desc else desc + _where(node)) for path, desc in exc.ops)
                except IntonlyError:
                    if not problems:
                        raise
            refused.add(node)
            refused.update(user for user in node.users if user.name in self.fused)
        if problems:
            raise UnsupportedOpError(problems)
        self.model.validate(f"model {self.model.name!r}")
        return self.model

    def lower_node(self, node: fx.Node) -> None:
        kind, _ = op_kind(self.gm, node)
        self.kind = kind
        if kind == "shape":
            self.skipped.add(node.name)
        if node.name in self.fused or kind == "shape":
            return
        if node.op == "placeholder":
            shape = self.shapes[node.name]
            self.model.tensors[node.name] = TensorInfo(node.name, "float32", shape, layout="CHW" if len(
                shape) == 3 else "")
            self.model.inputs.append(node.name)
            s, zp, bits = self.input_qparams(node.name)
            q = self.new_tensor(f"{node.name}_q", self.shape_of(node), s, zp, node.name,
                                "HWC" if len(shape) == 3 else "", bits)
            self.emit(q.name, "quantize", [node.name], q.name,
                      {"perm": list(STORAGE["HWC"]) if len(shape) == 3 else [], "form": FORMS["intonly"]})
            self.ir_of[node.name] = q.name
        elif node.op == "output":
            results = node.args[0] if isinstance(node.args[0], (tuple, list)) else [node.args[0]]
            for r in results:
                x = self.tensor(r.name)
                order = storage_order(x.layout, len(x.shape))
                perm = [order.index(k) for k in range(len(x.shape))] if x.layout in STORAGE else []
                out = TensorInfo(f"{r.name}_out", "float32", self.pytorch_shape(x),
                                 layout="CHW" if x.layout == "HWC" else "")
                self.model.tensors[out.name] = out
                self.emit(out.name, "dequantize", [x.name], out.name, {"perm": perm})
                self.model.outputs.append(out.name)
        elif kind == "conv":
            self.weighted(node, self.gm.get_submodule(node.target), "conv2d")
        elif kind == "linear":
            self.weighted(node, self.gm.get_submodule(node.target), "dense")
        elif kind == "add":
            self.add(node)
        elif kind in ("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"):
            self.pool(node, kind)
        elif kind in ACTIVATIONS:
            self.activation(node, kind)
        elif kind == "neg":
            self.negate(node)
        elif kind == "flatten":
            self.flatten(node)
        elif kind == "cat":
            self.cat(node)
        elif kind == "identity":
            self.ir_of[node.name] = self.ir_of[node.args[0].name]
        elif kind in RULES:
            getattr(self, RULES[kind])(node)


def interp_layouts(qmin: int, zero_point: int):
    """``(segment_shift, first code)`` of the interpolated tables to try, smallest table first: each segment size
    from the table's start at the lowest code, then with a segment boundary on the zero point (real 0), where
    ReLU-like functions (LeakyReLU, PReLU, ELU, Hardswish's flat part) bend."""
    for shift in range(SEGMENT_SHIFT.hi, 0, -1):
        yield shift, qmin
        aligned = zero_point - (((zero_point - qmin) + (1 << shift) - 1) >> shift << shift)
        if aligned != qmin:
            yield shift, aligned


def storage_order(layout: str, rank: int) -> tuple[int, ...]:
    """The PyTorch per-sample axis each stored axis of a rank-``rank`` tensor in ``layout`` holds."""
    return STORAGE[layout] if layout in STORAGE and len(STORAGE[layout]) == rank else tuple(range(rank))


DIVISIONS = (operator.truediv, torch.div, torch.true_divide, "div", "true_divide")


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


RULES = {"constant": "parameter", "expand": "expand", "getitem": "getitem", "layernorm": "layernorm", "gelu": "gelu",
         "attention": "attention", "patch_embed": "patch_embed", "bert_embeddings": "bert_embeddings",
         "masked_mean": "masked_mean", "mean": "mean", "sub": "sub", "mul": "mul", "lookup": "lookup",
         "resize": "resize", "stack": "stack", "permute": "permute", "conv1d": "conv1d",
         "zero_insert": "zero_insert", "softmax": "channel_softmax", "prelu": "prelu",
         "pixel_shuffle": "pixel_shuffle"}


def calibrate(gm: fx.GraphModule, calib_data, cfg: QuantConfig, batch_size: int = 64):
    """Observers for every float value in the graph, each value's per-sample shape, and (with
    ``cfg.bias_correction``) the weighted layers' :class:`InputMeans`, else None. A value that is NaN or
    infinite for some calibration sample is a :class:`QuantizationError` naming the module or node producing it."""
    observers: dict[str, Observer] = {}
    input_means = InputMeans(gm) if cfg.bias_correction else None
    shapes: dict[str, tuple] = {}
    nodes = {n.name: n for n in gm.graph.nodes}
    first_input = next((n.name for n in gm.graph.nodes if n.op == "placeholder"), None)
    batch = {"start": 0, "next": 0}  # the calibration samples the current batch begins at

    def sink(name, tensor):
        if name == first_input:  # every batch runs its placeholders first
            batch["start"] = batch["next"]
            batch["next"] += len(tensor)
        shapes.setdefault(name, tuple(tensor.shape[1:]))
        if name not in observers:
            observers[name] = Observer(cfg.observer, cfg.percentile, name=_value_origin(gm, nodes, name))
        try:
            observers[name].update(tensor.numpy(), first_sample=batch["start"])
        except QuantizationError as exc:
            refused.append(str(exc))
            raise
        if input_means is not None:
            input_means.update(name, tensor)

    refused: list[str] = []  # the observer's message (torch.fx appends its own traceback to the exception's)
    try:
        run_recording(gm, calib_data, sink, batch_size)
    except QuantizationError:
        if refused:
            raise QuantizationError(refused[0]) from None
        raise
    return observers, shapes, input_means


def _value_origin(gm: fx.GraphModule, nodes: dict, name: str) -> str:
    """The module or node that computes the fx value ``name`` (``"<node>.<key>"`` for a leaf's intermediate),
    with the source line torch.fx recorded, for messages."""
    base, _, key = name.partition(".")
    node = nodes.get(base)
    if node is None:
        return f"value {name!r}"
    _, desc = op_kind(gm, node)
    what = f"module {node.target!r}" if node.op == "call_module" else f"node {node.name!r}"
    return f"{what} ({desc}{_where(node)}){f' intermediate {key!r}' if key else ''}"


def _calibration_arrays(gm: fx.GraphModule, calib_data) -> list[np.ndarray]:
    """``calib_data`` as one float32 array per graph input, after checking each is a non-empty batch of finite
    numbers, that the batches have one length, and that the model runs on the first sample."""
    arrays = list(calib_data) if isinstance(calib_data, (list, tuple)) else [calib_data]
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    required = sum(1 for n in placeholders if not n.args)  # a placeholder with args has a default value
    if not required <= len(arrays) <= len(placeholders):
        count = str(required) if required == len(placeholders) else f"{required} to {len(placeholders)}"
        names = ", ".join(n.name for n in placeholders)
        raise DataError(f"calibration data: the model takes {count} input(s) ({names}), got {len(arrays)} array(s)")
    out = []
    for i, a in enumerate(arrays):
        arr = checked_batch(a, f"calibration input {i}", dtype=np.float32)
        if out and len(arr) != len(out[0]):
            raise DataError(f"calibration input {i}: {len(arr)} samples, calibration input 0 has {len(out[0])}")
        out.append(arr)
    try:
        with torch.no_grad():
            gm(*(torch.from_numpy(a[:1]) for a in out))
    except IntonlyError:
        raise
    except Exception as exc:
        shapes = ("per-sample shapes " if len(out) > 1 else "per-sample shape ") + ", ".join(
            str(a.shape[1:]) for a in out)
        raise DataError(f"calibration data: the model fails on sample 0 ({shapes}): {type(exc).__name__}: "
                        f"{exc}") from None
    return out


def quantize(model, calib_data, config: QuantConfig | None = None, name: str | None = None) -> IntModel:
    """Post-training quantize a PyTorch ``model`` into an :class:`IntModel` using ``calib_data``
    (float array, batch first, in the model's input layout, e.g. N,C,H,W; a list of arrays for a model with
    several inputs, e.g. token ids and an attention mask). Calibration data that is empty, not numeric, not finite
    or of a shape the model refuses is a :class:`DataError`. Every construct the lowering cannot take is listed in
    one :class:`UnsupportedOpError` (:meth:`_Lowering.run`)."""
    cfg = config or QuantConfig()
    gm = capture(model)
    calib = _calibration_arrays(gm, calib_data)
    unroll_recurrent(gm, [torch.from_numpy(a[:1]) for a in calib])
    unsupported = unsupported_nodes(gm)
    rescaled = equalize(gm) if cfg.equalize and not unsupported else set()
    if unsupported:  # one sample gives every shape the lowering checks; the model will not be kept
        calib = [a[:1] for a in calib]
    observers, shapes, input_means = calibrate(gm, calib, cfg)
    return _Lowering(gm, cfg, observers, shapes, name or type(model).__name__, input_means,
                     rescaled).run(unsupported)
