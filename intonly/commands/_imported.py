"""``intonly run --model FILE.tflite|FILE.onnx``: import the model, simulate it in hwsim on integer inputs, compare
every tensor with the format's own runtime (TFLM for .tflite, ONNX Runtime for .onnx) and the outputs with the
generated C on the host, and write the output folder (``summary.json``, ``model.intonly``, ``oracle.json``,
``trace.json``, ``int_outputs.npy``, ``c/``). Exit code 1 when the C differs from hwsim in any bit or the runtime
differs beyond its documented tolerance (0 LSB for TFLM, 1 for ONNX Runtime)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from intonly import api
from intonly.display import text
from intonly.imported import TOLERANCE_LSB, compare_with_runtime, import_model
from intonly.output import default_out, output_folder, write_file
from intonly.quantize.bounded_read import Limits, load_npz
from intonly.quantize.errors import DataError

RANDOM_SAMPLES = 128   # uniform random integer inputs over each input's full range, seed 0, without --data
SIMULATION_BATCH = 32


def integer_inputs(model, data_path: str | None) -> list[np.ndarray]:
    """One batch-first integer array per model input: ``x`` (``x0``, ``x1``... for several inputs) from ``--data``
    (integer codes of the input's type, or floats quantized at its scale), else :data:`RANDOM_SAMPLES` uniform
    random codes."""
    ports = [model.tensors[n.outputs[0]] for n in model.nodes if n.op == "quantize"]
    if data_path is None:
        rng = np.random.default_rng(0)
        return [rng.integers(*t.qrange(), endpoint=True, size=(RANDOM_SAMPLES, *t.shape)).astype(t.dtype)
                for t in ports]
    arrays = load_npz(Path(data_path), DataError, data_path, Limits.from_env())
    keys = ["x"] if len(ports) == 1 else [f"x{i}" for i in range(len(ports))]
    out = []
    for key, t in zip(keys, ports):
        if key not in arrays:
            raise DataError(f"{data_path}: no array {key!r} (the model has {len(ports)} input(s): "
                            f"{', '.join(keys)})")
        a = arrays[key]
        if a.shape[1:] != t.shape or len(a) == 0:
            raise DataError(f"{data_path}: {key} has shape {a.shape}; expected (N, {', '.join(map(str, t.shape))})")
        if np.issubdtype(a.dtype, np.floating):
            if not np.all(np.isfinite(a)):
                raise DataError(f"{data_path}: {key} holds NaN or infinite values")
            a = np.rint(a.astype(np.float64) / np.float64(np.float32(t.scale))) + t.zero_point
        lo, hi = t.qrange()
        if a.min() < lo or a.max() > hi:
            raise DataError(f"{data_path}: {key} has codes in [{a.min()}, {a.max()}], outside {t.dtype} [{lo}, {hi}]")
        out.append(a.astype(t.dtype))
    return out


RUNTIME_KEY = {"tflite-micro": "tflm", "onnxruntime": "onnxruntime"}


def run_imported_job(args, console: Console) -> dict:
    source = Path(args.model)
    out = Path(args.out) if args.out else default_out(source.stem)
    with output_folder(out, [args.model, args.data], "intonly run") as stage:
        steps = {}
        t0 = time.perf_counter()
        with console.status(f"importing {source.name}"):
            imported = import_model(source)
        model = imported.model
        steps["import_s"] = time.perf_counter() - t0
        int_inputs = integer_inputs(model, args.data)
        model.save(stage / "model.intonly")
        with console.status(f"simulating {len(int_inputs[0])} samples bit-accurately (hwsim)"):
            t0 = time.perf_counter()
            sim = api.simulate(model, int_inputs, quantized=True, keep_values=True, batch_size=SIMULATION_BATCH)
            steps["simulate_s"] = time.perf_counter() - t0
        with console.status("running the model's own runtime with every tensor kept"):
            t0 = time.perf_counter()
            oracle = compare_with_runtime(source, imported, int_inputs, sim.values)
            key = RUNTIME_KEY[oracle.runtime]
            steps[f"{key}_s"] = time.perf_counter() - t0
        with console.status("generating, compiling and running C on the host"):
            t0 = time.perf_counter()
            _, c_outs = api.build_and_run(model, stage / "c", int_inputs)
            steps["c_host_s"] = time.perf_counter() - t0
        c_mismatches = sum(int(np.count_nonzero(c != s)) for c, s in zip(c_outs, sim.int_outputs))
        summary = {
            "model": model.name, "source": str(source), "format": source.suffix.lower().lstrip("."),
            "samples": int(len(int_inputs[0])),
            "inputs": "data" if args.data else f"uniform random codes (seed 0, {RANDOM_SAMPLES} samples)",
            "rounding": model.rounding,
            "bit_exact": {key: oracle.bit_exact, "c_host": c_mismatches == 0},
            "runtime": oracle.runtime, "runtime_tolerance_lsb": TOLERANCE_LSB[oracle.runtime],
            "runtime_within_tolerance": oracle.within_tolerance, "runtime_max_abs_lsb": oracle.max_abs_lsb,
            "runtime_end_to_end_max_abs_lsb": oracle.end_to_end_max_abs_lsb,
            f"{key}_tensors_compared": oracle.tensors, f"{key}_elements_compared": oracle.elements,
            f"{key}_mismatched_elements": sum(oracle.mismatched.values()), "c_host_mismatched_elements": c_mismatches,
            "clamp_events": int(sum(t.clamp_events for t in sim.trace)),
            "overflow_events": int(sum(t.overflows for t in sim.trace)),
            "macs_per_sample": int(sum(model.node_macs(n) for n in model.nodes)),
            "timings_s": {k: round(v, 3) for k, v in steps.items()},
        }
        (stage / "summary.json").write_text(json.dumps(summary, indent=2))
        (stage / "oracle.json").write_text(json.dumps(oracle.as_dict(), indent=2))
        (stage / "trace.json").write_text(json.dumps([t.__dict__ for t in sim.trace], indent=2))
        np.save(stage / "int_outputs.npy", sim.int_outputs[0])
    _print(summary, out, console)
    return summary


def _print(s: dict, out: Path, console: Console) -> None:
    table = Table(title=text(f"intonly run: {s['model']} (imported {s['format']}, {s['rounding']} rounding)"),
                  show_header=False)
    key = RUNTIME_KEY[s["runtime"]]
    for label, k in ((f"hwsim vs {s['runtime']} (every tensor)", key), ("hwsim vs host C (outputs)", "c_host")):
        count = s[f"{k}_mismatched_elements"]
        verdict = "[green]identical[/]" if s["bit_exact"][k] else \
            f"[{'yellow' if k != 'c_host' and s['runtime_within_tolerance'] else 'red'}]DIFFERENT in {count} " \
            f"elements[/] (max {s['runtime_max_abs_lsb'] if k != 'c_host' else '?'} LSB)"
        table.add_row(label, f"{verdict} on all {s['samples']} samples")
    table.add_row(f"tensors compared with {s['runtime']}", f"{s[key + '_tensors_compared']} "
                                                          f"({s[key + '_elements_compared']:,} elements)")
    table.add_row("MACs per sample", f"{s['macs_per_sample']:,}")
    table.add_row("overflow events", str(s["overflow_events"]))
    table.add_row("output folder", text(out))
    console.print(table)


def compare_imported_job(args, console: Console) -> dict:
    """``intonly compare --model FILE.tflite|FILE.onnx``: every imported tensor, hwsim against the model's own
    runtime on the same integer inputs (``--data`` or random codes); returns the oracle comparison as a dict."""
    imported = import_model(args.model)
    int_inputs = integer_inputs(imported.model, args.data)
    sim = api.simulate(imported.model, int_inputs, quantized=True, keep_values=True, batch_size=SIMULATION_BATCH)
    oracle = compare_with_runtime(args.model, imported, int_inputs, sim.values)
    table = Table(title=text(f"hwsim vs {oracle.runtime} per tensor: {imported.model.name} ({oracle.samples} "
                             "samples)"))
    for col in ("tensor", "elements", "differing"):
        table.add_column(col, justify="left" if col == "tensor" else "right")
    per_sample = {name: int(np.prod(imported.model.tensors[name].shape)) for name in imported.tensor_names.values()}
    for name in imported.tensor_names.values():
        table.add_row(text(name), f"{per_sample[name] * oracle.samples:,}", f"{oracle.mismatched[name]:,}")
    console.print(table)
    console.print(text("identical bits in every tensor" if oracle.bit_exact else
                       f"{sum(oracle.mismatched.values()):,} elements differ, by at most {oracle.max_abs_lsb} LSB "
                       f"(tolerance {TOLERANCE_LSB[oracle.runtime]})"))
    result = oracle.as_dict()
    if args.json:
        write_file(args.json, json.dumps(result, indent=2), [args.model, args.data])
    return result
