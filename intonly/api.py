"""The one-call Python API. It orchestrates quantize, hwsim and codegen and owns no numerics.

PyTorch is imported only by the functions that read a float model (:func:`quantize`, :func:`compare`), so
estimating or simulating a saved IntModel starts without it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from intonly.codegen.c.emit import CProject, emit_c
from intonly.codegen.c.toolchain import HOST_CFLAGS, PROFILE_CFLAGS, build_host, profile_host, run_host
from intonly.hwsim.cost import Estimate
from intonly.hwsim.cost import estimate as _estimate
from intonly.hwsim.executor import simulate
from intonly.quantize.config import QuantConfig
from intonly.quantize.ir import IntModel
from intonly.targets import Target, load_target

__all__ = ["QuantConfig", "IntModel", "quantize", "simulate", "compare", "emit_c", "build_and_run", "LayerCompare",
           "estimate", "compare_targets", "TargetDiff", "profile_c"]


def quantize(model, calib_data, config: QuantConfig | None = None, name: str | None = None) -> IntModel:
    """Post-training quantize a PyTorch ``nn.Module`` (see :func:`quantize.lower.quantize`)."""
    from intonly.quantize.lower import quantize as lower

    return lower(model, calib_data, config, name)


@dataclass
class LayerCompare:
    """FP32 vs integer value of one IR tensor over a batch. ``sqnr_db`` = 10·log10(Σf² / Σ(f−d)²) where d is the
    dequantized integer tensor; ``max_abs_lsb``/``mean_abs_lsb`` = |f − d| in units of the tensor's scale."""

    node: str
    op: str
    tensor: str
    source: str
    bits: int
    sqnr_db: float
    max_abs_lsb: float
    mean_abs_lsb: float

    def as_dict(self):
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def compare(model, int_model: IntModel, x, rounding: str | None = None, batch_size: int = 8) -> list[LayerCompare]:
    """Per layer, the float model's value against hwsim's integer value for the same input batch ``x``, taken
    ``batch_size`` samples at a time (memory stays bounded; the sums behind SQNR and the LSB errors run over all)."""
    import torch

    from intonly.quantize.capture import as_inputs, capture, run_recording
    from intonly.quantize.lower import storage_order
    from intonly.quantize.recurrent import unroll_recurrent

    gm = capture(model)
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    unroll_recurrent(gm, [torch.from_numpy(a[:1]) for a in as_inputs(xs)])
    totals: dict[str, list] = {}   # node name -> [node, info, signal energy, noise energy, max lsb, lsb sum, count]
    for start in range(0, len(xs[0]), batch_size):
        part = [a[start:start + batch_size] for a in xs]
        floats: dict[str, list[np.ndarray]] = {}
        run_recording(gm, part, lambda name, t: floats.setdefault(name, []).append(t.numpy()))
        sim = simulate(int_model, part, rounding=rounding, keep_values=True)
        for node in int_model.integer_nodes():
            info = int_model.tensors[node.outputs[0]]
            if not info.source or info.source not in floats:
                continue
            f = np.concatenate(floats[info.source]).astype(np.float64)
            q = sim.values[info.name].astype(np.float64)
            order = storage_order(info.layout, q.ndim - 1)   # the PyTorch axis each stored axis holds
            q = q.transpose(0, *(1 + order.index(k) for k in range(q.ndim - 1)))
            if f.shape != q.shape or info.encoding != "linear":
                continue
            err = f - (q - info.zero_point) * np.float64(np.float32(info.scale))
            lsb = np.abs(err) / np.float64(np.float32(info.scale))
            row = totals.setdefault(node.name, [node, info, 0.0, 0.0, 0.0, 0.0, 0])
            row[2:] = [row[2] + float(np.sum(f * f)), row[3] + float(np.sum(err * err)),
                       max(row[4], float(lsb.max())), row[5] + float(lsb.sum()), row[6] + lsb.size]
    rows = []
    for node, info, signal, noise, lsb_max, lsb_sum, count in totals.values():
        sqnr = math.inf if noise == 0 else 10 * math.log10(max(signal, 1e-300) / noise)
        rows.append(LayerCompare(node.name, node.op, info.name, info.source, info.bits, sqnr, lsb_max,
                                 lsb_sum / count))
    return rows


