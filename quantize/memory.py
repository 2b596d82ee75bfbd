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
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np

from .ir import IntModel
from .ops import OPS

ALIGN = 16


@dataclass
class ArenaPlan:
    offsets: dict[str, int]
    sizes: dict[str, int]
    lifetimes: dict[str, tuple[int, int]]
    arena_bytes: int  # the static arena: peak activation RAM of one sample
    total_bytes: int  # sum of all planned tensors, the no-reuse baseline


def plan_arena(sizes: dict[str, int], lifetimes: dict[str, tuple[int, int]]) -> ArenaPlan:
    """First-fit placement of tensors of ``sizes`` bytes alive over the inclusive step ranges ``lifetimes``.

    Tensors are placed largest first (ties: earlier first step, then name) at the lowest offset that clears,
    in offset order, every already placed tensor whose lifetime overlaps theirs. Only those tensors are
    looked at: placed tensors are indexed by the steps they are alive at (the distinct first steps, so any
    step numbering works), so a tensor overlapping ``[first, last]`` is either alive at ``first`` or starts
    in ``(first, last]``. The cost is the sum of the lifetimes (in distinct first steps) plus the overlapping
    pairs, not all pairs. A lifetime that ends before it starts is a ValueError.
    """
    for n in sizes:
        if lifetimes[n][1] < lifetimes[n][0]:
            raise ValueError(f"tensor {n!r}: lifetime {lifetimes[n]} ends before it starts")
    starts = sorted({first for first, _ in (lifetimes[n] for n in sizes)})
    alive: list[list[tuple[int, int]]] = [[] for _ in starts]     # per start step: placed (offset, end) alive
    starting: list[list[tuple[int, int]]] = [[] for _ in starts]  # per start step: placed (offset, end) from it
    offsets = {}
    arena = 0
    for name in sorted(sizes, key=lambda n: (-sizes[n], lifetimes[n][0], n)):
        first, last = lifetimes[name]
        size = sizes[name]
        lo = bisect_left(starts, first)             # starts[lo] == first
        hi = bisect_right(starts, last)             # start steps within [first, last]: lo .. hi-1
        conflicts = list(alive[lo])                 # alive at ``first`` (started at or before it)
        for k in range(lo + 1, hi):                 # started after ``first``, no later than ``last``
            conflicts += starting[k]
        conflicts.sort()
        offset = 0
        for o, e in conflicts:
            if offset + size <= o:
                break
            offset = max(offset, -(-e // ALIGN) * ALIGN)
        offsets[name] = offset
        span = (offset, offset + size)
        starting[lo].append(span)
        for k in range(lo, hi):
            alive[k].append(span)
        arena = max(arena, offset + size)
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


# ---- report --------------------------------------------------------------------------------------------------

def live_bytes(plan: ArenaPlan) -> list[int]:
    """Bytes of the tensors alive at each step of ``plan`` (index = step): the sum over every tensor whose
    inclusive lifetime covers the step."""
    steps = max((last for _, last in plan.lifetimes.values()), default=-1) + 1
    live = [0] * steps
    for name, (first, last) in plan.lifetimes.items():
        for s in range(first, last + 1):
            live[s] += plan.sizes[name]
    return live


def inplace_candidates(model: IntModel, plan: ArenaPlan | None = None) -> dict[str, str]:
    """Output -> input pairs an in-place planner could merge: the node's op is elementwise (``OpDef.elementwise``: output
    element i depends on input element i only, so a kernel *could* write its output over a dying input; the
    generated kernels do not, see arena_report), the input is
    an arena tensor (not a program input) whose last read is this node and that is not a graph output, with the
    same element count and an element width at least the output's."""
    plan = plan or plan_model_arena(model)
    pairs = {}
    for i, node in enumerate(model.integer_nodes()):
        if not OPS[node.op].elementwise:
            continue
        out = model.tensors[node.outputs[0]]
        for src in node.inputs:
            if src not in plan.lifetimes or plan.lifetimes[src][1] != i or src in pairs.values():
                continue
            t = model.tensors[src]
            if (math.prod(t.shape) == math.prod(out.shape)
                    and np.dtype(t.dtype).itemsize >= np.dtype(out.dtype).itemsize):
                pairs[out.name] = src
                break
    return pairs


def inplace_plan(model: IntModel) -> ArenaPlan:
    """The arena plan if every pair of :func:`inplace_candidates` shared one buffer (chains merge: a buffer is
    the union of the lifetimes of its tensors, its size the largest of them). An estimate only: the generated C
    does not do this."""
    plan = plan_model_arena(model)
    pairs = inplace_candidates(model, plan)
    root = {}
    for name in plan.sizes:  # model order: an input's root is known before its output is merged into it
        root[name] = root[pairs[name]] if name in pairs else name
    sizes, lifetimes = {}, {}
    for name, r in root.items():
        first, last = plan.lifetimes[name]
        f0, l0 = lifetimes.get(r, (first, last))
        lifetimes[r] = (min(f0, first), max(l0, last))
        sizes[r] = max(sizes.get(r, 0), plan.sizes[name])
    return plan_arena(sizes, lifetimes)


def arena_report(model: IntModel) -> dict:
    """How well the static arena of ``model`` (:func:`plan_model_arena`, the one the generated C declares) reuses
    memory, and how close it is to the best any placement could do.

    Keys:

    * ``arena_bytes`` -- the planned arena (the generated C's ``INTONLY_ARENA_BYTES``);
    * ``activation_bytes_total`` -- the sum of the sizes of all planned activation tensors (every tensor an
      integer node writes), i.e. the arena without any reuse;
    * ``ratio`` -- ``arena_bytes / activation_bytes_total`` (0 for a model without planned tensors);
    * ``peak_step``, ``peak_node`` -- the integer-node step (and that node's name) where the tensors alive at
      once take the most bytes (the earliest such step);
    * ``peak_live_bytes`` -- those bytes: a lower bound on the arena that no placement can beat, because tensors
      alive at the same step may not overlap (``arena_bytes >= peak_live_bytes`` always; equal means the
      first-fit placement is optimal for these lifetimes);
    * ``peak_live`` -- that set, ``[{"name", "bytes", "lifetime": [first, last]}]``, largest first;
    * ``inplace_arena_bytes``, ``inplace_peak_live_bytes`` -- the same two numbers if the outputs of elementwise
      ops could overwrite a dying input (:func:`inplace_plan`): what in-place reuse would buy;
    * ``inplace_pairs`` -- the (output, input) tensor pairs that estimate merges;
    * ``any_inplace_peak_live_bytes`` -- the lower bound if *any* kernel (convs included) could write its output
      over the inputs it reads for the last time: per step, the live bytes less ``min(output, dying inputs)``.
      ``arena_bytes - any_inplace_peak_live_bytes`` bounds what any in-place scheme could save.

    **No in-place reuse** (a decision, not an omission): every kernel takes its tensors as ``restrict`` pointers
    and the lifetimes are inclusive, so an output never aliases an input. Aliasing would be undefined behaviour
    under those prototypes, would forbid the vectorisation ``restrict`` buys in every SIMD family, and each
    kernel would have to be proved safe to run in place (read-before-write order, wider outputs). The cost is
    measured by the ``inplace_*`` keys. On the demo digits CNN (8-bit) it is nothing: the arena is 3,072 B of
    6,410 B either way, because the peak is at the pointwise 1x1 conv ``pw.0`` (the stem output kept for the
    residual add, the depthwise output and the pointwise output, 1,024 B each), which is not elementwise. Even
    if every kernel, convs included, could overwrite a dying input, that step would hold 2,048 B
    (``any_inplace_peak_live_bytes``): at most 1,024 B (33 %) for any in-place scheme. On the tiny ViT (``QuantConfig.transformer()``) the first-fit arena is
    11,168 B of 152,330 B; elementwise in-place (mainly the residual adds of the int16 stream) would make it
    8,992 B (-2,176 B), while the lower bound stays 8,704 B (a ShiftGELU step: int8 in, int16 out, so not in
    place), so a better placement alone could save up to 2,464 B there; any in-place scheme at most 4,640 B
    (bound 6,528 B).
    """
    plan = plan_model_arena(model)
    steps = model.integer_nodes()
    live = live_bytes(plan)
    total = plan.total_bytes
    report = {"arena_bytes": plan.arena_bytes, "activation_bytes_total": total,
              "ratio": plan.arena_bytes / total if total else 0.0,
              "peak_step": None, "peak_node": None, "peak_live_bytes": 0, "peak_live": []}
    if live:
        peak = max(range(len(live)), key=lambda s: (live[s], -s))
        names = sorted((n for n, (f, l) in plan.lifetimes.items() if f <= peak <= l),
                       key=lambda n: (-plan.sizes[n], n))
        report.update(peak_step=peak, peak_node=steps[peak].name if peak < len(steps) else None,
                      peak_live_bytes=live[peak],
                      peak_live=[{"name": n, "bytes": plan.sizes[n], "lifetime": list(plan.lifetimes[n])}
                                 for n in names])
    any_inplace = []
    for s, node in enumerate(steps):
        dying = sum(plan.sizes[t] for t in dict.fromkeys(node.inputs) if t in plan.lifetimes and
                    plan.lifetimes[t][1] == s)
        any_inplace.append(live[s] - min(plan.sizes[node.outputs[0]], dying))
    inplace = inplace_plan(model)
    report.update(any_inplace_peak_live_bytes=max(any_inplace, default=0),
                  inplace_arena_bytes=inplace.arena_bytes,
                  inplace_peak_live_bytes=max(live_bytes(inplace), default=0),
                  inplace_pairs=sorted(inplace_candidates(model, plan).items()))
    return report
