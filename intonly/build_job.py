"""``intonly build``: generate the C project of a model for a target, cross-compile it, optionally run it."""

from __future__ import annotations

import argparse

from rich.console import Console


def add_parser(sub) -> argparse.ArgumentParser:
    return sub.add_parser("build", help="generate, cross-compile and (--run) run a model's C for a target")


def run(args, console: Console) -> None:
    raise NotImplementedError("intonly build: being written")
