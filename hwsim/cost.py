"""The cost model: per-layer cycles, latency and energy of an IntModel on a target, and its memory footprint.

Inputs: the model's graph (shapes, dtypes, constants) and a :class:`targets.spec.Target`; no data. For a batch
of ``B`` samples, layer by layer (docs/cost-model.md states the same rules with a worked example):

1. **Work.** ``ops[c] = B · work[c]`` for every op class ``c`` (the op's ``work`` row in hwsim/ops/<op>.py).
2. **Compute cycles** ``= Σ_c ops[c] / throughput[c]`` (the target's sustained ops per cycle).
3. **Bytes.** Activation bytes = the layer's non-constant inputs plus its output, × B. Weight bytes = the
   layer's constants (weights, biases, requant multipliers and shifts, constant tensors), read once per batch.
4. **Placement.** Activation bytes are served by the fastest level that may hold activations and is at least
   as large as the layer's activation working set; weight bytes by the fastest level that may hold weights and
   is at least as large as the layer's weights. (A scratchpad MCU has one such level for each; on cached
   processors this models "the working set fits in L2".)
5. **Memory cycles** ``= Σ_levels (bytes / effective bandwidth + latency)`` over the levels the layer touches;
   effective bandwidth = bandwidth / (1 + wait states).
6. **Layer cycles** ``= max(compute, memory) + layer_overhead`` (compute and memory overlap; the overhead is
   the call / loop set-up / kernel launch that does not).
7. **Energy** ``= Σ_c ops[c] · pJ_op[c] + Σ_levels bytes · pJ_byte + static_mW · latency``.

Model totals: latency and energy are sums over layers. ``peak_ram_bytes`` = B × the static activation arena
of quantize/memory.py (what the generated C declares) + the input and output buffers; ``flash_bytes`` = every
constant. ``fits`` is False (with a reason) when the arena exceeds the largest level that may hold
activations, or the constants the largest level that may hold weights.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

from intonly.quantize.errors import ConfigError
from intonly.quantize.ir import IntModel, Node
from intonly.quantize.memory import constant_bytes, plan_model_arena, tensor_bytes
from intonly.targets.spec import MemoryLevel, Target

from .work import op_work


@dataclass
class LayerCost:
    node: str
    op: str
    ops: dict[str, int]             # operations per op class, for the batch
    bytes: dict[str, int]           # bytes moved per memory level, for the batch
    compute_cycles: float
    memory_cycles: float
    overhead_cycles: float
    cycles: float
    bound: str                      # "compute" or "memory": the larger term
    latency_ms: float
    energy_uj: float

    def as_dict(self) -> dict:
        """``dataclasses.asdict(self)`` (same keys, order and values), without its recursive deep copy."""
        d = {name: getattr(self, name) for name in _LAYER_FIELDS}
        d["ops"], d["bytes"] = dict(self.ops), dict(self.bytes)
        return d


_LAYER_FIELDS = tuple(f.name for f in fields(LayerCost))


@dataclass
class Estimate:
    target: str
    clock_mhz: float
    batch: int
    layers: list[LayerCost]
    latency_ms: float
    energy_uj: float
    energy_split_uj: dict[str, float]   # compute, memory, static
    peak_ram_bytes: int
    flash_bytes: int
    arena_bytes: int                    # one sample's activation arena
    fits: bool
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The JSON form: ``{"target", "clock_mhz", "batch", "layers": [...], "total": {...}, "fits", "notes"}``."""
        return {"target": self.target, "clock_mhz": self.clock_mhz, "batch": self.batch,
                "layers": [layer.as_dict() for layer in self.layers],
                "total": {"latency_ms": self.latency_ms, "energy_uj": self.energy_uj,
                          "energy_split_uj": self.energy_split_uj, "peak_ram_bytes": self.peak_ram_bytes,
                          "flash_bytes": self.flash_bytes, "arena_bytes": self.arena_bytes},
                "fits": self.fits, "notes": self.notes}


def _level_for(target: Target, what: str, size: int) -> MemoryLevel:
    """The fastest level allowed to hold ``what`` that is at least ``size`` bytes, else the largest such level."""
    levels = [m for m in target.memory if what in m.holds]
    for level in levels:
        if level.size_bytes.value >= size:
            return level
    return max(levels, key=lambda m: m.size_bytes.value)


