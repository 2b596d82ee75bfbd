"""Bit-accurate execution of an IntModel, with a per-layer trace of what the integer pipeline did."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls: loaded before the controller scans)
from threadpoolctl import ThreadpoolController

from intonly.quantize.bounds import node_bounds, producer_map
from intonly.quantize.data_checks import checked_batch
from intonly.quantize.errors import ConfigError, DataError, UnsupportedOpError
from intonly.quantize.ir import IntModel, Node
from intonly.targets.spec import Target

from .numerics import ROUNDING_IDS
from .ops import executor


@dataclass
class LayerTrace:
    """What one node executed for the whole batch: multiply-accumulates, requantizations, integer
    divisions, clamp events (outputs whose value before the clamp lay outside [act_min, act_max]) and
    overflow events (an intermediate outside the width quantize/bounds.py proved for it: always 0 for a
    validated model; the kernels count it so a test can show the proof holds on real data)."""

    node: str
    op: str
    output: str
    macs: int = 0
    requants: int = 0
    divides: int = 0
    clamp_events: int = 0
    overflows: int = 0


@dataclass
class OpContext:
    mode: int
    fast: bool
    trace: LayerTrace
    batch: int = 1


@dataclass
class SimResult:
    outputs: list[np.ndarray]        # graph outputs (float32 after the dequantize node)
    int_inputs: list[np.ndarray]     # the integer tensors the quantize nodes produced
    int_outputs: list[np.ndarray]    # the integer tensors the dequantize nodes read
    trace: list[LayerTrace]
    values: dict[str, np.ndarray] = field(default_factory=dict)  # every tensor, if keep_values


_THREADPOOLS = ThreadpoolController()  # built once: it scans the loaded BLAS libraries


def _kernel(op: str):
    module = executor(op)
    if module is None:
        raise UnsupportedOpError([(op, f"op {op!r} has no hwsim kernel (hwsim/ops/)")])
    return module.run


def target_rounding(model: IntModel, target: Target) -> str:
    """The rounding mode ``model`` runs in on ``target``'s integer pipeline, after checking that the target's
    accumulator is wide enough for every accumulator bound of the model (quantize/bounds.py proves them for
    int32; a wider accumulator computes the same values, a narrower one must still hold each bound)."""
    bits = target.numerics.accumulator_bits
    if bits < 32:
        limit = 2 ** (bits - 1) - 1
        producers = producer_map(model)
        for node in model.nodes:
            for b in node_bounds(model, node, producers):
                if b.limit == 2**31 - 1 and b.value > limit:
                    raise ConfigError(f"target {target.name!r} accumulates in {bits} bits, but node {node.name!r} "
                                      f"({node.op}) needs |{b.what}| up to {b.value:,} > {limit:,}")
    return target.numerics.rounding


def _checked_input(model: IntModel, i: int, tensor: str, a, quantized: bool, xs: list) -> np.ndarray:
    """Input ``i`` of a simulation as an array, after checking it against ``tensor`` (the graph input tensor, or with
    ``quantized`` the quantize node's output): numbers, batch first with that tensor's per-sample shape, as many
    samples as input 0, at least one; float inputs finite, quantized inputs integers within the tensor's range."""
    info = model.tensors[tensor]
    where = f"simulate{'(quantized=True)' if quantized else ''}: input {i} ({tensor!r})"
    arr = checked_batch(a, where, *(("iu", "integers (the quantize node's output)") if quantized else ()))
    if arr.shape[1:] != tuple(info.shape):
        expected = "(N" + "".join(f", {d}" for d in info.shape) + (")" if info.shape else ",)")
        raise DataError(f"{where}: shape {arr.shape}, expected {expected} (batch first, then the per-sample shape "
                        f"{tuple(info.shape)})")
    if i and len(arr) != len(xs[0]):
        raise DataError(f"{where}: {len(arr)} samples, input 0 has {len(xs[0])}")
    if quantized:
        lo, hi = info.qrange()
        if arr.min() < lo or arr.max() > hi:
            raise DataError(f"{where}: values must lie in [{lo}, {hi}] ({info.bits}-bit {info.dtype}), got "
                            f"[{arr.min()}, {arr.max()}]")
    return arr


def simulate(model: IntModel, x, rounding: str | None = None, fast: bool = True, quantized: bool = False,
             keep_values: bool = False, target: Target | None = None, batch_size: int | None = None) -> SimResult:
    """Execute ``model`` on a batch ``x`` (float, in the graph input's layout, batch first).

    ``rounding`` overrides the model's requant rounding mode; ``target`` runs it as that target's integer
    pipeline does (its numerics' rounding mode, after :func:`target_rounding`'s accumulator check). Give at
    most one of them.
    ``fast=False`` uses the scalar reference kernels only. ``quantized=True`` means ``x`` is already
    the integer output of the input ``quantize`` node (what generated C receives).
    ``batch_size``: run at most that many samples at a time (bounds memory; the results are the same, since every
    kernel treats samples independently: outputs and values concatenated, trace counts summed). A tensor is
    freed after its last reader unless ``keep_values``.
    """
    if target is not None:
        if rounding is not None:
            raise ConfigError("give either rounding or target, not both (a target fixes its rounding mode)")
        rounding = target_rounding(model, target)
    mode_name = rounding or model.rounding
    if mode_name not in ROUNDING_IDS:
        raise ConfigError(f"rounding mode {mode_name!r} is not one of {sorted(ROUNDING_IDS)}")
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    if len(xs) != len(model.inputs):
        raise ConfigError(f"model {model.name!r} has {len(model.inputs)} input(s), got {len(xs)}")
    nodes: list[Node] = model.nodes
    values: dict[str, np.ndarray] = {}
    quant_nodes = [n for n in nodes if n.op == "quantize"]
    tensors = [n.outputs[0] for n in quant_nodes] if quantized else model.inputs
    xs = [_checked_input(model, i, t, a, quantized, xs) for i, (t, a) in enumerate(zip(tensors, xs))]
    if batch_size is not None:
        if not (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1):
            raise ConfigError(f"batch_size={batch_size!r}: must be a positive integer")
        if len(xs[0]) > batch_size:
            return _merged([simulate(model, [a[i:i + batch_size] for a in xs], mode_name, fast, quantized, keep_values)
                            for i in range(0, len(xs[0]), batch_size)])
    if quantized:
        for n, arr in zip(quant_nodes, xs):
            values[n.outputs[0]] = np.ascontiguousarray(arr, dtype=model.tensors[n.outputs[0]].dtype)
        nodes = [n for n in nodes if n.op != "quantize"]
    else:
        values.update(zip(model.inputs, xs))
    batch = len(xs[0])
    trace = []
    quant_outs = [n.outputs[0] for n in model.nodes if n.op == "quantize"]
    deq_ins = [n.inputs[0] for n in model.nodes if n.op == "dequantize"]
    kept = set(model.outputs) | set(quant_outs) | set(deq_ins)
    last_reader = {t: i for i, node in enumerate(nodes) for t in node.inputs}
    # BLAS stays single-threaded: the fast GEMM paths run one block per Numba thread instead of nesting pools.
    with _THREADPOOLS.limit(limits=1, user_api="blas"):
        for i, node in enumerate(nodes):
            record = LayerTrace(node.name, node.op, node.outputs[0], macs=model.node_macs(node) * batch)
            ctx = OpContext(ROUNDING_IDS[mode_name], fast, record, batch)
            values[node.outputs[0]] = _kernel(node.op)(model, node, [values[t] for t in node.inputs], ctx)
            trace.append(record)
            if not keep_values:
                for t in set(node.inputs):
                    if last_reader[t] == i and t not in kept:
                        del values[t]
    return SimResult(outputs=[values[t] for t in model.outputs], int_inputs=[values[t] for t in quant_outs],
                     int_outputs=[values[t] for t in deq_ins], trace=trace,
                     values=values if keep_values else {})


def _merged(parts: list[SimResult]) -> SimResult:
    """One result of consecutive batches: arrays concatenated along the batch, trace counts summed."""
    def joined(arrays):
        return [np.concatenate(group) for group in zip(*arrays)]

    trace = [LayerTrace(t.node, t.op, t.output, *(sum(getattr(p.trace[i], f) for p in parts) for f in _COUNTS))
             for i, t in enumerate(parts[0].trace)]
    values = {k: np.concatenate([p.values[k] for p in parts]) for k in parts[0].values}
    return SimResult(joined(p.outputs for p in parts), joined(p.int_inputs for p in parts),
                     joined(p.int_outputs for p in parts), trace, values)


_COUNTS = ("macs", "requants", "divides", "clamp_events", "overflows")