def build_and_run(int_model: IntModel, out_dir, int_inputs, rounding: str | None = None,
                  cflags: str = HOST_CFLAGS, family: str = "generic") -> tuple[CProject, list[np.ndarray]]:
    """Emit the C project into ``out_dir``, build it with host gcc and run it on the integer inputs
    (one batch-first array per model input, e.g. ``simulate(...).int_inputs``); returns one array per output.
    ``family`` picks the template family (docs/codegen-families.md; e.g. ``"x86"`` with ``cflags`` + ``-mavx2``)."""
    project = emit_c(int_model, out_dir, family=family, rounding=rounding, cflags=cflags)
    exe = build_host(Path(out_dir), cflags)
    ports = [(int_model.tensors[t].dtype, int_model.tensors[t].shape) for t in project.output_tensors]
    inputs = list(int_inputs) if isinstance(int_inputs, (list, tuple)) else [int_inputs]
    return project, run_host(exe, inputs, ports)


def profile_c(int_model: IntModel, out_dir, int_inputs, repeats: int = 3) -> dict[str, float]:
    """Emit the C project into ``out_dir``, build it with per-node timers (``PROFILE_CFLAGS``), run it ``repeats``
    times over the integer inputs and return, per integer node in execution order, the mean wall seconds one
    sample spent in it on this host (see :func:`codegen.c.toolchain.profile_host`)."""
    project = emit_c(int_model, out_dir, cflags=PROFILE_CFLAGS)
    exe = build_host(Path(out_dir), PROFILE_CFLAGS)
    ports = [(int_model.tensors[t].dtype, int_model.tensors[t].shape) for t in project.output_tensors]
    inputs = list(int_inputs) if isinstance(int_inputs, (list, tuple)) else [int_inputs]
    return profile_host(exe, inputs, ports, repeats=repeats)


def accuracy(logits: np.ndarray, labels) -> float | None:
    return None if labels is None else float(np.mean(np.argmax(logits, axis=1) == np.asarray(labels)))


def _targets(specs) -> list[Target]:
    items = specs.split(",") if isinstance(specs, str) else [specs] if isinstance(specs, Target) else list(specs)
    return [t if isinstance(t, Target) else load_target(t.strip()) for t in items]


def estimate(int_model: IntModel, targets, batch: int = 1) -> list[Estimate]:
    """Latency, energy, peak RAM and flash of ``int_model`` on each target (names such as "cortex-m7@480MHz",
    a comma-separated string of them, a :class:`targets.Target` or a list of them); see hwsim/cost.py for the
    rules."""
    return [_estimate(int_model, t, batch) for t in _targets(targets)]


@dataclass
class TargetDiff:
    """One tensor under two targets' integer pipelines: how many elements differ and by how much (in LSBs)."""

    node: str
    op: str
    tensor: str
    elements: int
    differing: int
    max_abs_lsb: int


def compare_targets(int_model: IntModel, x, targets) -> dict[str, list[TargetDiff]]:
    """Run ``int_model`` on ``x`` under each target's pipeline (hwsim, the target's numerics); for every target
    after the first, the per-tensor differences against the first target, in model order."""
    ts = _targets(targets)
    runs = [simulate(int_model, x, target=t, keep_values=True) for t in ts]
    result = {}
    for t, run in zip(ts[1:], runs[1:]):
        rows = []
        for node in int_model.integer_nodes():
            name = node.outputs[0]
            a, b = runs[0].values[name].astype(np.int64), run.values[name].astype(np.int64)
            delta = np.abs(a - b)
            rows.append(TargetDiff(node.name, node.op, name, int(a.size), int(np.count_nonzero(delta)),
                                   int(delta.max(initial=0))))
        result[t.label] = rows
    return result


