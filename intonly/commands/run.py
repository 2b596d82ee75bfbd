"""``intonly run``: quantize a float model (a bundled demo or ``FILE.py:NAME`` with ``--data``), simulate it in
hwsim, generate, build and run its C on the host, compare every output element, and write the output folder
(``summary.json``, ``model.intonly``, ``compare.json``, ``trace.json``, ``int_outputs.npy``, ``c/``). Exit code 1
when the generated C differs from hwsim in any bit. A ``.tflite`` or ``.onnx`` model is imported instead of
quantized (:mod:`._imported`).

The workloads (PyTorch models and data) are imported by the commands that need them, so ``intonly
estimate FILE`` and ``intonly inspect FILE`` start without PyTorch."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from intonly import api
from intonly.demos import DEMOS
from intonly.display import text
from intonly.imported import is_imported
from intonly.output import default_out, output_folder

from ._options import add_quant_options, config_from, model_input

ORDER = 10

SIMULATION_BATCH = 32  # samples the float model, hwsim and compare run at a time: memory stays bounded


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="quantize, simulate, generate+build+run C, compare (default: digits CNN)")
    add_quant_options(p)
    p.add_argument("--out", help="output folder, replaced atomically on success; an existing folder is replaced "
                                 "only if intonly made it (default out/<demo>)")
    return p


def run(args, console: Console) -> int:
    if is_imported(args.model):
        from ._imported import run_imported_job
        summary = run_imported_job(args, console)
    else:
        summary = run_job(args, console)
    ok = summary["bit_exact"]["c_host"] and summary.get("runtime_within_tolerance", True)
    return 0 if ok else 1  # 1: the C disagreed with hwsim, or the model's own runtime beyond its tolerance


def run_job(args, console: Console) -> dict:
    from intonly.workloads import float_outputs, load_workload

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
        fp_logits = float_outputs(model, x, batch=SIMULATION_BATCH)
        with console.status(f"simulating {len(x)} samples bit-accurately (hwsim)"):
            t0 = time.perf_counter()
            sim = api.simulate(int_model, x, batch_size=SIMULATION_BATCH)
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
            "bias_correction": cfg.bias_correction, "wide_weights": cfg.wide_weights, "equalize": cfg.equalize,
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
    if "logit_sqnr_db" in s:
        table.add_row("FP/INT top-5 overlap", pct(s["top5_overlap"]))
        table.add_row("logit SQNR vs FP32", f"{s['logit_sqnr_db']:.2f} dB")
    if s["wide_tensors"]:
        table.add_row("tensors wider than 8 bits", str(len(s["wide_tensors"])))
    table.add_row("overflow events", str(s["overflow_events"]))
    table.add_row("output folder", text(out))
    console.print(table)
