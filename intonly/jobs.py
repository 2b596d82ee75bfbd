"""What the CLI subcommands do: load a model and data, run the pipeline, print and write results.

The workloads (PyTorch models and data) are imported by the subcommands that need them, so ``intonly
estimate FILE`` and ``intonly inspect FILE`` start without PyTorch."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from intonly.quantize.config import QuantConfig
from intonly.quantize.errors import ConfigError
from intonly.quantize.ir import IntModel

from intonly.targets import list_targets, load_target

from . import api, estimate_report, inspect_report
from .display import text
from .demos import DEMOS
from .output import check_out, default_out, output_folder, write_file


CONFIG_OPTIONS = ("weight_bits", "act_bits", "observer", "rounding", "softmax", "gelu", "softmax_bits",
                  "residual_bits", "auto_bits")


def config_from(args, base: QuantConfig | None = None) -> QuantConfig:
    """The workload's default config with every CLI option the user gave (not None) applied on top."""
    given = {k: getattr(args, k) for k in CONFIG_OPTIONS if getattr(args, k, None) is not None}
    if getattr(args, "symmetric", False):
        given["act_symmetric"] = True
    return dataclasses.replace(base or QuantConfig(), **given)


def run_job(args, console: Console) -> dict:
    from .workloads import float_outputs, load_workload

    out = Path(args.out) if args.out else default_out(args.model if args.model in DEMOS else "model")
    with output_folder(out, [model_input(args.model), args.data], "intonly run") as stage:
        with console.status("loading model and data"):
            work = load_workload(args.model, args.data)
        name, model, calib, x = work.name, work.model, work.calib, work.x
        cfg = config_from(args, work.config)
        steps = {}
        with console.status(f"calibrating on {len(calib[0])} samples and quantizing ({cfg.rounding} rounding)"):
            t0 = time.perf_counter()
            int_model = api.quantize(model, calib, cfg, name=name)
            steps["quantize_s"] = time.perf_counter() - t0
        int_model.save(stage / "model.intonly")
        fp_logits = float_outputs(model, x)
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
            "model": name, "samples": int(len(x[0])), "rounding": cfg.rounding, "observer": cfg.observer,
            "weight_bits": cfg.weight_bits, "act_bits": cfg.act_bits, "act_symmetric": cfg.act_symmetric,
            "softmax": cfg.softmax, "gelu": cfg.gelu, "residual_bits": cfg.residual_bits, "auto_bits": cfg.auto_bits,
            "wide_tensors": sorted(t.name for t in int_model.tensors.values() if t.dtype != "float32" and t.bits > 8),
            "fp_accuracy": work.score(fp_logits), "int_accuracy": work.score(sim.outputs[0]),
            "fp_int_top1_agreement": work.agreement(fp_logits, sim.outputs[0]),
            "bit_exact": {"c_host": mismatches == 0}, "c_host_mismatched_elements": mismatches,
            "clamp_events": int(sum(t.clamp_events for t in sim.trace)),
            "overflow_events": int(sum(t.overflows for t in sim.trace)),
            **work.extra(fp_logits, sim.outputs[0]),
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
    table = Table(title=text(f"intonly run: {s['model']} ({s['rounding']} rounding)"), show_header=False)
    pct = (lambda v: "n/a" if v is None else f"{100 * v:.2f}%")
    table.add_row("FP32 accuracy", pct(s["fp_accuracy"]))
    table.add_row("INT accuracy (hwsim)", pct(s["int_accuracy"]))
    table.add_row("FP/INT top-1 agreement", pct(s["fp_int_top1_agreement"]))
    verdict = "[green]identical[/]" if s["bit_exact"]["c_host"] else \
        f"[red]DIFFERENT in {s['c_host_mismatched_elements']} elements[/]"
    table.add_row("hwsim vs host C", f"{verdict} on all {s['samples']} samples")
    if "embedding" in s:
        e = s["embedding"]
        table.add_row("FP32 vs INT embedding cosine", f"mean {e['cos_mean']:.4f}, min {e['cos_min']:.4f}")
        table.add_row("nearest-neighbour agreement", f"{pct(e['nn_agreement'])} (margin >= 0.02: "
                                                     f"{pct(e['nn_agreement_confident'])} of {e['n_confident']})")
    if s["wide_tensors"]:
        table.add_row("tensors wider than 8 bits", str(len(s["wide_tensors"])))
    table.add_row("overflow events", str(s["overflow_events"]))
    table.add_row("output folder", text(out))
    console.print(table)


def inspect_job(path: str, console: Console, all_rows: bool = False) -> None:
    """``intonly inspect``: the graph, overflow bounds and wide tensors of an .intonly file (intonly/inspect_report.py)."""
    inspect_report.print_report(IntModel.load(path), console, path, all_rows=all_rows)


