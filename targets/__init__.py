"""targets: declarative descriptions of deployment targets (numerics, throughput, memory, energy, toolchain).

One TOML file per target (``targets/specs/<name>.toml``, format in docs/targets.md), every number with its source.
:func:`load_target` resolves ``NAME``, ``NAME@480MHz`` or a path; :func:`list_targets` lists every target on the
search path (built-in, ``$INTONLY_TARGET_PATH``, ``--target-dir``, ``intonly.targets`` entry points). Problems raise
:class:`TargetError` naming the file and the field. This package imports nothing of intonly but
``quantize.errors`` and ``quantize.names``.
"""

from .loader import (TargetError, describe, list_targets, load_file, load_target, parse_clock, parse_document,
                     search_dirs, to_document)
from intonly.quantize.names import OP_CLASSES, ROUNDING_MODES

from .spec import HOLDS, KINDS, SATURATIONS, MemoryLevel, Numerics, Sourced, Target, Toolchain

__all__ = ["load_target", "list_targets", "load_file", "parse_clock", "parse_document", "to_document", "describe",
           "search_dirs", "TargetError", "Target", "Numerics", "MemoryLevel", "Toolchain", "Sourced", "OP_CLASSES",
           "KINDS", "ROUNDING_MODES", "SATURATIONS", "HOLDS"]
