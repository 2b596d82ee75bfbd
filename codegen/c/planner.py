"""Static arena planning by tensor lifetimes (greedy by size, first fit).

A tensor lives from the step that writes it to the last step that reads it (inclusive), so a
kernel's inputs and output never share memory. Tensors are placed largest first at the lowest
16-byte-aligned offset that does not overlap any already placed tensor with an overlapping lifetime.
"""

from dataclasses import dataclass

ALIGN = 16


@dataclass
class ArenaPlan:
    offsets: dict[str, int]
    arena_bytes: int
    total_bytes: int  # sum of all planned tensors, the no-reuse baseline


def plan_arena(sizes: dict[str, int], lifetimes: dict[str, tuple[int, int]]) -> ArenaPlan:
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
    return ArenaPlan(offsets, arena, sum(sizes.values()))