def compare_job(args, console: Console) -> list:
    from .workloads import load_workload

    work = load_workload(args.model, args.data)
    int_model = IntModel.load(args.int_model) if args.int_model else \
        api.quantize(work.model, work.calib, config_from(args, work.config), name=work.name)
    x = [a[:256] for a in work.x]
    if args.targets:
        return compare_targets_job(int_model, x, args, console)
    rows = api.compare(work.model, int_model, x, rounding=args.rounding if not args.int_model else None)
    table = Table(title=text(f"FP32 vs INT per layer: {work.name} ({len(x[0])} samples)"))
    for col in ("node", "op", "bits", "SQNR dB", "max |Δ| LSB", "mean |Δ| LSB"):
        table.add_column(col, justify="left" if col in ("node", "op") else "right")
    for r in rows:
        table.add_row(text(r.node), r.op, str(r.bits), f"{r.sqnr_db:.2f}", f"{r.max_abs_lsb:.2f}",
                      f"{r.mean_abs_lsb:.3f}")
    console.print(table)
    if args.json:
        write_file(args.json, json.dumps([r.as_dict() for r in rows], indent=2), [args.int_model, args.data])
    return rows


def compare_targets_job(int_model: IntModel, x, args, console: Console) -> dict:
    """``compare --targets a,b,...``: the model under each target's integer pipeline against the first target's."""
    targets = [load_target(t.strip(), args.target_dir) for t in args.targets.split(",")]
    if len(targets) < 2:
        raise ConfigError(f"--targets needs at least two targets, got {args.targets!r}")
    diffs = api.compare_targets(int_model, x, targets)
    ref = targets[0]
    for label, rows in diffs.items():
        other = next(t for t in targets if t.label == label)
        table = Table(title=text(f"{int_model.name}: {label} ({other.numerics.rounding}) vs {ref.label} "
                                 f"({ref.numerics.rounding}), {len(x[0])} samples"))
        for col in ("node", "op", "elements", "differing", "differing %", "max |Δ| LSB"):
            table.add_column(col, justify="left" if col in ("node", "op") else "right")
        for r in rows:
            table.add_row(text(r.node), r.op, f"{r.elements:,}", f"{r.differing:,}",
                          f"{100 * r.differing / r.elements:.3f}", str(r.max_abs_lsb))
        console.print(table)
        first = next((r for r in rows if r.differing), None)
        console.print(text("identical bits in every tensor" if first is None else
                           f"first difference at {first.node} ({first.op}); output tensor differs in "
                           f"{rows[-1].differing:,} of {rows[-1].elements:,} elements"))
    result = {label: [dataclasses.asdict(r) for r in rows] for label, rows in diffs.items()}
    if args.json:
        write_file(args.json, json.dumps({"reference": ref.label, "diffs": result}, indent=1),
                   [args.int_model, args.data])
    return result


def is_workload_spec(spec: str) -> bool:
    """A bundled demo name or ``FILE.py:NAME`` (a float model to quantize first), rather than an .intonly file."""
    return spec in DEMOS or spec.rpartition(":")[0].endswith(".py")


def model_input(spec: str) -> str | None:
    """The file a model argument reads (for the output checks): none for a demo, FILE for ``FILE.py:NAME``,
    else the .intonly path itself."""
    if spec in DEMOS:
        return None
    return spec.rpartition(":")[0] if is_workload_spec(spec) else spec


def estimate_job(args, console: Console) -> list:
    """``intonly estimate``: the cost model of an .intonly file (or a float model, quantized first) on targets."""
    inputs = [model_input(args.model), args.data, *args.target_dir]
    if args.out:
        check_out(Path(args.out), inputs)
    targets = [load_target(t.strip(), args.target_dir) for t in args.target.split(",")] if args.target else \
        list_targets(args.target_dir)
    work = None
    if is_workload_spec(args.model):
        from .workloads import load_workload

        work = load_workload(args.model, args.data)
        name = work.name
    else:
        if args.data:
            raise ConfigError(f"--data is for float models (a demo or FILE.py:NAME); {args.model!r} is an "
                              ".intonly file, which needs no data for an estimate")
        int_model = IntModel.load(args.model)
        name = int_model.name
    out = Path(args.out) if args.out else default_out("estimate", name)
    with output_folder(out, inputs, "intonly estimate") as stage:
        if work is not None:
            with console.status(text(f"quantizing {work.name}")):
                int_model = api.quantize(work.model, work.calib, work.config, name=work.name)
        estimates = api.estimate(int_model, targets, batch=args.batch)
        estimate_report.write_json(int_model.name, estimates, stage / "estimate.json")
        estimate_report.plot(int_model.name, estimates, stage / "estimate.png", stage / "estimate.html")
    console.print(estimate_report.totals_table(int_model.name, estimates))
    if args.layers:
        for e in estimates:
            estimate_report.print_layers(e, console)
    console.print(text(f"wrote {out}/estimate.json, estimate.png, estimate.html"))
    return estimates
