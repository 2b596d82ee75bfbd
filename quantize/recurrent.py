"""LSTM and GRU layers unrolled over their (static) sequence length into the ops the integer pipeline already has.

An ``nn.LSTM`` / ``nn.GRU`` call becomes, for every layer, direction and time step, the float graph of its cell
written with ``nn.Linear``, ``torch.sigmoid``, ``torch.tanh``, products, sums and differences; each of those then
lowers as usual (``dense`` with an int32 accumulator, ``lookup`` tables for sigmoid/tanh, ``mul``, ``add``,
``requantize``), with its own calibrated scale at every step. The float function is unchanged up to float
summation order. The cell equations are PyTorch's (torch.nn.LSTM / torch.nn.GRU documentation):

* LSTM: ``i, f, o = sigmoid(W_i* x + W_h* h + b)``, ``g = tanh(W_ig x + W_hg h + b)``, ``c' = f c + i g``,
  ``h' = o tanh(c')``. Both biases of a gate are added once (in its input projection).
* GRU: ``r, z = sigmoid(W_i* x + W_h* h + b)``, ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``,
  ``h' = n + z (h - n)`` (the same as PyTorch's ``(1 - z) n + z h``).

The initial state is zero (no ``h0``/``c0`` argument, or ``torch.zeros``): the first step drops the terms that
read it, so ``c_1 = i g`` and a GRU's first ``n`` reads ``r b_hn``. As in TFLM's integer LSTM the gates are
integer-only; unlike it, every gate keeps its own per-step calibrated scale instead of fixed Q3.12/Q0.15 formats.

Supported: ``batch_first=True`` (the batch is the first axis everywhere in intonly), any ``num_layers``,
``bidirectional``, with or without bias, inference dropout; read as ``out`` (the stacked outputs of the last
layer), ``out[:, t]``, ``h_n[k]`` and (LSTM) ``c_n[k]``. Refused with a reason (:func:`refusal`): nonzero initial
states, ``proj_size``, ``batch_first=False`` and other uses of ``h_n``/``c_n``.
"""

from __future__ import annotations

import operator

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.passes.shape_prop import ShapeProp

RECURRENT = (nn.LSTM, nn.GRU)
GATES = {nn.LSTM: ("i", "f", "g", "o"), nn.GRU: ("r", "z", "n")}
FRONTENDS = {"dense": ("torch.nn.LSTM (unrolled)", "torch.nn.GRU (unrolled)"),
             "lookup": ("torch.nn.LSTM (gates)", "torch.nn.GRU (gates)"),
             "mul": ("torch.nn.LSTM (gates)", "torch.nn.GRU (gates)")}


def refusal(gm: fx.GraphModule, node: fx.Node) -> str | None:
    """Why the recurrent call ``node`` cannot be unrolled, or None."""
    mod = gm.get_submodule(node.target)
    if not mod.batch_first:
        return "batch_first=False (the batch must be the first axis: pass batch_first=True)"
    if getattr(mod, "proj_size", 0):
        return "proj_size > 0"
    if len(node.args) > 2 or node.kwargs or (len(node.args) == 2 and not _zeros(node.args[1])):
        return "an initial state argument other than zeros (only the zero initial state)"
    for user in node.users:
        if user.op != "call_function" or user.target is not operator.getitem or user.args[1] not in (0, 1):
            return f"its result used as {user.format_node()} (only out, h_n = result[0], result[1])"
        if user.args[1] == 1 and _state_reads(user, isinstance(mod, nn.LSTM)) is None:
            return "h_n / c_n used other than as h_n[k] (the batch is not their first axis)"
    return None


def _zeros(arg) -> bool:
    """Whether an initial-state argument is ``torch.zeros(...)`` (a tuple of them for an LSTM), perhaps followed by
    ``.to(...)``, ``.detach()``, ``.float()`` or ``.requires_grad_()`` (how tutorials write it)."""
    if isinstance(arg, (tuple, list)):
        return all(_zeros(a) for a in arg)
    while isinstance(arg, fx.Node) and arg.op == "call_method" and arg.target in ("to", "detach", "float",
                                                                                  "requires_grad_"):
        arg = arg.args[0]
    return isinstance(arg, fx.Node) and arg.op == "call_function" and arg.target in (torch.zeros, torch.zeros_like)


