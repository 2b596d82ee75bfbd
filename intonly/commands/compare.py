"""``intonly compare``: per layer, FP32 against the integer model (SQNR, max and mean |error| in output LSBs); for a
``.tflite`` model, hwsim against the TFLM interpreter on every tensor; with
``--targets a,b,...``, the integer model under each target's pipeline against the first target's, per tensor."""

from __future__ import annotations

import argparse
import dataclasses
import json

from rich.console import Console
from rich.table import Table

from intonly import api
from intonly.display import text
from intonly.imported import is_imported
from intonly.output import write_file
from intonly.quantize.errors import ConfigError
from intonly.quantize.ir import IntModel
from intonly.targets import load_target

from ._options import add_quant_options, config_from

ORDER = 30


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("compare", help="per-layer FP32 vs integer SQNR and max |error| in LSBs")
    add_quant_options(p)
    p.add_argument("--int-model", help="an .intonly file to compare instead of quantizing again")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--targets", help="instead: run the integer model under each of these targets' pipelines "
                                     "(comma-separated, e.g. cortex-m7,nvidia-t4) and show where the bits differ "
                                     "from the first target's")
    p.add_argument("--target-dir", action="append", default=[], help="a directory of third-party target files")
    return p


def run(args, console: Console) -> int:
    compare_job(args, console)
    return 0


def compare_job(args, console: Console) -> list | dict:
    if is_imported(args.model):
        if args.targets or args.int_model:
            raise ConfigError(f"{args.model}: an imported model is compared with its own runtime; --targets and "
                              "--int-model are for float models")
        from ._imported import compare_imported_job
        return compare_imported_job(args, console)
    from intonly.workloads import load_workload

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
