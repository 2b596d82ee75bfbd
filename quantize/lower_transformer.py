"""Lowering rules for transformer building blocks (mixed into :class:`quantize.lower._Lowering`).

Each rule turns one captured float node into integer ops whose exact definitions are in
docs/transformer-ops.md, choosing the op constants from the calibrated scales so that the overflow bounds of
:mod:`quantize.bounds` hold (the validator re-checks them):

* ``attention`` leaf -> dense Q, K, V -> reshape/transpose to heads -> matmul Q·Kᵀ (the 1/sqrt(d) scale folded
  into its requant) -> [mask_keys] -> shiftmax | iexp_softmax | log2_softmax -> matmul P·V | shift_matmul ->
  transpose/reshape -> the output projection;
* ``nn.LayerNorm`` -> layernorm; ``nn.GELU`` -> shiftgelu | igelu;
* ``patch_embed`` leaf -> conv2d + reshape to tokens; ``bert_embeddings`` leaf -> embedding + constant
  (position + token-type rows) + add + layernorm; ``masked_mean`` leaf -> mean_pool;
* parameters used as data (cls token, position embedding) -> constant nodes; ``x[:, i]`` -> slice + reshape.
"""

from __future__ import annotations

import functools
import math
import types

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn

from .bounds import INT32_LIMIT, iexp_poly_max, shift_exp_max
from .dyadic import f64, quantize_multiplier, quantize_multipliers
from .errors import ConfigError, QuantizationError, UnsupportedOpError
from .ir import TensorInfo
from .observers import Observer, choose_qparams, sqnr_db

# I-BERT's second-order polynomial for exp on (-ln2, 0]: a (p + b)^2 + c with these coefficients
# (I-BERT, arXiv:2101.01321, i-exp)
IEXP_A, IEXP_B, IEXP_C = 0.35815147, 0.96963238, 1.0
LN2 = 0.6931
# I-BERT's i-GELU erf polynomial sign(x) [a (clip(|x|, max=-b) + b)^2 + 1]
IGELU_A, IGELU_B, SQRT2 = -0.2888, -1.769, 1.4142
GAMMA_BITS = 16  # layernorm gamma codes are int16
EXP_RANGE = 30  # q_max: exps decay down to 2^-30 of the row maximum before they are clipped (I-BERT's range)
NORM_BITS = 62  # softmax / sigmoid normalisation F = (2^62 - 1) // sum keeps >= 31 significant bits
SIGMOID_BITS_MAX = 15


def largest_n(peak: int, count: int) -> int:
    """Largest exp precision n in 0..30 with ``count * (peak << n) <= 2^31 - 1`` (the int32 sum)."""
    for n in range(30, -1, -1):
        if count * (peak << n) <= INT32_LIMIT:
            return n
    raise QuantizationError(f"no exp precision n >= 0 keeps {count} x {peak} within int32")


def softmax_constants(family: str, scale: float, n_keys: int) -> dict:
    """Attrs of the softmax-family op for scores at ``scale`` over rows of ``n_keys`` (docs/transformer-ops.md)."""
    s = f64(scale)
    if family == "shiftmax":
        x0 = math.floor(-1.0 / s)
        return {"x0": x0, "n": largest_n(shift_exp_max(x0), n_keys), "q_max": EXP_RANGE, "norm_bits": NORM_BITS}
    x0 = math.floor(-LN2 / s)
    b_int = math.floor((IEXP_B / IEXP_A) / s)
    c_int = math.floor((IEXP_C / IEXP_A) / (s * s))
    if c_int > INT32_LIMIT:
        raise QuantizationError(f"scores scale {scale:g} is too fine for i-exp: its constant {c_int} exceeds int32")
    if abs(EXP_RANGE * x0) > INT32_LIMIT:
        raise QuantizationError(f"scores scale {scale:g} is too fine for i-exp: its range clip exceeds int32")
    return {"x0": x0, "n": largest_n(iexp_poly_max(x0, b_int, c_int), n_keys), "q_max": EXP_RANGE,
            "b_int": b_int, "c_int": c_int, "norm_bits": NORM_BITS}


