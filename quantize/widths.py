"""Per-tensor bit widths, chosen from calibration statistics before lowering.

Rules, in order (:func:`choose_widths`):

1. every value defaults to ``act_bits``;
2. with ``auto_bits``, a value whose ``act_bits`` quantization has a calibration SQNR below
   ``auto_bits_sqnr_db`` (:func:`quantize.observers.sqnr_db`: large outliers relative to its RMS) gets 16 bits;
3. with ``auto_bits``, softmax scores (``<attention>.scores``) whose ``act_bits`` step would exceed
   :data:`SOFTMAX_MAX_STEP` get 16 bits: a softmax's error is absolute in its input (a step of s shifts an
   exp by up to e^(s/2)), so its input needs a fine *absolute* step, which SQNR does not capture;
4. with ``residual_bits``, every operand and result of a residual add gets ``residual_bits``
   (the residual stream and the sublayer outputs feeding it);
5. a value consumed by a Linear/Conv2d (also the Q/K/V projections inside an attention leaf) is narrowed,
   not below ``min(act_bits, 8)`` (so ``act_bits=16`` means "16 bits where the int32 proofs allow, else as wide
   as they allow"), until that layer's int32 accumulator bound ``max_oc sum|w_q| * max|x - zp|`` stays below
   2^30 (half the int32 range, leaving the other half for the bias; ``max|x - zp|`` is 2^(bits-1) for symmetric
   activations, 2^bits - 1 for asymmetric ones), and Q and K are narrowed until
   ``head_dim * 2^(bq-1) * 2^(bk-1) < 2^31`` for Q·Kᵀ; a layer reading the value through ops that keep its
   width (pools, flatten, activations: :data:`WIDTH_PRESERVING`) counts as reading it;
6. the operands of a product of two tensors are narrowed (the wider first, not below ``min(act_bits, 8)``) until
   ``(2^ba - 1)(2^bb - 1) < 2^31``, the int32 product's bound.

Attention intermediates are named ``<attention node>.<q|k|v|scores|context>`` (the leaf's calibration
intermediates). The result is a dict ``value name -> bits`` for the values whose width differs from
``act_bits``.
"""

from __future__ import annotations

import torch.fx as fx

from .capture import op_kind
from .config import QuantConfig
from .bounds import row_abs_sums
from .observers import sqnr_db
from .weights import quantize_weight

# Kinds whose lowering gives the output its input's width (quantize/lower.py ``like``).
WIDTH_PRESERVING = ("identity", "flatten", "maxpool", "avgpool", "adaptive_avgpool", "mean", "resize", "relu",
                    "relu6", "hardtanh", "neg")
SOFTMAX_MAX_STEP = 1.0 / 16  # largest scores step at act_bits: exps then err by at most e^(1/32) - 1 = 3.2%


def input_span(bits: int, symmetric: bool) -> int:
    """max |x - zp| of a ``bits``-bit activation: 2^(bits-1) when symmetric (zp 0), else 2^bits - 1 (the zero
    point may sit at either end of the range, as it does after a ReLU)."""
    return 1 << (bits - 1) if symmetric else (1 << bits) - 1


def _accumulator_width(weights, weight_bits: int, symmetric: bool) -> int:
    """Largest activation width keeping ``max_oc sum|w_q| * input_span(bits) < 2^30`` for every weight matrix
    given."""
    bits = 16
    for w in weights:
        qw, _ = quantize_weight(w.detach().double().numpy(), weight_bits)
        row_sum = int(row_abs_sums(qw).max(initial=1))
        while bits > 2 and row_sum * input_span(bits, symmetric) >= 2**30:
            bits -= 1
    return bits


def consumer_weights(gm: fx.GraphModule, user: fx.Node) -> list:
    """The weight matrices of a Linear / Conv2d / attention user (whose int32 accumulators see the value)."""
    kind, _ = op_kind(gm, user)
    if kind in ("linear", "conv"):
        return [gm.get_submodule(user.target).weight]
    if kind == "attention":
        return [w for w, _ in gm.get_submodule(user.target).qkv_params()]
    if kind == "patch_embed":
        return [gm.get_submodule(user.target).proj.weight]
    return []


def choose_widths(gm: fx.GraphModule, cfg: QuantConfig, observers: dict) -> dict[str, int]:
    if not cfg.auto_bits and cfg.residual_bits is None and cfg.act_bits <= 8:
        return {}
    floor = min(cfg.act_bits, 8)  # narrowing stops here: below 8 bits the proof's error is the user's to see
    bits: dict[str, int] = {}
    if cfg.auto_bits:
        for name, obs in observers.items():
            if obs.count and not obs.integral and sqnr_db(obs, cfg.act_bits, cfg.act_symmetric) < cfg.auto_bits_sqnr_db:
                bits[name] = 16
            if name.endswith(".scores") and max(-obs.lo, obs.hi) / ((1 << (cfg.act_bits - 1)) - 1) > SOFTMAX_MAX_STEP:
                bits[name] = 16
    if cfg.residual_bits is not None:
        for node in gm.graph.nodes:
            if op_kind(gm, node)[0] == "add":
                for value in (node, *node.args[:2]):
                    if isinstance(value, fx.Node) and value.op != "get_attr":
                        bits[value.name] = cfg.residual_bits
    limits: dict[fx.Node, int] = {}

    def reader_limit(node: fx.Node) -> int:
        """The widest ``node`` may be for every weighted layer reading it, directly or through ops whose output
        keeps their input's width (pools, flatten, activations, identities)."""
        if node not in limits:
            limits[node] = min((reader_limit(u) if op_kind(gm, u)[0] in WIDTH_PRESERVING else
                                _accumulator_width(consumer_weights(gm, u), cfg.weight_bits, cfg.act_symmetric)
                                for u in node.users), default=16)
        return limits[node]

    for node in gm.graph.nodes:
        limit = reader_limit(node)
        if bits.get(node.name, cfg.act_bits) > limit:
            bits[node.name] = max(limit, floor)
        if op_kind(gm, node)[0] == "attention":
            mod = gm.get_submodule(node.target)
            head_dim, context = mod.head_dim, f"{node.name}.context"
            if mod.output_projection() is not None and bits.get(context, cfg.act_bits) > floor:
                bits[context] = max(floor, min(bits.get(context, cfg.act_bits),
                                                      _accumulator_width([mod.output_projection().weight],
                                                                         cfg.weight_bits, cfg.act_symmetric)))
            q, k = f"{node.name}.q", f"{node.name}.k"
            while head_dim << (bits.get(q, cfg.act_bits) + bits.get(k, cfg.act_bits) - 2) >= 2**31:
                wider = q if bits.get(q, cfg.act_bits) >= bits.get(k, cfg.act_bits) else k
                bits[wider] = bits.get(wider, cfg.act_bits) - 1
    for node in gm.graph.nodes:  # the int32 product of two tensors (mul): (2^ba - 1)(2^bb - 1) < 2^31
        if op_kind(gm, node)[0] == "mul" and len(node.args) == 2 and all(isinstance(a, fx.Node) for a in node.args):
            a, b = (arg.name for arg in node.args)
            while ((1 << bits.get(a, cfg.act_bits)) - 1) * ((1 << bits.get(b, cfg.act_bits)) - 1) >= 2**31:
                wider = a if bits.get(a, cfg.act_bits) >= bits.get(b, cfg.act_bits) else b
                if bits.get(wider, cfg.act_bits) <= floor:
                    break
                bits[wider] = bits.get(wider, cfg.act_bits) - 1
    return {name: b for name, b in bits.items() if b != cfg.act_bits}
