"""``intonly targets list|show``: the deployment targets intonly knows (built-in and third-party)."""

from __future__ import annotations

import argparse

from rich.console import Console


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("targets", help="list the deployment targets or show one target's numbers and their sources")
    return p


def run(args, console: Console) -> None:
    raise NotImplementedError("targets CLI: being written")
