"""The ``intonly`` subcommands: one module per command, ``intonly/commands/<name>.py``, found by :func:`modules`.

Adding a command is adding one file here (nothing else to edit). A command module defines

* ``add_parser(subparsers) -> argparse.ArgumentParser``: adds the command's subparser
  (``subparsers.add_parser(NAME, help=...)``) with its options and returns it;
* ``run(args, console) -> int``: does the work and returns the exit code: 0 done, 1 the generated code's
  outputs differ from hwsim's. Bad input is raised as :class:`quantize.errors.IntonlyError`, which
  :func:`intonly.cli.main` turns into one message and exit code 2;
* optionally ``ORDER``, an int: the command's place in ``intonly --help`` (run 10, inspect 20, compare 30,
  estimate 40, targets 50, build 60; a module without one comes after them). Ties go by module name.

A module whose name starts with ``_`` is a helper shared by commands, not a command.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

DEFAULT_ORDER = 100


def modules() -> list[ModuleType]:
    """Every command module of this package, in help order (``ORDER``, then name)."""
    found = [importlib.import_module(f"{__name__}.{info.name}")
             for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    return sorted(found, key=lambda m: (getattr(m, "ORDER", DEFAULT_ORDER), m.__name__))
