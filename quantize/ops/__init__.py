"""The op registry: one module per IR op (``quantize/ops/<op>.py``), discovered at import.

Each op module defines ``OP``, an :class:`OpDef` holding everything the IR knows about the op: its inputs,
attributes with their ranges, parameters, output-shape rule, MAC count, overflow bounds, whether it is
elementwise, and a link to its exact integer definition in the docs. :data:`OPS` maps each name to its
``OpDef``; the IR validator, the lowering, the memory planner, hwsim, the C generator and ``intonly ops`` read it.
Executors register per op by file name: ``hwsim/ops/<op>.py`` (kernel and work row) and ``codegen/c/ops/<op>.py``
(kernel calls; templates in ``codegen/c/templates/<family>/``). An op that an executor does not implement says
why in ``OpDef.declines``. Adding an op: docs/ops.md, "Adding an op".

Shapes are per sample (no batch dimension); image tensors are HWC (channels last, as in TFLite / CMSIS-NN),
vectors are (C,).
"""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import ModelFileError
from ._attrs import INT32_RANGE, MAX_RANK, Attr
from ._opdef import EXECUTORS, OpDef


def _discover() -> dict[str, OpDef]:
    ops = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        op = importlib.import_module(f"{__name__}.{info.name}").OP
        if op.name != info.name:
            raise ImportError(f"quantize/ops/{info.name}.py defines op {op.name!r}; an op module is named after its op")
        ops[op.name] = op
    return ops


OPS: dict[str, OpDef] = _discover()

__all__ = ["OPS", "OpDef", "Attr", "EXECUTORS", "MAX_RANK", "INT32_RANGE", "check_attrs", "infer_shape"]


def infer_shape(op: str, attrs: dict, in_shapes: list[tuple], params: dict) -> tuple:
    """Output shape of ``op`` for the given input shapes and parameter shapes; raises ValueError on
    inconsistency (the op's own rule, then: no empty dimension)."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}")
    out = tuple(OPS[op].shape(attrs, [tuple(s) for s in in_shapes], params))
    if any(d < 1 for d in out):
        raise ValueError(f"output shape {out} has an empty dimension")
    return out


def check_attrs(op: str, attrs: dict, where: str) -> None:
    """Raise ModelFileError unless ``attrs`` has exactly the op's attributes, each of the right kind and inside
    its range (:class:`Attr`), and the op's relations between attributes hold. Ranges that depend on tensors
    (zero points, clamps, axes against a rank) are checked by :meth:`intonly.quantize.ir.IntModel.validate`."""
    schema = OPS.get(op)
    if schema is None:
        raise ModelFileError(f"{where}: unknown op {op!r} (known: {', '.join(sorted(OPS))})")
    missing = set(schema.attrs) - set(attrs)
    extra = set(attrs) - set(schema.attrs)
    if missing or extra:
        raise ModelFileError(f"{where}: op {op!r} attributes missing {sorted(missing)} / unexpected {sorted(extra)}")
    for key, spec in schema.attrs.items():
        problem = spec.problem(key, attrs[key])
        if problem:
            raise ModelFileError(f"{where}: {problem}")
    for problem in schema.relations(attrs):
        raise ModelFileError(f"{where}: {problem}")
