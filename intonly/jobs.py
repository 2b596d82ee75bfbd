"""What the CLI subcommands do: load a model and data, run the pipeline, print and write results."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from quantize.config import QuantConfig
from quantize.errors import ConfigError
from quantize.ir import IntModel

from . import api


def load_user_model(spec: str, data_path: str | None):
    """``FILE.py:NAME`` -> (model, calib, x_eval, y_eval). NAME is an nn.Module class or a zero-arg factory."""
    if spec == "digits":
        from .demos import digits

        x_tr, y_tr, x_te, y_te = digits.load_split()
        return "digits_cnn", digits.load_model(), x_tr, x_te, y_te
    path, _, name = spec.rpartition(":")
    if not path or not name or not Path(path).is_file():
        raise ConfigError(f"--model {spec!r}: expected 'digits' or an existing FILE.py:NAME")
    if data_path is None:
        raise ConfigError(f"--model {spec!r} needs --data FILE.npz (arrays x, optional y and x_calib)")
    module_spec = importlib.util.spec_from_file_location(f"intonly_user_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, name, None)
    if factory is None:
        raise ConfigError(f"{path}: defines no {name!r}")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{path}:{name} returned {type(model).__name__}, not a torch.nn.Module")
    try:
        with np.load(data_path, allow_pickle=False) as data:
            x = data["x"].astype(np.float32)
            y = data["y"] if "y" in data else None
            calib = data["x_calib"].astype(np.float32) if "x_calib" in data else x
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"--data {data_path}: {exc}") from None
    return name, model.eval(), calib, x, y


def config_from(args) -> QuantConfig:
    return QuantConfig(weight_bits=args.weight_bits, act_bits=args.act_bits, act_symmetric=args.symmetric,
                       observer=args.observer, rounding=args.rounding)


@contextmanager
def staged_output(out: Path):
    """Yield a temporary sibling folder; on success it replaces ``out``, on any error it is removed."""
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    stage.replace(out)


def float_logits(model, x, batch: int = 256) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i:i + batch])).numpy() for i in range(0, len(x), batch)])


def run_job(args, console: Console) -> dict:
    out = Path(args.out)
    cfg = config_from(args)
    with console.status("loading model and data"):
        name, model, calib, x, y = load_user_model(args.model, args.data)
    steps = {}
    with console.status(f"calibrating on {len(calib)} samples and quantizing ({cfg.rounding} rounding)"):
        t0 = time.perf_counter()
        int_model = api.quantize(model, calib, cfg, name=name)
        steps["quantize_s"] = time.perf_counter() - t0
    with staged_output(out) as stage:
        int_model.save(stage / "model.intonly")
        fp_logits = float_logits(model, x)
        with console.status(f"simulating {len(x)} samples bit-accurately (hwsim)"):
            t0 = time.perf_counter()
            sim = api.simulate(int_model, x)
            steps["simulate_s"] = time.perf_counter() - t0
        with console.status("generating, compiling and running C on the host"):
            t0 = time.perf_counter()
            _, c_outs = api.build_and_run(int_model, stage / "c", sim.int_inputs)
            steps["c_host_s"] = time.perf_counter() - t0
        mismatches = sum(int(np.count_nonzero(c != s)) for c, s in zip(c_outs, sim.int_outputs))
        with console.status("per-layer FP32 vs INT comparison"):
            layers = api.compare(model, int_model, x[:256])
        summary = {
            "model": name, "samples": int(len(x)), "rounding": cfg.rounding, "observer": cfg.observer,
            "weight_bits": cfg.weight_bits, "act_bits": cfg.act_bits, "act_symmetric": cfg.act_symmetric,
            "fp_accuracy": api.accuracy(fp_logits, y), "int_accuracy": api.accuracy(sim.outputs[0], y),
            "fp_int_top1_agreement": float(np.mean(fp_logits.argmax(1) == sim.outputs[0].argmax(1))),
            "bit_exact": {"c_host": mismatches == 0}, "c_host_mismatched_elements": mismatches,
            "clamp_events": int(sum(t.clamp_events for t in sim.trace)),
            "macs_per_sample": int(sum(int_model.node_macs(n) for n in int_model.nodes)),
            "timings_s": {k: round(v, 3) for k, v in steps.items()},
        }
        (stage / "summary.json").write_text(json.dumps(summary, indent=2))
        (stage / "compare.json").write_text(json.dumps([r.as_dict() for r in layers], indent=2))
        (stage / "trace.json").write_text(json.dumps([t.__dict__ for t in sim.trace], indent=2))
        np.save(stage / "int_outputs.npy", sim.int_outputs[0])
    print_summary(summary, out, console)
    return summary


def print_summary(s: dict, out: Path, console: Console) -> None:
    table = Table(title=f"intonly run: {s['model']} ({s['rounding']} rounding)", show_header=False)
    pct = (lambda v: "n/a" if v is None else f"{100 * v:.2f}%")
    table.add_row("FP32 accuracy", pct(s["fp_accuracy"]))
    table.add_row("INT accuracy (hwsim)", pct(s["int_accuracy"]))
    table.add_row("FP/INT top-1 agreement", pct(s["fp_int_top1_agreement"]))
    verdict = "[green]identical[/]" if s["bit_exact"]["c_host"] else \
        f"[red]DIFFERENT in {s['c_host_mismatched_elements']} elements[/]"
    table.add_row("hwsim vs host C", f"{verdict} on all {s['samples']} samples")
    table.add_row("output folder", str(out))
    console.print(table)


def inspect_job(path: str, console: Console) -> None:
    model = IntModel.load(path)
    table = Table(title=f"{model.name}  ({path}, rounding {model.rounding})")
    for col in ("#", "node", "op", "inputs", "output", "dtype", "bits", "shape", "scale", "zp", "params", "MACs"):
        table.add_column(col, justify="right" if col in ("#", "bits", "params", "MACs", "zp") else "left")
    total_params = total_macs = 0
    for i, node in enumerate(model.nodes):
        t = model.tensors[node.outputs[0]]
        params, macs = model.parameter_count(node), model.node_macs(node)
        total_params += params
        total_macs += macs
        weight = f" (w{model.param(node, 'weight').dtype.itemsize * 8}b)" if "weight" in node.params else ""
        table.add_row(str(i), node.name, node.op, ", ".join(node.inputs), t.name, t.dtype,
                      "" if t.dtype == "float32" else str(t.bits), "x".join(map(str, t.shape)),
                      "" if t.dtype == "float32" else f"{t.scale:.4g}", "" if t.dtype == "float32" else
                      str(t.zero_point), f"{params}{weight}", f"{macs:,}")
    console.print(table)
    console.print(f"{len(model.nodes)} nodes, {total_params:,} parameters, {total_macs:,} MACs per sample, "
                  f"{sum(a.nbytes for a in model.constants.values()):,} bytes of constants")


def compare_job(args, console: Console) -> list:
    name, model, calib, x, _ = load_user_model(args.model, args.data)
    int_model = IntModel.load(args.int_model) if args.int_model else api.quantize(model, calib, config_from(args),
                                                                                  name=name)
    rows = api.compare(model, int_model, x[:256], rounding=args.rounding if not args.int_model else None)
    table = Table(title=f"FP32 vs INT per layer: {name} ({min(len(x), 256)} samples)")
    for col in ("node", "op", "bits", "SQNR dB", "max |Δ| LSB", "mean |Δ| LSB"):
        table.add_column(col, justify="left" if col in ("node", "op") else "right")
    for r in rows:
        table.add_row(r.node, r.op, str(r.bits), f"{r.sqnr_db:.2f}", f"{r.max_abs_lsb:.2f}", f"{r.mean_abs_lsb:.3f}")
    console.print(table)
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in rows], indent=2))
    return rows