class TransformerRules:
    """Rules for the transformer node kinds; ``self`` is the :class:`quantize.lower._Lowering`."""

    # ---- helpers -------------------------------------------------------------------------
    def requant_attrs(self, ratio: float, out: TensorInfo, where: str) -> dict:
        b, c = quantize_multiplier(ratio, where)
        lo, hi = out.qrange()
        return {"multiplier": b, "shift": c, "output_zp": out.zero_point, "act_min": lo, "act_max": hi}

    def derived(self, name: str, src: TensorInfo, shape, op: str, attrs: dict, layout: str = "") -> TensorInfo:
        """Emit a data-movement op (reshape/transpose/slice) producing a tensor with ``src``'s qparams."""
        out = self.like(name, src, tuple(shape), layout=layout)
        self.emit(name, op, [src.name], out.name, attrs)
        return out

    def constant_tensor(self, name: str, value: np.ndarray, bits: int, scale: float | None = None,
                        zp: int = 0) -> TensorInfo:
        """Emit a ``constant`` node holding ``value`` quantized symmetrically (or at the given scale/zp)."""
        if scale is None:
            scale, zp = choose_qparams(float(value.min(initial=0)), float(value.max(initial=0)), bits, True)
        out = self.new_tensor(name, value.shape, scale, zp, name, "", bits)
        lo, hi = out.qrange()
        q = np.clip(np.rint(value / f64(scale)) + zp, lo, hi).astype(out.dtype)
        self.emit(name, "constant", [], out.name, {}, {"value": self.add_constant(f"{name}.value", q)})
        return out

    def operand(self, arg: fx.Node, name: str, bits: int, scale: float | None = None, zp: int = 0) -> TensorInfo:
        """The IR tensor for an fx argument: a lowered value, or a parameter emitted as a constant node."""
        if arg.name in self.constants:
            return self.constant_tensor(name, self.constants[arg.name], bits, scale, zp)
        return self.tensor(arg.name)

    # ---- parameters as data, shapes, indexing ----------------------------------------------
    def parameter(self, node: fx.Node):
        arr = functools.reduce(getattr, node.target.split("."), self.gm).detach().double().numpy()
        if arr.ndim < 2 or arr.shape[0] != 1:
            raise UnsupportedOpError([(node.target, f"parameter of shape {tuple(arr.shape)} used as data "
                                                    "(only (1, ...) tensors broadcast over the batch)")])
        self.constants[node.name] = arr[0]

    def expand(self, node: fx.Node):
        src = node.args[0]
        if src.name not in self.constants:
            raise UnsupportedOpError([(node.name, "expand of a computed tensor (only of a (1, ...) parameter)")])
        self.constants[node.name] = self.constants[src.name]

    def getitem(self, node: fx.Node):
        src, index = node.args
        if src.name in self.skipped:
            self.skipped.add(node.name)  # an element of x.shape
            return
        x = self.in_layout(self.tensor(src.name), "")
        if not (isinstance(index, tuple) and len(index) >= 2 and index[0] == slice(None) and
                isinstance(index[1], int) and all(i == slice(None) for i in index[2:]) and len(x.shape) >= 2):
            raise UnsupportedOpError([(node.name, f"indexing with {index!r} (only x[:, i] or x[:, i, :])")])
        i = index[1] % x.shape[0]
        part = self.derived(f"{node.name}_slice", x, (1,) + x.shape[1:], "slice", {"axis": 0, "start": i,
                                                                                   "stop": i + 1})
        out = self.derived(node.name, part, x.shape[1:], "reshape", {"shape": list(x.shape[1:])})
        out.source = node.name
        self.ir_of[node.name] = out.name

    # ---- normalisation and activations -----------------------------------------------------
    def layernorm(self, node: fx.Node, mod=None, x: TensorInfo | None = None, out: TensorInfo | None = None,
                  path: str | None = None):
        path = path or (str(node.target) if mod is None else f"{node.target}.LayerNorm")
        mod = self.gm.get_submodule(node.target) if mod is None else mod
        x = self.in_layout(self.tensor(node.args[0].name), "") if x is None else x
        if isinstance(mod, nn.GroupNorm) or len(mod.normalized_shape) > 1:
            return self.layernorm_trailing(node, mod, x, path)
        channels = x.shape[-1]
        if tuple(mod.normalized_shape) != (channels,):
            raise UnsupportedOpError([(path, f"LayerNorm over {tuple(mod.normalized_shape)} (only the last axis)")])
        out = self.value_tensor(node.name, x.shape) if out is None else out
        gamma = mod.weight.detach().double().numpy() if mod.weight is not None else np.ones(channels)
        beta = mod.bias.detach().double().numpy() if mod.bias is not None else np.zeros(channels)
        top = (1 << (GAMMA_BITS - 1)) - 1
        s_g = float(np.float32(max(np.abs(gamma).max(), 1e-12) / top))
        w = np.clip(np.rint(gamma / s_g), -top, top).astype(np.int16)
        for k in range(30, -1, -1):
            s_n = math.sqrt(channels) / 2.0**k  # the scale of the normalized value (docs/transformer-ops.md)
            bias = np.rint(beta / (s_n * s_g))
            if (int(np.abs(w).max()) << k) + int(np.abs(bias).max()) <= INT32_LIMIT:
                break
        else:
            raise QuantizationError(f"{path}: beta/gamma too large for an int32 affine step")
        mult, shift = quantize_multipliers(np.full(channels, s_n * s_g / f64(out.scale)), path)
        lo, hi = out.qrange()
        params = {role: self.add_constant(f"{path}.{role}", arr) for role, arr in
                  (("weight", w), ("bias", bias.astype(np.int32)), ("multiplier", mult), ("shift", shift))}
        self.emit(path, "layernorm", [x.name], out.name,
                  {"norm_shift": k, "output_zp": out.zero_point, "act_min": lo, "act_max": hi}, params)
        self.ir_of[node.name] = out.name
        return out

    def layernorm_trailing(self, node: fx.Node, mod, x: TensorInfo, path: str) -> TensorInfo:
        """LayerNorm over several trailing axes (e.g. an image's (C, H, W)) and GroupNorm with one group: the
        ``layernorm`` op over those axes flattened into one, its gamma and beta broadcast to them (GroupNorm's are
        per channel) and flattened, between two ``reshape``s."""
        if isinstance(mod, nn.GroupNorm):
            shape, lead = x.shape, ()
            if mod.num_groups != 1 or len(shape) < 2:
                raise UnsupportedOpError([(path, f"GroupNorm with {mod.num_groups} groups (only 1: a LayerNorm over "
                                                 "(C, H, W))")])
        else:
            shape, lead = tuple(mod.normalized_shape), x.shape[:len(x.shape) - len(mod.normalized_shape)]
            if tuple(x.shape[len(lead):]) != shape:
                raise UnsupportedOpError([(path, f"LayerNorm over {shape} of a tensor of per-sample shape {x.shape}")])

        def flat(param):
            if param is None:
                return None
            param = param.detach().reshape((-1,) + (1,) * (len(shape) - 1)) if isinstance(mod, nn.GroupNorm) \
                else param.detach()
            return torch.broadcast_to(param, shape).reshape(-1)
        size = math.prod(shape)
        flat_mod = types.SimpleNamespace(normalized_shape=(size,), weight=flat(mod.weight), bias=flat(mod.bias))
        flat_x = self.tensor_as(x, (*lead, size), "")
        flat_out = self.value_tensor(node.name, (*lead, size), tensor_name=f"{node.name}_flat")
        flat_out.source = ""
        self.layernorm(node, flat_mod, flat_x, flat_out, path)
        out = self.like(node.name, flat_out, x.shape, layout="", source=node.name)
        self.emit(f"{node.name}_unflat", "reshape", [flat_out.name], out.name, {"shape": list(x.shape)})
        self.ir_of[node.name] = out.name
        return out

    def gelu(self, node: fx.Node):
        x = self.tensor(node.args[0].name)
        path = str(node.target)
        if x.zero_point != 0:
            raise QuantizationError(f"{path}: GELU input {x.name!r} needs a symmetric (zero point 0) quantization")
        out = self.value_tensor(node.name, x.shape, symmetric=True)
        s = f64(x.scale)
        lo, hi = x.qrange()
        span = max(-lo, hi)
        if self.cfg.gelu == "shiftgelu":
            x0 = math.floor(-1.0 / s)
            sig_bits = max(b for b in range(1, SIGMOID_BITS_MAX + 1) if span * ((1 << b) - 1) <= INT32_LIMIT)
            attrs = {"x0": x0, "n": largest_n(shift_exp_max(x0), 2), "q_max": EXP_RANGE, "norm_bits": NORM_BITS,
                     "sig_bits": sig_bits,
                     **self.requant_attrs(s * 2.0**-sig_bits / f64(out.scale), out, path)}
            op = "shiftgelu"
        else:
            s_prime = s / SQRT2
            b_int, c_int = math.floor(IGELU_B / s_prime), math.floor((1.0 / IGELU_A) / s_prime**2)
            grid = np.arange(lo, hi + 1, dtype=np.int64)
            poly = (np.minimum(np.abs(grid), -b_int) + b_int) ** 2 + c_int
            for erf_shift in range(0, 31):
                s_erf = IGELU_A * s_prime**2 * 2.0**erf_shift
                one_int = math.floor(1.0 / s_erf)
                erf = (np.sign(grid) * poly) >> erf_shift
                if np.abs(poly).max() <= INT32_LIMIT and np.abs(grid * (erf + one_int)).max() <= INT32_LIMIT:
                    break
            else:
                raise QuantizationError(f"{path}: no erf_shift keeps i-GELU within int32")
            attrs = {"b_int": b_int, "c_int": c_int, "erf_shift": erf_shift, "one_int": one_int,
                     **self.requant_attrs(s * abs(s_erf) / 2.0 / f64(out.scale), out, path)}
            op = "igelu"
        self.emit(path, op, [x.name], out.name, attrs)
        self.ir_of[node.name] = out.name

    # ---- attention -------------------------------------------------------------------------
    def attention(self, node: fx.Node):
        mod = self.gm.get_submodule(node.target)
        path, name = str(node.target), node.name
        x = self.tensor(node.args[0].name)
        mask_arg = node.args[1] if len(node.args) > 1 else node.kwargs.get("mask")
        tokens, heads, head_dim = x.shape[0], mod.num_heads, mod.head_dim
        split = {}
        for role, (weight, bias) in zip("qkv", mod.qkv_params()):
            value = f"{name}.{role}"
            flat = self.value_tensor(value, (tokens, heads * head_dim), symmetric=True)
            self.linear_layer(f"{path}.{role}", "dense", None, x, flat, weight=weight, bias=bias)
            grouped = self.derived(f"{value}_heads", flat, (tokens, heads, head_dim), "reshape",
                                   {"shape": [tokens, heads, head_dim]})
            split[role] = self.derived(f"{value}_t", grouped, (heads, tokens, head_dim), "transpose",
                                       {"perm": [1, 0, 2]})
            flat.source, split[role].source = "", value  # the float value is recorded as (heads, tokens, dim)
        q, k, v = split["q"], split["k"], split["v"]
        scores = self.value_tensor(f"{name}.scores", (heads, tokens, tokens), symmetric=True)
        scores.scale = self.softmax_input_scale(scores.scale, tokens)
        attrs = self.requant_attrs(f64(q.scale) * f64(k.scale) * mod.scale / f64(scores.scale), scores, path)
        if mask_arg is not None:
            attrs["act_min"] += 1  # the lowest code is the mask sentinel (docs/transformer-ops.md, mask_keys)
        self.emit(f"{path}.scores", "matmul", [q.name, k.name], scores.name,
                  {"input_zps": [0, 0], "transpose_b": 1, **attrs})
        if mask_arg is not None:
            scores = self.derived(f"{name}.masked_scores", scores, scores.shape, "mask_keys", {})
            self.model.nodes[-1].inputs.append(self.tensor(mask_arg.name).name)
        probs = self.softmax(f"{path}.softmax", scores, mask_arg is not None)
        context = self.value_tensor(f"{name}.context", (heads, tokens, head_dim), symmetric=True)
        if probs.encoding == "log2":
            top = (1 << LOG2_CODE_BITS) - 1
            self.emit(f"{path}.context", "shift_matmul", [probs.name, v.name], context.name,
                      {"input_zp": 0, "code_bits": LOG2_CODE_BITS,
                       **self.requant_attrs(f64(v.scale) * 2.0**-top / f64(context.scale), context, path)})
        else:
            ratio = 2.0 ** -(probs.bits - 1) * f64(v.scale) / f64(context.scale)
            self.emit(f"{path}.context", "matmul", [probs.name, v.name], context.name,
                      {"input_zps": [0, 0], "transpose_b": 0, **self.requant_attrs(ratio, context, path)})
        merged = self.derived(f"{name}.context_t", context, (tokens, heads, head_dim), "transpose", {"perm": [1, 0, 2]})
        merged = self.derived(f"{name}.context_merged", merged, (tokens, heads * head_dim), "reshape",
                              {"shape": [tokens, heads * head_dim]})
        context.source, merged.source = "", context.source  # recorded as (tokens, heads * dim)
        if mod.output_projection() is not None:
            out = self.value_tensor(name, (tokens, mod.output_projection().out_features), symmetric=name in self.symmetric_values)
            self.linear_layer(f"{path}.proj", "dense", mod.output_projection(), merged, out)
        else:
            out = merged
            out.source = name
        self.ir_of[name] = out.name

    def softmax_input_scale(self, scale: float, n_keys: int) -> float:
        """The calibrated scores scale, coarsened (by 2^(1/4) steps) until the softmax family's constants fit
        int32 for ``n_keys`` keys: i-exp's polynomial constant grows as 1/S^2, so a very fine 16-bit scale can
        leave no exp precision n >= 0 (then the scores keep a wider range than calibrated, at a coarser step)."""
        family = "shiftmax" if self.cfg.softmax == "shiftmax" else "iexp"
        for _ in range(64):
            try:
                softmax_constants(family, scale, n_keys)
                return scale
            except QuantizationError:
                scale = float(np.float32(scale * 2 ** 0.25))
        raise QuantizationError(f"no scores scale makes the {family} constants fit int32 for {n_keys} keys")

    def channel_softmax(self, node: fx.Node):
        """``nn.Softmax(dim)`` / ``F.softmax`` / ``Tensor.softmax`` over one axis (a classifier's logits, a
        segmentation head's channels): the axis stored last (an image's channels are, in HWC), the input
        requantized to a scale the softmax family's constants fit if its calibrated one does not, then the
        configured integer softmax (``log2``'s codes are not a linear tensor: ``iexp`` is used instead); the
        output holds probabilities at scale ``2^-(softmax_bits - 1)``."""
        x = self.tensor(node.args[0].name)
        if node.op == "call_module":
            dim = self.gm.get_submodule(node.target).dim
        else:
            args = dict(zip(("input", "dim"), node.args), **node.kwargs)
            dim = args.get("dim") if args.get("dtype", args.get("_stacklevel")) is None else None
        rank = len(x.shape)
        axis = dim % (rank + 1) - 1 if isinstance(dim, int) else -1
        order = self.pytorch_axes(x)
        if axis < 0 or order[-1] != axis:
            x = self.in_layout(x, "")
            order = tuple(range(rank))
        if axis < 0 or order[-1] != axis:
            raise UnsupportedOpError([(self.ir_name(node), f"softmax over dim={dim!r} of a tensor of per-sample shape "
                                                           f"{self.shapes[node.args[0].name]} (only one axis, the "
                                                           "last, or an image's channels)")])
        scale = self.softmax_input_scale(x.scale, x.shape[-1])
        if scale != x.scale:
            scores = self.like(f"{node.name}_scores", x)
            scores.scale = scale
            self.emit(scores.name, "requantize", [x.name], scores.name,
                      {"input_zp": x.zero_point, **self.requant_attrs(f64(x.scale) / f64(scale), scores, node.name)})
            x = scores
        probs = self.softmax(self.ir_name(node), x, False, family="iexp" if self.cfg.softmax == "log2" else None)
        probs.source, probs.layout = node.name, x.layout
        self.ir_of[node.name] = probs.name

    def softmax(self, name: str, scores: TensorInfo, masked: bool, family: str | None = None) -> TensorInfo:
        family, n_keys = family or self.cfg.softmax, scores.shape[-1]
        bits = self.cfg.softmax_bits
        if bits == 8 and (1 << 7) < n_keys:
            raise ConfigError(f"softmax_bits=8 cannot represent 1/N for N={n_keys} keys at {name} "
                              "(needs 2^7 >= N); use softmax_bits=16")
        attrs = {**softmax_constants(family if family == "shiftmax" else "iexp", scores.scale, n_keys),
                 "masked": int(masked)}
        if family == "log2":
            out = self.new_tensor(name, scores.shape, 1.0, 0, "", "", 8)
            out.encoding = "log2"
            del attrs["norm_bits"]  # codes come from round(sum / e), no normalisation factor
            self.emit(name, "log2_softmax", [scores.name], out.name, {**attrs, "code_bits": LOG2_CODE_BITS})
            return out
        out = self.new_tensor(name, scores.shape, 2.0 ** -(bits - 1), 0, "", "", bits)
        self.emit(name, "shiftmax" if family == "shiftmax" else "iexp_softmax", [scores.name], out.name, attrs)
        return out

    # ---- embeddings and pooling ------------------------------------------------------------
    def patch_embed(self, node: fx.Node):
        mod = self.gm.get_submodule(node.target)
        x = self.tensor(node.args[0].name)
        tokens, dim = self.shapes[node.name]
        grid = self.value_tensor(node.name, (*_conv_hw(x.shape, mod.proj), dim), "HWC",
                                 symmetric=node.name in self.symmetric_values, tensor_name=f"{node.name}_grid")
        self.linear_layer(f"{node.target}.proj", "conv2d", mod.proj, x, grid)
        out = self.derived(node.name, grid, (tokens, dim), "reshape", {"shape": [tokens, dim]})
        out.source = node.name
        self.ir_of[node.name] = out.name

    def bert_embeddings(self, node: fx.Node):
        mod = self.gm.get_submodule(node.target)
        ids = self.tensor(node.args[0].name)
        (tokens,) = ids.shape
        table = mod.word_embeddings.weight.detach().double().numpy()
        if table.shape[0] > 1 << 15:
            raise UnsupportedOpError([(str(node.target), f"vocabulary of {table.shape[0]} ids (int16 ids: at most "
                                                         "32768)")])
        obs = Observer("minmax", 100.0)
        obs.update(table)
        bits = 16 if self.cfg.auto_bits and sqnr_db(obs, 8, True) < self.cfg.auto_bits_sqnr_db else 8
        scale, _ = choose_qparams(float(table.min()), float(table.max()), bits, True)
        top = (1 << (bits - 1)) - 1
        qtable = np.clip(np.rint(table / f64(scale)), -top, top).astype(np.int8 if bits <= 8 else np.int16)
        words = self.new_tensor(f"{node.name}.words", (tokens, table.shape[1]), scale, 0, "", "", bits)
        self.emit(f"{node.target}.word_embeddings", "embedding", [ids.name], words.name, {},
                  {"weight": self.add_constant(f"{node.target}.word_embeddings.weight", qtable)})
        fixed = (mod.position_embeddings.weight[:tokens] + mod.token_type_embeddings.weight[0]).detach().double().numpy()
        total_name = f"{node.name}.sum"
        total = self.value_tensor(total_name, (tokens, table.shape[1]), symmetric=True)
        positions = self.constant_tensor(f"{node.name}.positions", fixed, total.bits)
        self.add_tensors(f"{node.target}.sum", words, positions, total)
        self.layernorm(node, mod.LayerNorm, total)

    def masked_mean(self, node: fx.Node):
        x, mask = (self.tensor(a.name) for a in node.args[:2])
        out = self.like(node.name, x, x.shape[1:], source=node.name)
        self.emit(str(node.target), "mean_pool", [x.name, mask.name], out.name,
                  {"input_zp": x.zero_point, "output_zp": x.zero_point})
        self.ir_of[node.name] = out.name


LOG2_CODE_BITS = 4  # FQ-ViT's 4-bit log2 attention probabilities


def _conv_hw(shape, conv) -> tuple[int, int]:
    """Output height and width of a patch-embedding convolution (no dilation) on an HWC input."""
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    return (shape[0] + 2 * ph - kh) // sh + 1, (shape[1] + 2 * pw - kw) // sw + 1