@dataclass
class TargetBuild:
    """What :func:`build_for` did: the C project it emitted for a target, the executable it cross-compiled, the
    commands, the static sizes (:func:`codegen.c.cross.elf_sizes`) and, when it ran inputs, the emulator's
    outputs against hwsim run under the target's numerics."""

    target: str
    family: str
    rounding: str
    project: CProject
    elf: Path
    commands: list[str]
    sizes: dict
    planned_arena_bytes: int      # quantize.memory's lifetime-planned arena (one sample)
    activation_total_bytes: int   # the sum of all activation tensors, the no-reuse baseline
    build_s: float
    outputs: list[np.ndarray] | None = None    # the target's integer outputs (run_inputs given)
    reference: list[np.ndarray] | None = None  # hwsim's, under the target's numerics
    run_command: list[str] | None = None
    run_wall_s: float | None = None

    @property
    def mismatched_elements(self) -> int | None:
        if self.outputs is None:
            return None
        return int(sum(np.count_nonzero(o != r) for o, r in zip(self.outputs, self.reference)))

    @property
    def bit_exact(self) -> bool | None:
        return None if self.outputs is None else self.mismatched_elements == 0

    def as_dict(self) -> dict:
        """The JSON form ``intonly build`` writes as build.json (paths relative to the project folder)."""
        run = None
        if self.outputs is not None:
            samples = len(self.outputs[0])
            run = {"samples": samples, "bit_exact": self.bit_exact,
                   "mismatched_elements": self.mismatched_elements,
                   "elements": int(sum(o.size for o in self.outputs)),
                   "command": " ".join(self.run_command or []), "wall_s": round(self.run_wall_s, 3),
                   "wall_ms_per_sample": round(1e3 * self.run_wall_s / max(samples, 1), 3)}
        specialised = sorted({k["op"] for k in self.project.kernels if k["source"] != "generic"})
        fallback = sorted({k["op"] for k in self.project.kernels if k["source"] == "generic"})
        return {"target": self.target, "family": self.family, "rounding": self.rounding,
                "specialised_ops": specialised, "fallback_ops": fallback,
                "compiler": self.commands[0].split()[0] if self.commands else None,
                "commands": self.commands, "elf": str(self.elf.relative_to(self.project.directory.resolve())),
                "sizes": self.sizes,
                "arena": {"planned_bytes": self.planned_arena_bytes, "elf_symbol_bytes": self.sizes.get("arena_bytes"),
                          "activation_total_bytes": self.activation_total_bytes,
                          "reuse_saving": round(1 - self.planned_arena_bytes / self.activation_total_bytes, 4)
                          if self.activation_total_bytes else 0.0},
                "bit_exact": self.bit_exact, "run": run, "build_s": round(self.build_s, 3)}


def build_for(int_model: IntModel, target, out_dir, run_inputs=None, timeout: float = 120) -> TargetBuild:
    """Emit the C project of ``int_model`` for ``target`` (a name such as "cortex-m4" or a :class:`Target`) into
    ``out_dir`` with the target's template family and rounding, cross-compile it (codegen/c/cross.py) and read its
    sizes. With ``run_inputs`` (integer inputs, one batch-first array per model input, e.g.
    ``simulate(...).int_inputs``), also run it on the target's emulator and simulate the same inputs in hwsim under
    the target's numerics (``outputs``, ``reference``, ``bit_exact``)."""
    import shlex
    import time

    from intonly.codegen.c import cross
    from intonly.hwsim.executor import target_rounding

    t = target if isinstance(target, Target) else load_target(target)
    family = t.toolchain.codegen_family
    rounding = target_rounding(int_model, t)
    project = emit_c(int_model, out_dir, family=family, rounding=rounding)
    t0 = time.perf_counter()
    elf = cross.build_for_target(project.directory, t)
    build_s = time.perf_counter() - t0
    plan = cross.build_plan(project.directory, t)
    result = TargetBuild(t.label, family, rounding, project, elf, plan.commands(), cross.elf_sizes(elf, t),
                         project.plan.arena_bytes, project.plan.total_bytes, build_s)
    if run_inputs is not None:
        inputs = list(run_inputs) if isinstance(run_inputs, (list, tuple)) else [run_inputs]
        ports = [(int_model.tensors[n].dtype, int_model.tensors[n].shape) for n in project.output_tensors]
        t0 = time.perf_counter()
        result.outputs = cross.run_on_target(elf, t, inputs, ports, timeout=timeout)
        result.run_wall_s = time.perf_counter() - t0
        result.run_command = [shlex.quote(a) for a in cross.emulator_command(elf, t, ["input.bin", "output.bin"])[0]]
        result.reference = simulate(int_model, inputs, quantized=True, target=t).int_outputs
    return result


__all__ += ["TargetBuild", "build_for"]