def _state_reads(state: fx.Node, lstm: bool) -> list[tuple[fx.Node, int, int]] | None:
    """``(node, which, k)`` for every ``h_n[k]`` (which 0) / ``c_n[k]`` (which 1) read of a recurrent call's second
    result, or None when it is read another way."""
    reads = []
    for user in state.users:
        if user.op != "call_function" or user.target is not operator.getitem:
            return None
        if lstm:   # (h_n, c_n)
            if user.args[1] not in (0, 1):
                return None
            for read in user.users:
                if read.op != "call_function" or read.target is not operator.getitem or not isinstance(read.args[1],
                                                                                                         int):
                    return None
                reads.append((read, user.args[1], read.args[1]))
        elif isinstance(user.args[1], int):
            reads.append((user, 0, user.args[1]))
        else:
            return None
    return reads


class _Cell:
    """Emits one recurrent layer's unrolled float graph before ``anchor``."""

    def __init__(self, gm: fx.GraphModule, anchor: fx.Node, path: str):
        self.gm, self.graph, self.anchor, self.path = gm, gm.graph, anchor, path

    def call(self, fn, *args) -> fx.Node:
        with self.graph.inserting_before(self.anchor):
            node = self.graph.call_function(fn, args)
        node.meta = {k: v for k, v in self.anchor.meta.items() if k == "stack_trace"}
        return node

    def module(self, path: str, x: fx.Node) -> fx.Node:
        with self.graph.inserting_before(self.anchor):
            node = self.graph.call_module(path, (x,))
        node.meta = {k: v for k, v in self.anchor.meta.items() if k == "stack_trace"}
        return node

    def linear(self, name: str, weight: torch.Tensor, bias: torch.Tensor | None) -> str:
        """Add an ``nn.Linear`` holding ``weight``/``bias`` under ``<path>.<name>``; returns its path."""
        lin = nn.Linear(weight.shape[1], weight.shape[0], bias is not None)
        with torch.no_grad():
            lin.weight.copy_(weight)
            if bias is not None:
                lin.bias.copy_(bias)
        path = f"{self.path}.{name}"
        self.gm.add_submodule(path, lin.eval())
        return path

    def buffer(self, name: str, value: torch.Tensor) -> fx.Node:
        target = f"{self.path}.{name}"
        owner = self.gm.get_submodule(self.path)
        owner.register_buffer(name, value.detach().clone().reshape(1, -1))
        with self.graph.inserting_before(self.anchor):
            return self.graph.get_attr(target)


def _layer_weights(mod, layer: int, suffix: str):
    w_ih, w_hh = (getattr(mod, f"weight_{k}_l{layer}{suffix}").detach() for k in ("ih", "hh"))
    if mod.bias:
        b_ih, b_hh = (getattr(mod, f"bias_{k}_l{layer}{suffix}").detach() for k in ("ih", "hh"))
    else:
        b_ih = b_hh = torch.zeros(w_ih.shape[0])
    return w_ih, w_hh, b_ih, b_hh


def _direction(cell: _Cell, mod, layer: int, reverse: bool, xs: list[fx.Node]) -> tuple[list, list]:
    """One layer in one direction over the step inputs ``xs``: the hidden states in time order, and the cell
    states (LSTM; else empty)."""
    suffix = "_reverse" if reverse else ""
    w_ih, w_hh, b_ih, b_hh = _layer_weights(mod, layer, suffix)
    hidden = mod.hidden_size
    lstm = isinstance(mod, nn.LSTM)
    gates = GATES[type(mod)]
    tag = f"l{layer}{suffix}"
    x_proj, h_proj = {}, {}
    for k, gate in enumerate(gates):
        rows = slice(k * hidden, (k + 1) * hidden)
        separate_h_bias = not lstm and gate == "n"   # b_hn stays inside r * (W_hn h + b_hn)
        x_bias = b_ih[rows] if separate_h_bias else b_ih[rows] + b_hh[rows]
        x_proj[gate] = cell.linear(f"{tag}_{gate}_x", w_ih[rows], x_bias if mod.bias else None)
        h_proj[gate] = cell.linear(f"{tag}_{gate}_h", w_hh[rows], b_hh[rows] if separate_h_bias and mod.bias
                                   else None)
    order = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
    hs, cs = [None] * len(xs), [None] * len(xs)
    h = c = None
    for t in order:
        def pre(gate):
            x_part = cell.module(x_proj[gate], xs[t])
            return x_part if h is None else cell.call(operator.add, x_part, cell.module(h_proj[gate], h))
        if lstm:
            i, g, o = cell.call(torch.sigmoid, pre("i")), cell.call(torch.tanh, pre("g")), cell.call(torch.sigmoid,
                                                                                                      pre("o"))
            ig = cell.call(operator.mul, i, g)
            c = ig if c is None else cell.call(operator.add, cell.call(operator.mul, cell.call(torch.sigmoid, pre("f")),
                                                                       c), ig)
            h = cell.call(operator.mul, o, cell.call(torch.tanh, c))
        else:
            r, z = cell.call(torch.sigmoid, pre("r")), cell.call(torch.sigmoid, pre("z"))
            if h is None:
                n_in = cell.module(x_proj["n"], xs[t])
                if mod.bias:
                    n_in = cell.call(operator.add, n_in, cell.call(operator.mul, r, cell.buffer(f"{tag}_b_hn",
                                                                                                b_hh[2 * hidden:])))
                n = cell.call(torch.tanh, n_in)
                h = cell.call(operator.mul, cell.call(operator.sub, 1.0, z), n)
            else:
                n = cell.call(torch.tanh, cell.call(operator.add, cell.module(x_proj["n"], xs[t]),
                                                    cell.call(operator.mul, r, cell.module(h_proj["n"], h))))
                h = cell.call(operator.add, n, cell.call(operator.mul, z, cell.call(operator.sub, h, n)))
        hs[t], cs[t] = h, c
    return hs, (cs if lstm else [])


