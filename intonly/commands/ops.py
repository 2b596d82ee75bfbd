"""``intonly ops [--json | --markdown]``: the op support matrix (:mod:`intonly.support`): every IR op, its exact
definition, which executors run it (hwsim, generic C, the SIMD families that specialise it, TVM) and the frontends
that lower to it. ``--markdown`` prints docs/ops.md."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from intonly.support import markdown, op_rows

ORDER = 70


FORMATS = {  # flag -> what it prints instead of the table
    "--json": 'JSON: {"ops": [{"name", "definition", "hwsim", "c", "c_families", "tvm", "frontends", ...}]}',
    "--markdown": "docs/ops.md",
}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("ops", help="the op support matrix: every IR op, its definition, executors and frontends")
    form = p.add_mutually_exclusive_group()
    for flag, output in FORMATS.items():
        form.add_argument(flag, action="store_true", help=f"print {output}")
    return p


def run(args, console: Console) -> int:
    rows = op_rows()
    if args.json:
        console.out(json.dumps({"ops": rows}, indent=2), highlight=False)
    elif args.markdown:
        console.out(markdown(rows), highlight=False, end="")
    else:
        table = Table(title=f"{len(rows)} IR ops")
        for column in ("op", "definition", "hwsim", "C", "SIMD families", "TVM", "PyTorch frontends"):
            table.add_column(column)
        for r in rows:
            table.add_row(r["name"], r["definition"], "yes" if r["hwsim"] else "-", "yes" if r["c"] else "-",
                          ", ".join(r["c_families"]) or "-", "yes" if r["tvm"] else "-",
                          ", ".join(f.removeprefix("pytorch:") for f in r["frontends"]) or "-")
        console.print(table)
    return 0
