"""The ``intonly`` command line: run, inspect, compare, estimate, build, targets.

Any :class:`quantize.errors.IntonlyError` becomes one message on stderr and exit code 2 (see :func:`main`).
"""

from __future__ import annotations

import argparse
import signal
import sys

from rich.console import Console

from intonly.quantize.errors import IntonlyError
from intonly.quantize.config import GELU_FAMILIES, OBSERVERS, SOFTMAX_FAMILIES
from intonly.quantize.names import ROUNDING_MODES

from . import build_job, jobs, targets_cli
from .output import StopSignals

console = Console(width=None if sys.stdout.isatty() else 200)


def _add_quant_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="digits",
                   help="a bundled demo: 'digits' (CNN), 'vit' (tiny ViT on digits), 'minilm' (MiniLM-L6 sentence "
                        "embeddings); or FILE.py:NAME, an nn.Module class or factory in a Python file")
    p.add_argument("--data", help="for FILE.py models: .npz with x (float, N first), optional y (labels), "
                                  "optional x_calib (calibration inputs; default x)")
    p.add_argument("--rounding", choices=ROUNDING_MODES, help="requant rounding (default half_up)")
    p.add_argument("--observer", choices=OBSERVERS, help="calibration range (default minmax)")
    p.add_argument("--weight-bits", type=int, help="default 8")
    p.add_argument("--act-bits", type=int, help="default 8")
    p.add_argument("--symmetric", action="store_true", help="symmetric activations (zero point 0)")
    p.add_argument("--softmax", choices=SOFTMAX_FAMILIES, help="integer softmax family (default shiftmax)")
    p.add_argument("--gelu", choices=GELU_FAMILIES, help="integer GELU family (default shiftgelu)")
    p.add_argument("--softmax-bits", type=int, choices=(8, 16), help="attention probability bits (default 16)")
    p.add_argument("--residual-bits", type=int, help="bits of residual-add operands and results "
                                                     "(transformer demos: 16)")
    p.add_argument("--auto-bits", action=argparse.BooleanOptionalAction,
                   help="16 bits for tensors whose 8-bit calibration SQNR is low (transformer demos: on)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intonly", description="integer-only neural-network deployment")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="quantize, simulate, generate+build+run C, compare (default: digits CNN)")
    _add_quant_options(run)
    run.add_argument("--out", help="output folder, replaced atomically on success; an existing folder is replaced "
                                    "only if intonly made it (default out/<demo>)")
    ins = sub.add_parser("inspect", help="print the graph of an .intonly model: nodes, dtypes, bits, params, MACs")
    ins.add_argument("file")
    ins.add_argument("--all", action="store_true", help="list every node, bound and wide tensor (default: the first "
                                                        "and last 100 of each)")
    cmp = sub.add_parser("compare", help="per-layer FP32 vs integer SQNR and max |error| in LSBs")
    _add_quant_options(cmp)
    cmp.add_argument("--int-model", help="an .intonly file to compare instead of quantizing again")
    cmp.add_argument("--json", help="also write the rows to this JSON file")
    cmp.add_argument("--targets", help="instead: run the integer model under each of these targets' pipelines "
                                       "(comma-separated, e.g. cortex-m7,nvidia-t4) and show where the bits differ "
                                       "from the first target's")
    cmp.add_argument("--target-dir", action="append", default=[], help="a directory of third-party target files")
    est = sub.add_parser("estimate", help="per-layer latency, energy, peak RAM and flash on one or more targets")
    est.add_argument("model", help="an .intonly file, or a float model to quantize first: a bundled demo (digits, "
                                   "vit, minilm) or FILE.py:NAME with --data")
    est.add_argument("--data", help="for FILE.py:NAME models: .npz as for intonly run")
    est.add_argument("--target", help="comma-separated targets, NAME or NAME@480MHz (default: every target)")
    est.add_argument("--target-dir", action="append", default=[], help="a directory of third-party target files")
    est.add_argument("--batch", type=int, default=1, help="samples per inference (default 1)")
    est.add_argument("--layers", action="store_true", help="also print the per-layer table of every target")
    est.add_argument("--out", help="folder for estimate.json/.png/.html (default out/estimate/<model>)")
    targets_cli.add_parser(sub)
    build_job.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Exit codes: 0 done; 1 the generated code's outputs differ from hwsim's; 2 one
    :class:`IntonlyError` (bad input, refused output folder, missing tool: one message on stderr); 128 + N when
    signal N stopped it (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). Output folders are staged, so an error or a
    signal leaves none."""
    args = build_parser().parse_args(argv)
    try:
        with StopSignals():
            return _dispatch(args)
    except BaseException as exc:
        if StopSignals.signum is not None:   # whatever the interrupted library turned the signal into
            name = signal.Signals(StopSignals.signum).name
            done = (f"{StopSignals.published[-1]} was complete and in place" if StopSignals.published else
                    "no output folder was written or changed")
            print(f"intonly: stopped by {name}; {done}", file=sys.stderr)
            return 128 + StopSignals.signum
        if isinstance(exc, IntonlyError):
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        raise


def _dispatch(args) -> int:
    if args.command == "run":
        summary = jobs.run_job(args, console)
        if not summary["bit_exact"]["c_host"]:  # the generated C disagreed with hwsim
            return 1
    elif args.command == "inspect":
        jobs.inspect_job(args.file, console, all_rows=args.all)
    elif args.command == "compare":
        jobs.compare_job(args, console)
    elif args.command == "estimate":
        jobs.estimate_job(args, console)
    elif args.command == "build":
        report = build_job.run(args, console)
        if report["bit_exact"] is False:  # --run found the target's outputs differ from hwsim's
            return 1
    elif args.command == "targets":
        targets_cli.run(args, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
