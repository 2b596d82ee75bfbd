"""The ``intonly`` command line: run, inspect, compare.

Any :class:`quantize.errors.IntonlyError` becomes one message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from quantize.errors import IntonlyError
from quantize.ops import ROUNDING_MODES

from . import jobs

console = Console(width=None if sys.stdout.isatty() else 200)


def _add_quant_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="digits",
                   help="'digits' (bundled demo) or FILE.py:NAME, an nn.Module class or factory in a Python file")
    p.add_argument("--data", help="for FILE.py models: .npz with x (float, N first), optional y (labels), "
                                  "optional x_calib (calibration inputs; default x)")
    p.add_argument("--rounding", choices=ROUNDING_MODES, default="half_up")
    p.add_argument("--observer", choices=("minmax", "percentile", "mse"), default="minmax")
    p.add_argument("--weight-bits", type=int, default=8)
    p.add_argument("--act-bits", type=int, default=8)
    p.add_argument("--symmetric", action="store_true", help="symmetric activations (zero point 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intonly", description="integer-only neural-network deployment")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="quantize, simulate, generate+build+run C, compare (default: digits CNN)")
    _add_quant_options(run)
    run.add_argument("--out", default="out/digits", help="output folder (replaced atomically on success)")
    ins = sub.add_parser("inspect", help="print the graph of an .intonly model: nodes, dtypes, bits, params, MACs")
    ins.add_argument("file")
    cmp = sub.add_parser("compare", help="per-layer FP32 vs integer SQNR and max |error| in LSBs")
    _add_quant_options(cmp)
    cmp.add_argument("--int-model", help="an .intonly file to compare instead of quantizing again")
    cmp.add_argument("--json", help="also write the rows to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            jobs.run_job(args, console)
        elif args.command == "inspect":
            jobs.inspect_job(args.file, console)
        elif args.command == "compare":
            jobs.compare_job(args, console)
    except IntonlyError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
