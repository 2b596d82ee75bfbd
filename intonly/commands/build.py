"""``intonly build``: generate the C project of a model for a target, cross-compile it, optionally run it.

``intonly build [MODEL] --target NAME [--run] [--samples N] [--out DIR]``: MODEL is an .intonly file or a bundled
demo (``digits``, the default, or ``vit``; quantized first). The C is emitted with the target's template family
and rounding and built with its compiler (codegen/c/cross.py: Cortex-M boards under qemu-system-arm, AArch64 under
qemu-aarch64, the host natively). ``--run`` runs N test samples on the emulator and compares every output element
with hwsim run under the target's numerics. The output folder (default ``out/build/<model>/<target>``) holds
``build.json``, ``model.intonly`` and ``c/`` (the project, ``c/build-<target>/`` with the objects, ELF and
linker map); it is staged and replaced atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from intonly.demos import DEMOS
from intonly.display import text
from intonly.output import check_out, default_out, output_folder
from intonly.quantize.errors import ConfigError
from intonly.imported import load_int_model
from intonly.targets import load_target

from ._options import model_input

ORDER = 60
BUILD_DEMOS = ("digits", "vit")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("build", help="generate, cross-compile and (--run) run a model's C for a target")
    p.add_argument("model", nargs="?", default="digits",
                   help="an .intonly file, or a bundled demo to quantize first: digits (default), vit")
    p.add_argument("--target", required=True, help="target name, e.g. cortex-m4, cortex-m55, cortex-a53, "
                                                   "x86-64-host (intonly targets list)")
    p.add_argument("--target-dir", action="append", default=[], help="a directory of third-party target files")
    p.add_argument("--run", action="store_true", help="run test samples on the target's emulator and compare "
                                                      "them bit for bit with hwsim under the target's numerics")
    p.add_argument("--samples", type=int, default=16, help="samples to run with --run (default 16)")
    p.add_argument("--timeout", type=float, default=300, help="seconds before a run is killed (default 300)")
    p.add_argument("--out", help="output folder, replaced atomically on success "
                                 "(default out/build/<model>/<target>)")
    return p


def _load(args, console: Console, samples: int):
    """``(IntModel, test inputs or None, workload or None)``: an .intonly file is loaded (its test inputs are
    seeded random integers over each input's range, as it carries no data); a demo's workload is returned to be
    quantized inside the output folder's context."""
    if args.model not in DEMOS:
        model = load_int_model(args.model)
        if not args.run:
            return model, None, None
        rng = np.random.default_rng(0)
        xs = []
        for node in (n for n in model.nodes if n.op == "quantize"):
            info = model.tensors[node.outputs[0]]
            lo, hi = info.qrange()
            xs.append(rng.integers(lo, hi + 1, size=(samples, *info.shape)).astype(info.dtype))
        return model, ("quantized", xs), None
    from intonly.workloads import load_workload

    if args.model not in BUILD_DEMOS:
        raise ConfigError(f"intonly build: the demo {args.model!r} is not built for targets (demos: "
                          f"{', '.join(BUILD_DEMOS)}; or give an .intonly file)")
    work = load_workload(args.model)
    return None, ("float", [a[:samples] for a in work.x]), work


def run(args, console: Console) -> int:
    report = build_job(args, console)
    return 1 if report["bit_exact"] is False else 0  # 1: --run found the target's outputs differ from hwsim's


def build_job(args, console: Console) -> dict:
    from intonly import api

    if args.samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {args.samples}")
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise ConfigError(f"--timeout must be a number of seconds > 0, got {args.timeout:g}")
    inputs = [model_input(args.model), *args.target_dir]
    if args.out:
        check_out(Path(args.out), inputs)
    target = load_target(args.target, args.target_dir)
    model, data, work = _load(args, console, args.samples)
    out = Path(args.out) if args.out else default_out("build", model.name if model else work.name, target.label)
    steps = {}
    with output_folder(out, inputs, "intonly build") as stage:
        if work is not None:
            with console.status(text(f"calibrating on {len(work.calib[0])} samples and quantizing {work.name}")):
                model = api.quantize(work.model, work.calib, work.config, name=work.name)
        model.save(stage / "model.intonly")
        int_inputs = None
        if args.run:
            kind, xs = data
            t0 = time.perf_counter()
            int_inputs = xs if kind == "quantized" else api.simulate(model, xs, target=target).int_inputs
            steps["simulate_s"] = time.perf_counter() - t0
        with console.status(text(f"building for {target.label}" +
                                 (f" and running {args.samples} samples" if args.run else ""))):
            t0 = time.perf_counter()
            built = api.build_for(model, target, stage / "c", run_inputs=int_inputs, timeout=args.timeout)
            steps["build_and_run_s"] = time.perf_counter() - t0
        report = {"model": model.name, **built.as_dict(),
                  "timings_s": {k: round(v, 3) for k, v in steps.items()}}
        (stage / "build.json").write_text(json.dumps(report, indent=2))
    print_report(report, out, console)
    return report


def print_report(r: dict, out: Path, console: Console) -> None:
    s = r["sizes"]
    table = Table(title=text(f"intonly build: {r['model']} for {r['target']} ({r['family']} C, {r['rounding']} "
                             "rounding)"),
                  show_header=False)
    table.add_row("compiler", text(r["compiler"]))
    table.add_row(text(f"{r['family']} kernels"), ", ".join(r["specialised_ops"]) or "none")
    table.add_row("generic fallback", ", ".join(r["fallback_ops"]) or "none")
    table.add_row("flash (text + rodata)", f"{s['flash_bytes']:,} B (model {s.get('model_flash_bytes', 0):,} B)")
    table.add_row("RAM (data + bss)", f"{s['ram_bytes']:,} B (model {s.get('model_ram_bytes', 0):,} B)")
    a = r["arena"]
    table.add_row("arena", f"{s['arena_bytes']:,} B in the ELF; planned {a['planned_bytes']:,} B vs "
                           f"{a['activation_total_bytes']:,} B of activations without reuse")
    if r["run"]:
        run = r["run"]
        verdict = "[green]bit-exact[/]" if run["bit_exact"] else \
            f"[red]DIFFERENT in {run['mismatched_elements']} of {run['elements']} elements[/]"
        table.add_row("target vs hwsim", f"{verdict} on {run['samples']} samples")
        table.add_row("emulator wall time", f"{run['wall_s']:.3f} s ({run['wall_ms_per_sample']:.3f} ms/sample)")
    table.add_row("output folder", text(out))
    console.print(table)
