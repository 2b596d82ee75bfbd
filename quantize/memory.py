"""Memory of an IntModel: tensor lifetimes, a static activation arena, and the constant (flash) bytes.

One plan serves the generated C (codegen places every activation at its offset in one static arena) and the
cost model (hwsim/cost.py reports the arena as the model's peak activation RAM), so the RAM an estimate
states is the RAM the generated program declares.

Lifetimes: integer nodes are numbered in model order (the quantize/dequantize boundary nodes are not steps:
the program's inputs live in the caller's buffers). A tensor lives from the step that writes it to the last
step that reads it, inclusive, so a kernel's inputs and output never share memory; a graph output lives to the
end. Placement is greedy by size, first fit: tensors are placed largest first at the lowest
:data:`ALIGN`-byte-aligned offset that overlaps no already placed tensor with an overlapping lifetime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .ir import IntModel

ALIGN = 16


@dataclass
class ArenaPlan:
    offsets: dict[str, int]
    sizes: dict[str, int]
    lifetimes: dict[str, tuple[int, int]]
    arena_bytes: int  # the static arena: peak activation RAM of one sample
    total_bytes: int  # sum of all planned tensors, the no-reuse baseline


def plan_arena(sizes: dict[str, int], lifetimes: dict[str, tuple[int, int]]) -> ArenaPlan:
    """First-fit placement of tensors of ``sizes`` bytes alive over the inclusive step ranges ``lifetimes``."""
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first, last)
    offsets = {}
    for name in sorted(sizes, key=lambda n: (-sizes[n], lifetimes[n][0], n)):
        first, last = lifetimes[name]
        size = sizes[name]
        conflicts = sorted((o, e) for o, e, f, l in placed if f <= last and first <= l)
        offset = 0
        for o, e in conflicts:
            if offset + size <= o:
                break
            offset = max(offset, -(-e // ALIGN) * ALIGN)
        offsets[name] = offset
        placed.append((offset, offset + size, first, last))
    arena = max((e for _, e, _, _ in placed), default=0)
    return ArenaPlan(offsets, dict(sizes), dict(lifetimes), arena, sum(sizes.values()))


def tensor_bytes(model: IntModel, name: str) -> int:
    t = model.tensors[name]
    return math.prod(t.shape) * np.dtype(t.dtype).itemsize


def plan_model_arena(model: IntModel) -> ArenaPlan:
    """The arena plan of every tensor an integer node writes (see the module docstring for the rules)."""
    steps = model.integer_nodes()
    outputs = {n.inputs[0] for n in model.nodes if n.op == "dequantize"}
    sizes, lifetimes = {}, {}
    for i, node in enumerate(steps):
        name = node.outputs[0]
        sizes[name] = tensor_bytes(model, name)
        lifetimes[name] = (i, len(steps) if name in outputs else i)
        for src in node.inputs:
            if src in lifetimes:
                lifetimes[src] = (lifetimes[src][0], max(lifetimes[src][1], i))
    return plan_arena(sizes, lifetimes)


def constant_bytes(model: IntModel) -> int:
    """Bytes of every integer constant (weights, biases, requant multipliers and shifts, tables)."""
    return int(sum(a.nbytes for a in model.constants.values()))
