"""``intonly targets list|show``: the deployment targets intonly knows (built-in and third-party).

``list`` prints one row per target (kind, clock, rounding, int8 conv MAC/cycle, peak GMAC/s, memory levels, file);
``show NAME[@CLOCK]`` prints every field beside its source, or with ``--json`` the target as a document of the file
format (every number as ``{"value", "source"}``) plus ``file`` and ``overrides``. Problems raise
:class:`targets.TargetError`, which the CLI turns into ``error: TargetError: ...`` and exit code 2.
"""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from intonly.targets import Target, describe, list_targets, load_target, to_document
from intonly.targets.loader import BUILTIN_DIR

from intonly.display import text

ORDER = 50


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("targets", help="list the deployment targets or show one target's numbers and their sources")
    cmd = p.add_subparsers(dest="targets_command", required=True)
    dirs = argparse.ArgumentParser(add_help=False)
    dirs.add_argument("--target-dir", action="append", default=[], metavar="DIR",
                      help="also search DIR for <name>.toml target files (repeatable; see docs/targets.md)")
    cmd.add_parser("list", parents=[dirs], help="one row per target: clock, rounding, int8 throughput, memory")
    show = cmd.add_parser("show", parents=[dirs], help="every field of one target beside its source")
    show.add_argument("spec", metavar="NAME[@CLOCK]",
                      help="a target name (cortex-m7), with an optional clock (cortex-m7@480MHz, "
                           "cortex-a76@2.4GHz), or a path to a .toml file")
    show.add_argument("--json", action="store_true", help="print the target as JSON")
    return p


def run(args, console: Console) -> int:
    if args.targets_command == "list":
        console.print(_list_table(list_targets(args.target_dir)))
        return 0
    target = load_target(args.spec, args.target_dir)
    if args.json:
        doc = {**to_document(target), "file": str(target.file), "overrides": list(target.overrides)}
        console.out(json.dumps(doc, indent=2, ensure_ascii=False), highlight=False)
    else:
        console.print(_show_table(target))
    return 0


def _list_table(targets: list[Target]) -> Table:
    table = Table(title="intonly targets")
    for column in ("name", "kind", "clock MHz", "rounding", "int8 conv MAC/cycle", "peak int8 conv GMAC/s",
                   "memory", "file"):
        table.add_column(column, justify="right" if "MAC" in column or "MHz" in column else "left")
    for t in targets:
        mac_per_cycle = t.throughput["int8_conv"].value
        table.add_row(text(t.name), t.kind, f"{t.clock_mhz.value:g}", t.numerics.rounding, _num(mac_per_cycle),
                      _num(mac_per_cycle * t.clock_mhz.value / 1e3),
                      text(", ".join(f"{m.name} {_size(m.size_bytes.value)}" for m in t.memory)), text(_where(t)))
    return table


def _show_table(target: Target) -> Table:
    title = f"{target.label} ({_where(target)})"
    table = Table(title=text(title), show_lines=False)
    for column in ("field", "value", "unit", "source"):
        table.add_column(column, overflow="fold")
    for row in describe(target):
        table.add_row(*(text(cell) for cell in row))
    for override in target.overrides:
        table.add_row("override", text(override), "", "NAME@CLOCK target spec")
    return table


def _where(target: Target) -> str:
    if target.file is not None and target.file.parent == BUILTIN_DIR:
        return "built-in"
    return str(target.file)


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 1000 else f"{x:.3g}"


def _size(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n:g} B"