def constant_outputs(model: IntModel) -> frozenset[str]:
    """The tensors written by ``constant`` nodes (constant tensors such as position embeddings: weight bytes)."""
    return frozenset(n.outputs[0] for n in model.nodes if n.op == "constant")


def _layer_bytes(model: IntModel, node: Node, batch: int, constants: frozenset[str] | None = None) -> tuple[int, int]:
    """(activation bytes for the batch, weight bytes once per batch) that ``node`` reads and writes.
    ``constants``: :func:`constant_outputs` of ``model``, computed here when not given (pass it when costing
    many nodes of one model: it is a scan of every node)."""
    if constants is None:
        constants = constant_outputs(model)
    weights = sum(model.constants[c].nbytes for c in node.params.values())
    weights += sum(tensor_bytes(model, t) for t in node.inputs if t in constants)
    acts = sum(tensor_bytes(model, t) for t in node.inputs if t not in constants and model.tensors[t].dtype != "float32")
    if model.tensors[node.outputs[0]].dtype != "float32":
        acts += tensor_bytes(model, node.outputs[0])
    return acts * batch, int(weights)


def layer_cost(model: IntModel, node: Node, target: Target, batch: int = 1,
               constants: frozenset[str] | None = None) -> LayerCost:
    """Steps 1-7 of the module docstring for one node. ``constants``: as for :func:`_layer_bytes`."""
    ops = Counter({c: n * batch for c, n in op_work(model, node).items()})
    compute = sum(n / target.throughput[c].value for c, n in ops.items())
    act_bytes, weight_bytes = _layer_bytes(model, node, batch, constants)
    moved: Counter = Counter()
    if act_bytes:
        moved[_level_for(target, "activations", act_bytes).name] += act_bytes
    if weight_bytes:
        moved[_level_for(target, "weights", weight_bytes).name] += weight_bytes
    levels = {m.name: m for m in target.memory}
    memory = sum(b / levels[name].effective_bandwidth + levels[name].latency_cycles.value for name, b in moved.items())
    overhead = target.layer_overhead_cycles.value if node.op != "constant" else 0.0
    cycles = max(compute, memory) + overhead
    latency_ms = cycles / (target.clock_mhz.value * 1e3)
    energy_pj = sum(n * target.pj_per_op[c].value for c, n in ops.items()) + \
        sum(b * levels[name].pj_per_byte.value for name, b in moved.items()) + \
        target.static_mw.value * latency_ms * 1e6
    return LayerCost(node.name, node.op, dict(ops), dict(moved), compute, memory, overhead, cycles,
                     "compute" if compute >= memory else "memory", latency_ms, energy_pj * 1e-6)


def estimate(model: IntModel, target: Target, batch: int = 1) -> Estimate:
    """Per-layer and total latency, energy, peak RAM and flash of ``model`` on ``target`` for ``batch`` samples."""
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    constants = constant_outputs(model)
    layers = [layer_cost(model, node, target, batch, constants) for node in model.nodes]
    latency = sum(layer.latency_ms for layer in layers)
    static = target.static_mw.value * latency
    memory = sum(b * m.pj_per_byte.value for layer in layers for m in target.memory
                 for name, b in layer.bytes.items() if name == m.name) * 1e-6
    total_energy = sum(layer.energy_uj for layer in layers)
    plan = plan_model_arena(model)
    io_bytes = sum(tensor_bytes(model, n.outputs[0]) for n in model.nodes if n.op == "quantize") + \
        sum(tensor_bytes(model, n.inputs[0]) for n in model.nodes if n.op == "dequantize")
    peak_ram = batch * (plan.arena_bytes + io_bytes)
    flash = constant_bytes(model)
    notes, fits = [], True
    for what, need in (("activations", peak_ram), ("weights", flash)):
        biggest = max((m for m in target.memory if what in m.holds), key=lambda m: m.size_bytes.value)
        if need > biggest.size_bytes.value:
            fits = False
            notes.append(f"{what} need {need:,} bytes; the largest level for {what}, {biggest.name!r}, "
                         f"holds {int(biggest.size_bytes.value):,}")
    return Estimate(target.label, target.clock_mhz.value, batch, layers, latency, total_energy,
                    {"compute": total_energy - memory - static, "memory": memory, "static": static},
                    peak_ram, flash, plan.arena_bytes, fits, notes)
