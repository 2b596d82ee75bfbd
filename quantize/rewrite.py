"""Graph rewrites at capture, before BatchNorm folding and the support check: the forms real model code takes
turned into the module forms the lowering knows, with the float function unchanged.

* :func:`functional_convs`: ``F.conv2d(x, self.weight, self.bias, stride, padding, dilation, groups)`` on
  parameters (how TF-style "same padding" convolutions and other Conv2d subclasses with their own ``forward`` are
  written) becomes a call of an ``nn.Conv2d`` holding those parameters, so a following BatchNorm folds into it.
* :func:`merge_zero_pads`: a zero padding (``nn.ZeroPad2d``, ``nn.ConstantPad2d`` with value 0, ``F.pad`` with
  mode "constant" and value 0) whose only reader is a convolution becomes part of that convolution's padding,
  asymmetric where it is (:class:`PaddedConv2d`), which the IR's conv2d states as (top, left, bottom, right).
  The IR pads a convolution with the input zero point, the integer for real 0, so this is exact.
* :func:`transposed_convs`: an ``nn.ConvTranspose2d`` becomes zeros inserted between its input pixels
  (:class:`ZeroInsertion`, the ``zero_insert`` op, filled with the input zero point) and the equivalent stride-1
  ``nn.Conv2d`` (flipped kernel, swapped channels, padding ``dilation * (k - 1) - padding``; ``output_padding``
  as more inserted zeros at the bottom/right): exact, at the price of the multiplications by the inserted zeros.
* :func:`multihead_attentions`: ``nn.MultiheadAttention`` used for self-attention becomes the attention module the
  transformer lowering knows (intonly.models.attention), so it lowers like a ViT's.
* :func:`conv1ds`: an ``nn.Conv1d`` becomes the equivalent ``nn.Conv2d`` with a (1, k) kernel
  (:class:`Conv1dAs2d`), which the lowering runs on the (C, L) input stored as a (1, L, C) image.
* :func:`standalone_batchnorms`: a ``BatchNorm2d`` that does not follow a convolution (so did not fold into one),
  in eval mode with running statistics, is the per-channel affine map ``g x + b`` with ``g = gamma /
  sqrt(var + eps)``, ``b = beta - mean g``: it becomes the depthwise 1x1 ``nn.Conv2d`` computing exactly that.
"""

from __future__ import annotations

import operator

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

CONV2D_FUNCTIONS = (F.conv2d, torch.conv2d)
# What the rewrites let a model call, by the IR op it ends in (the PyTorch column of `intonly ops`).
FRONTENDS = {"conv2d": ("torch.conv2d", "torch.nn.functional.conv2d", "torch.nn.ZeroPad2d (merged into the conv)",
                        "torch.nn.ConstantPad2d (value 0, merged)", "torch.nn.functional.pad (constant 0, merged)",
                        "torch.nn.BatchNorm2d (not after a conv: a depthwise 1x1 conv)"),
             **{op: ("torch.nn.MultiheadAttention (self-attention)",) for op in ("dense", "matmul", "shiftmax",
                                                                                 "iexp_softmax", "log2_softmax",
                                                                                 "shift_matmul")}}
CONV2D_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
CONV2D_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}


class PaddedConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` after a zero padding that is not the same on both sides of an axis (TF's "SAME" padding
    of a strided convolution). ``pads`` = (top, left, bottom, right) in total; ``forward`` pads and convolves
    exactly as the two did."""

    def __init__(self, conv: nn.Conv2d, pads: tuple[int, int, int, int]):
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation,
                         conv.groups, conv.bias is not None)
        self.weight, self.bias = conv.weight, conv.bias
        self.pads = tuple(int(p) for p in pads)

    def forward(self, x):
        top, left, bottom, right = self.pads
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, self.bias, self.stride, 0, self.dilation,
                        self.groups)


class Conv1dAs2d(nn.Conv2d):
    """An ``nn.Conv1d`` as the ``nn.Conv2d`` with a (1, k) kernel over its input seen as (C, 1, L): ``forward``
    takes and returns (N, C, L) tensors, computing what the Conv1d did."""

    def __init__(self, conv: nn.Conv1d):
        padding = conv.padding if isinstance(conv.padding, str) else (0, conv.padding[0])
        super().__init__(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]), (1, conv.stride[0]), padding,
                         (1, conv.dilation[0]), conv.groups, conv.bias is not None)
        self.weight = nn.Parameter(conv.weight.detach().unsqueeze(2), requires_grad=False)
        self.bias = conv.bias

    def forward(self, x):
        return super().forward(x.unsqueeze(2)).squeeze(2)


class ZeroInsertion(nn.Module):
    """``stride - 1`` zeros between neighbouring pixels of an (N, C, H, W) input, and ``extra`` (bottom, right)
    rows and columns of zeros after the last: (H - 1) * sh + 1 + extra_h rows."""

    def __init__(self, stride: tuple[int, int], extra: tuple[int, int]):
        super().__init__()
        self.stride, self.extra = tuple(int(s) for s in stride), tuple(int(e) for e in extra)

    def forward(self, x):
        (sh, sw), (eh, ew) = self.stride, self.extra
        out = x.new_zeros(x.shape[0], x.shape[1], (x.shape[2] - 1) * sh + 1 + eh, (x.shape[3] - 1) * sw + 1 + ew)
        out[:, :, :out.shape[2] - eh:sh, :out.shape[3] - ew:sw] = x
        return out


def transposed_conv_refusal(conv: nn.ConvTranspose2d) -> str | None:
    """Why a ConvTranspose2d cannot become a zero insertion and a convolution, or None."""
    if conv.padding_mode != "zeros":
        return f"padding_mode={conv.padding_mode!r} (only 'zeros')"
    if isinstance(conv.padding, str) or any(p > d * (k - 1) for p, d, k in zip(conv.padding, conv.dilation,
                                                                                 conv.kernel_size)):
        return "padding above dilation * (kernel_size - 1) (the output would be cropped)"
    return None


def transposed_convs(gm: fx.GraphModule) -> None:
    """Every ``nn.ConvTranspose2d`` call (one input: no ``output_size`` argument) becomes a :class:`ZeroInsertion`
    by its stride followed by the ``nn.Conv2d`` (stride 1, same dilation and groups) that computes the same:
    the kernel flipped in both spatial axes with input and output channels swapped per group, and the padding
    ``dilation * (kernel - 1) - padding`` on each side (``output_padding``: that many more zero rows/columns
    inserted at the bottom/right). The conv keeps the transposed conv's path, so a BatchNorm after it folds into
    it; the insertion (none for stride 1 without output padding) is ``<path>_zero_insertion``."""
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or type(gm.get_submodule(node.target)) is not nn.ConvTranspose2d or \
                len(node.args) != 1 or node.kwargs:
            continue
        tconv = gm.get_submodule(node.target)
        if transposed_conv_refusal(tconv) is not None:
            continue
        groups, (kh, kw) = tconv.groups, tconv.kernel_size
        w = tconv.weight.detach()                               # (in, out / groups, kh, kw)
        per_in, per_out = w.shape[0] // groups, w.shape[1]
        w = w.reshape(groups, per_in, per_out, kh, kw).transpose(1, 2).reshape(groups * per_out, per_in, kh, kw)
        conv = nn.Conv2d(tconv.in_channels, tconv.out_channels, (kh, kw), 1, 0, tconv.dilation, groups,
                         tconv.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(w.flip(2, 3))
            if tconv.bias is not None:
                conv.bias.copy_(tconv.bias)
        conv.padding = tuple(d * (k - 1) - p for d, k, p in zip(tconv.dilation, tconv.kernel_size, tconv.padding))
        path = str(node.target)
        gm.add_submodule(path, conv.eval())
        if max(tconv.stride) > 1 or max(tconv.output_padding) > 0:
            gm.add_submodule(f"{path}_zero_insertion", ZeroInsertion(tconv.stride, tconv.output_padding))
            with gm.graph.inserting_before(node):
                inserted = gm.graph.call_module(f"{path}_zero_insertion", node.args)
            inserted.meta = dict(node.meta)
            node.args = (inserted,)
    gm.recompile()


def multihead_attention_refusal(mha: nn.MultiheadAttention, node: fx.Node) -> str | None:
    """Why a call of ``nn.MultiheadAttention`` cannot become the integer self-attention, or None."""
    args = dict(zip(("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask"), node.args),
                **node.kwargs)
    if not mha.batch_first:
        return "batch_first=False (the batch must be the first axis: pass batch_first=True)"
    if not (args.get("query") is args.get("key") is args.get("value")):
        return "different query, key and value (only self-attention, mha(x, x, x))"
    if any(args.get(k) is not None for k in ("key_padding_mask", "attn_mask")) or args.get("is_causal"):
        return "a mask (only unmasked self-attention)"
    if mha.bias_k is not None or mha.add_zero_attn or not mha._qkv_same_embed_dim:
        return "add_bias_kv, add_zero_attn or kdim/vdim"
    if any(u.op != "call_function" or u.target is not operator.getitem or u.args[1] != 0 for u in node.users):
        return "its attention weights used (only the output, mha(x, x, x)[0])"
    return None


def multihead_attentions(gm: fx.GraphModule) -> None:
    """Every self-attention call of an ``nn.MultiheadAttention`` (:func:`multihead_attention_refusal` says which)
    becomes a call of :class:`intonly.models.attention.TorchMultiheadAttention` with the same parameters, under
    the same path, whose result is the attention output (the original's ``[0]``)."""
    from intonly.models.attention import TorchMultiheadAttention

    for node in list(gm.graph.nodes):
        if node.op != "call_module" or type(gm.get_submodule(node.target)) is not nn.MultiheadAttention:
            continue
        mha = gm.get_submodule(node.target)
        if multihead_attention_refusal(mha, node) is not None:
            continue
        gm.add_submodule(node.target, TorchMultiheadAttention(mha).eval())
        node.args, node.kwargs = (node.args[0] if node.args else node.kwargs["query"],), {}
        for user in list(node.users):
            user.replace_all_uses_with(node)
            gm.graph.erase_node(user)
    gm.recompile()


def conv1ds(gm: fx.GraphModule) -> None:
    """Every ``nn.Conv1d`` (zeros padding mode; BatchNorm1d after it already folded) becomes a
    :class:`Conv1dAs2d` under the same path."""
    for node in gm.graph.nodes:
        if node.op == "call_module" and type(gm.get_submodule(node.target)) is nn.Conv1d:
            conv = gm.get_submodule(node.target)
            if conv.padding_mode == "zeros":
                gm.add_submodule(node.target, Conv1dAs2d(conv).eval())
    gm.recompile()


def pair(v) -> list[int]:
    """An int or a pair of ints (PyTorch's kernel_size, stride, padding, dilation) as ``[h, w]``."""
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


def conv_padding(mod: nn.Conv2d) -> list[int]:
    """A Conv2d's zero padding as (top, left, bottom, right), including ``padding="same"`` (the extra pixel of an
    even kernel goes bottom/right, as PyTorch does) and a :class:`PaddedConv2d`'s asymmetric pads."""
    if isinstance(mod, PaddedConv2d):
        return list(mod.pads)
    if isinstance(mod.padding, str):
        if mod.padding == "valid":
            return [0, 0, 0, 0]
        total = [d * (k - 1) for d, k in zip(pair(mod.dilation), pair(mod.kernel_size))]
        return [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]
    ph, pw = pair(mod.padding)
    return [ph, pw, ph, pw]


def _arguments(node: fx.Node) -> dict:
    values = dict(CONV2D_DEFAULTS)
    values.update(zip(CONV2D_ARGS, node.args))
    values.update(node.kwargs)
    return values


def _parameter(gm: fx.GraphModule, node) -> nn.Parameter | None:
    if isinstance(node, fx.Node) and node.op == "get_attr":
        value = gm.get_submodule(node.target.rpartition(".")[0]) if "." in node.target else gm
        value = getattr(value, node.target.rpartition(".")[2])
        return value if isinstance(value, torch.Tensor) else None
    return None


def functional_convs(gm: fx.GraphModule) -> None:
    """Every ``F.conv2d`` / ``torch.conv2d`` of a parameter weight (and a parameter bias or none) with constant
    stride, padding, dilation and groups becomes a call of an ``nn.Conv2d`` holding them. It takes the place of
    the module whose ``weight`` it is (a Conv2d subclass with its own ``forward``), keeping that module's other
    children and parameters reachable under the same path, so the layer keeps the name the user knows. A weight
    with another name, of a module the graph also calls, or shared with an earlier call gives a conv named after
    the call."""
    called = {n.target for n in gm.graph.nodes if n.op == "call_module"}
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in CONV2D_FUNCTIONS:
            continue
        a = _arguments(node)
        weight, bias = _parameter(gm, a["weight"]), _parameter(gm, a["bias"])
        settings = (a["stride"], a["padding"], a["dilation"], a["groups"])
        if (weight is None or weight.dim() != 4 or (a["bias"] is not None and bias is None)
                or any(isinstance(s, fx.Node) for s in settings)):
            continue
        conv = nn.Conv2d(weight.shape[1] * a["groups"], weight.shape[0], tuple(weight.shape[2:]), a["stride"],
                         a["padding"], a["dilation"], a["groups"], bias is not None)
        conv.weight = weight if isinstance(weight, nn.Parameter) else nn.Parameter(weight, requires_grad=False)
        if bias is not None:
            conv.bias = bias if isinstance(bias, nn.Parameter) else nn.Parameter(bias, requires_grad=False)
        owner_path, _, attr = a["weight"].target.rpartition(".")
        if owner_path and attr == "weight" and owner_path not in called:   # the module holding the conv's weight,
            # not called as a module itself, nor taken over by another call sharing the weight
            owner = gm.get_submodule(owner_path)
            for child_name, child in owner.named_children():
                conv.add_module(child_name, child)
            for name, value in [*owner.named_parameters(recurse=False), *owner.named_buffers(recurse=False)]:
                if name not in ("weight", "bias"):
                    setattr(conv, name, value)
            path = owner_path
        else:
            path = node.name
        called.add(path)
        gm.add_submodule(path, conv.eval())
        with gm.graph.inserting_before(node):
            call = gm.graph.call_module(path, (a["input"],))
        call.meta = dict(node.meta)
        node.replace_all_uses_with(call)
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()


def _zero_pad(gm: fx.GraphModule, node) -> tuple[int, int, int, int] | None:
    """(left, right, top, bottom) of a 2-D zero padding node with non-negative sizes, else None."""
    if not isinstance(node, fx.Node):
        return None
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        if type(mod) in (nn.ZeroPad2d, nn.ConstantPad2d) and float(getattr(mod, "value", 0.0)) == 0.0:
            pads = tuple(mod.padding)
            return pads if len(pads) == 4 and min(pads) >= 0 else None
    if node.op == "call_function" and node.target is F.pad:
        args = dict(zip(("input", "pad", "mode", "value"), node.args), **node.kwargs)
        pads = args.get("pad")
        if (args.get("mode", "constant") == "constant" and (args.get("value") or 0.0) == 0.0 and
                isinstance(pads, (tuple, list)) and len(pads) == 4 and
                all(isinstance(p, int) and p >= 0 for p in pads)):
            return tuple(pads)
    return None


def merge_zero_pads(gm: fx.GraphModule) -> None:
    """A zero padding read only by an ``nn.Conv2d`` (numeric padding, zeros mode) becomes part of its padding:
    symmetric totals stay an ``nn.Conv2d``, others become a :class:`PaddedConv2d`."""
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or type(gm.get_submodule(node.target)) is not nn.Conv2d or not node.args:
            continue
        conv, pad_node = gm.get_submodule(node.target), node.args[0]
        pads = _zero_pad(gm, pad_node)
        if pads is None or len(pad_node.users) != 1 or isinstance(conv.padding, str) or conv.padding_mode != "zeros":
            continue
        left, right, top, bottom = pads
        ph, pw = conv.padding
        total = (top + ph, left + pw, bottom + ph, right + pw)
        if total[0] == total[2] and total[1] == total[3]:
            conv.padding = (total[0], total[1])
        else:
            gm.add_submodule(node.target, PaddedConv2d(conv, total).eval())
        node.args = (pad_node.args[0],) + tuple(node.args[1:])
        gm.graph.erase_node(pad_node)
        if pad_node.op == "call_module":
            gm.delete_submodule(pad_node.target)   # it may live inside a module still in use (the conv itself)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()   # the merged paddings, the folded BatchNorms
    gm.recompile()


def standalone_batchnorms(gm: fx.GraphModule) -> None:
    """Each call of a ``BatchNorm2d`` left after folding (eval mode, running statistics) becomes a call of the
    depthwise 1x1 ``nn.Conv2d`` computing the same per-channel affine map, under the same path."""
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        bn = gm.get_submodule(node.target)
        if type(bn) is not nn.BatchNorm2d or bn.training or bn.running_mean is None:
            continue
        with torch.no_grad():
            gain = torch.rsqrt(bn.running_var.double() + bn.eps)
            shift = -bn.running_mean.double() * gain
            if bn.affine:
                gain, shift = gain * bn.weight.double(), shift * bn.weight.double() + bn.bias.double()
            conv = nn.Conv2d(bn.num_features, bn.num_features, 1, groups=bn.num_features)
            conv.weight.copy_(gain.reshape(-1, 1, 1, 1))
            conv.bias.copy_(shift)
        gm.add_submodule(node.target, conv.eval())
    gm.recompile()