def _unroll(gm: fx.GraphModule, node: fx.Node, steps: int) -> None:
    mod = gm.get_submodule(node.target)
    path = str(node.target)
    holder = nn.Module()   # the new Linear layers and buffers live under the recurrent module's own path
    gm.add_submodule(path, holder)
    cell = _Cell(gm, node, path)
    xs = [cell.call(operator.getitem, node.args[0], (slice(None), t)) for t in range(steps)]
    finals: list[tuple[fx.Node, fx.Node | None]] = []   # (h_n[k], c_n[k]) in PyTorch's order
    for layer in range(mod.num_layers):
        directions = [_direction(cell, mod, layer, reverse, xs) for reverse in ((False, True) if mod.bidirectional
                                                                               else (False,))]
        finals += [(hs[0 if k else -1], cs[0 if k else -1] if cs else None) for k, (hs, cs) in enumerate(directions)]
        if len(directions) == 1:
            xs = directions[0][0]
        else:
            xs = [cell.call(torch.cat, [fwd, bwd], -1) for fwd, bwd in zip(directions[0][0], directions[1][0])]
    for user in list(node.users):
        if user.args[1] == 0:    # out: (N, T, D)
            _replace_output(cell, user, xs)
        else:
            for read, which, k in _state_reads(user, isinstance(mod, nn.LSTM)):
                read.replace_all_uses_with(finals[k][which])
                gm.graph.erase_node(read)
            for inner in list(user.users):
                gm.graph.erase_node(inner)
            gm.graph.erase_node(user)


def _replace_output(cell: _Cell, out: fx.Node, steps: list[fx.Node]) -> None:
    """``out[:, t]`` reads step t's output directly; any other use gets ``torch.stack(steps, 1)``."""
    stacked = None
    for user in list(out.users):
        index = user.args[1] if user.op == "call_function" and user.target is operator.getitem else None
        if isinstance(index, tuple) and index[:1] == (slice(None),) and len(index) >= 2 and \
                isinstance(index[1], int) and all(i == slice(None) for i in index[2:]):
            user.replace_all_uses_with(steps[index[1]])
            cell.graph.erase_node(user)
            continue
        if stacked is None:
            stacked = cell.call(torch.stack, steps, 1)
        user.replace_input_with(out, stacked)
    cell.graph.erase_node(out)


def unroll_recurrent(gm: fx.GraphModule, example: list[torch.Tensor]) -> None:
    """Unroll every supported ``nn.LSTM`` / ``nn.GRU`` call of ``gm`` over the sequence length it sees on
    ``example`` (one batch of the graph's inputs); the others stay and are reported by the support check."""
    calls = [n for n in gm.graph.nodes if n.op == "call_module" and type(gm.get_submodule(n.target)) in RECURRENT
             and refusal(gm, n) is None]
    if not calls:
        return
    ShapeProp(gm).propagate(*example)
    for node in calls:
        _unroll(gm, node, int(node.args[0].meta["tensor_meta"].shape[1]))
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
