"""The ``intonly`` command line: one subcommand per module of :mod:`intonly.commands` (run, inspect, compare,
estimate, targets, build, ...), discovered there, so adding a command is adding a file.

Any :class:`quantize.errors.IntonlyError` becomes one message on stderr and exit code 2 (see :func:`main`).
"""

from __future__ import annotations

import argparse
import signal
import sys

from rich.console import Console

from intonly.quantize.errors import IntonlyError

from . import commands
from .output import StopSignals

console = Console(width=None if sys.stdout.isatty() else 200)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command module, in help order; each subparser carries its module's ``run``."""
    parser = argparse.ArgumentParser(prog="intonly", description="integer-only neural-network deployment")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in commands.modules():
        module.add_parser(sub).set_defaults(run_command=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Exit codes: 0 done; 1 the generated code's outputs differ from hwsim's; 2 one
    :class:`IntonlyError` (bad input, refused output folder, missing tool: one message on stderr); 128 + N when
    signal N stopped it (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). Output folders are staged, so an error or a
    signal leaves none."""
    args = build_parser().parse_args(argv)
    try:
        with StopSignals():
            return args.run_command(args, console)
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


if __name__ == "__main__":
    sys.exit(main())
