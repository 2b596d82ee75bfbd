"""The C generator's executor for each IR op: ``codegen/c/ops/<op>.py``, found by the op's name.

Each op module exposes ``calls(model, node) -> list[KernelCall]`` (see :mod:`intonly.codegen.c.calls`): the
kernels the op runs as, each rendered from ``templates/generic/<kernel>.c.j2`` or, where a SIMD family
specialises it, ``templates/<family>/<kernel>.c.j2``. Adding an op to the C generator is adding
``codegen/c/ops/<op>.py`` and its generic template.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

IMPLEMENTED = frozenset(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


@functools.cache
def executor(op: str):
    """The module ``codegen/c/ops/<op>.py`` (with ``calls``), or None when the C generator has none for ``op``."""
    return importlib.import_module(f"{__name__}.{op}") if op in IMPLEMENTED else None
