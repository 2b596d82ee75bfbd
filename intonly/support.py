"""The op support matrix: every IR op with its exact definition, the executors that run it and the frontends that
lower to it, built from the registries themselves: the IR ops (``quantize/ops/``), hwsim's kernels
(``hwsim/ops/``), the C generator's ops (``codegen/c/ops/``) and the SIMD families that specialise their
kernels (``codegen/c/templates/<family>/``), and the PyTorch frontend's table (``quantize/capture.py``).

``intonly ops`` prints it (``--json``, ``--markdown``); docs/ops.md is ``intonly ops --markdown`` (a test checks
that the file is current).
"""

from __future__ import annotations

import importlib
import inspect

from intonly.codegen.c import ops as c_ops
from intonly.codegen.c.families import specialising_families
from intonly.hwsim import ops as hwsim_ops
from intonly.quantize import ops as ops_package
from intonly.quantize.capture import (FUNCTION_KINDS, KIND_VARIANTS, LEAF_KINDS, LOWERS_TO, METHOD_KINDS, MODULE_KINDS,
                                     public_name)
from intonly.quantize.ops import EXECUTORS, INT32_RANGE, MAX_RANK, OPS, Attr
from intonly.quantize.recurrent import FRONTENDS as RECURRENT_FRONTENDS
from intonly.quantize.rewrite import FRONTENDS as REWRITE_FRONTENDS

GRAPH_EDGES = {"placeholder": "a graph input", "output": "a graph output"}


def _leaf_classes() -> dict[str, list[str]]:
    """intonly_kind -> the classes in intonly.models that set it (the leaf modules users build models from)."""
    from intonly.models import attention, bert, vit
    found: dict[str, list[str]] = {}
    for module in (attention, bert, vit):
        for name, cls in inspect.getmembers(module, inspect.isclass):
            kind = getattr(cls, "intonly_kind", None)
            if kind in LEAF_KINDS and cls.__module__ == module.__name__:
                found.setdefault(kind, []).append(f"{cls.__module__}.{name}")
    return found


def pytorch_frontends() -> dict[str, list[str]]:
    """IR op -> what a PyTorch model calls that can lower to it (modules, functions, Tensor methods, leaf modules,
    graph inputs and outputs), each as ``pytorch:<name>``."""
    callers: dict[str, list[str]] = {kind: [text] for kind, text in GRAPH_EDGES.items()}
    for cls, kind in MODULE_KINDS.items():   # torch.nn.modules.conv.Conv2d is torch.nn.Conv2d to users
        if cls.__module__.startswith("intonly.quantize."):
            continue                           # made by the capture rewrites, listed by what they accept
        module = "torch.nn" if cls.__module__.startswith("torch.nn.modules.") else cls.__module__
        callers.setdefault(kind, []).append(f"{module}.{cls.__qualname__}")
    for fn, kind in FUNCTION_KINDS.items():
        callers.setdefault(kind, []).append(public_name(fn))
    for method, kind in METHOD_KINDS.items():
        callers.setdefault(kind, []).append(f"Tensor.{method}")
    for kind, classes in [*_leaf_classes().items(), *KIND_VARIANTS.items()]:
        callers.setdefault(kind, []).extend(classes)
    frontends: dict[str, list[str]] = {}
    for kind, ops in LOWERS_TO.items():
        for op in ops:
            frontends.setdefault(op, []).extend(f"pytorch:{c}" for c in callers.get(kind, []))
    for op, names in [*REWRITE_FRONTENDS.items(), *RECURRENT_FRONTENDS.items()]:
        frontends.setdefault(op, []).extend(f"pytorch:{name}" for name in names)
    return {op: sorted(set(names)) for op, names in frontends.items()}


def _attribute(spec: Attr) -> str:
    """``int32``, ``int in [0, 1]``, ``2 ints in [1, 65536]``, ``up to 8 ints in [0, 7]``."""
    values = "int32" if (spec.lo, spec.hi) == INT32_RANGE else f"in [{spec.lo}, {spec.hi}]"
    if spec.kind == "int":
        return values if values == "int32" else f"int {values}"
    count = f"{spec.length}" if spec.length is not None else f"up to {MAX_RANK}"
    return f"{count} {values}s" if values == "int32" else f"{count} ints {values}"


def op_rows() -> list[dict]:
    """One row per IR op, in name order: ``name``, ``summary``, ``definition`` (a docs path with its anchor),
    ``integer``, ``hwsim``, ``c``, ``c_families`` (SIMD families with their own kernel for it), ``tvm``,
    ``frontends``, ``declines`` (executor -> why it has none), ``inputs`` (a count, or null for one or more),
    ``attributes`` (name -> kind and range), ``params`` (role -> dtypes) and ``text`` (the op module's statement
    of what it computes)."""
    frontends = pytorch_frontends()
    implemented = {"hwsim": hwsim_ops.IMPLEMENTED, "c": c_ops.IMPLEMENTED}
    assert set(implemented) == set(EXECUTORS)
    return [{"name": name, "summary": op.summary, "definition": op.definition, "integer": op.integer,
             "hwsim": name in implemented["hwsim"], "c": name in implemented["c"],
             "c_families": specialising_families(name) if name in implemented["c"] else [],
             "tvm": False, "frontends": frontends.get(name, []), "declines": dict(op.declines),
             "inputs": op.n_inputs, "attributes": {key: _attribute(spec) for key, spec in op.attrs.items()},
             "params": {role: list(dtypes) for role, dtypes in op.params.items()},
             "text": " ".join(inspect.getdoc(importlib.import_module(f"{ops_package.__name__}.{name}")).split())}
            for name, op in sorted(OPS.items())]


def _mark(flag: bool) -> str:
    return "yes" if flag else "—"


def _doc_link(definition: str) -> str:
    """A link from docs/ops.md to ``docs/<file>.md#<anchor>``."""
    target = definition.removeprefix("docs/")
    return f"[{target}]({target})"


def _section(r: dict) -> list[str]:
    """docs/ops.md's section of one op: what it computes exactly, its interface, executors and frontends."""
    inputs = "one or more" if r["inputs"] is None else str(r["inputs"])
    attributes = "; ".join(f"`{k}` {v}" for k, v in r["attributes"].items()) or "none"
    params = "; ".join(f"`{k}` {'/'.join(v)}" for k, v in r["params"].items()) or "none"
    executors = [label for key, label in (("hwsim", "hwsim"), ("c", "C")) if r[key]]
    c_note = f" (SIMD: {', '.join(r['c_families'])})" if r["c_families"] else ""
    lines = [f"### `{r['name']}`", "", r["text"].removeprefix(f"{r['name']}: "), "",
             f"- Definition: {_doc_link(r['definition'])}",
             f"- Inputs: {inputs}. Attributes: {attributes}. Parameters: {params}.",
             f"- Executors: {', '.join(executors)}{c_note}" + "".join(
                 f"; no {ex}: {reason}" for ex, reason in r["declines"].items()) + "."]
    if r["frontends"]:
        names = ", ".join(f"`{f.removeprefix('pytorch:')}`" for f in r["frontends"])
        lines.append(f"- PyTorch: {names}.")
    return lines + [""]


def markdown(rows: list[dict]) -> str:
    """docs/ops.md: the matrix, the declined executors with their reasons, and how to add an op."""
    lines = [
        "# Op support matrix",
        "",
        "<!-- Generated by `intonly ops --markdown > docs/ops.md` from the op registry; do not edit by hand "
        "(tests/test_op_registry.py checks that this file is current). -->",
        "",
        f"{len(rows)} IR ops. *definition*: the exact integer definition (rounding, shifts, clamps, widths). *hwsim*: "
        "the bit-accurate simulator (`hwsim/ops/<op>.py`). *C*: the generated C99 kernel "
        "(`codegen/c/ops/<op>.py`, `codegen/c/templates/generic/`); *SIMD*: the families with their own kernel "
        "for the op, equal to the generic one bit for bit ([codegen-families.md](codegen-families.md)). *TVM*: "
        "not built yet. *PyTorch frontends*: how many module classes, functions and Tensor methods lower to the op "
        "(listed in its section below).",
        "",
        "| op | computes | definition | hwsim | C | SIMD | TVM | PyTorch frontends |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| [`{r['name']}`](#{r['name']}) | {r['summary']} | {_doc_link(r['definition'])} | "
                     f"{_mark(r['hwsim'])} | {_mark(r['c'])} | "
                     f"{', '.join(r['c_families']) or '—'} | {_mark(r['tvm'])} | {len(r['frontends']) or '—'} |")
    lines += ["", "## The ops", ""]
    for r in rows:
        lines += _section(r)
    lines += ["## Adding an op", "",
              "One file per package, plus its test; nothing else to edit:", "",
              "1. `quantize/ops/<op>.py`: `OP = OpDef(...)`, its attributes with their ranges, shape rule, MACs, "
              "overflow bounds and elementwise fact; its exact definition (every rounding, shift, clamp and width) is the "
              "module docstring, shown in this page, and `definition` links here (`docs/ops.md#<op>`) or to a longer "
              "section of the docs.",
              "2. `hwsim/ops/<op>.py`: `run(model, node, inputs, ctx)`, the bit-accurate kernel, and `work(model, "
              "node)`, its operations per sample by op class for the cost model.",
              "3. `codegen/c/ops/<op>.py`: `calls(model, node)`, and its kernel template "
              "`codegen/c/templates/generic/<op>.c.j2` (a SIMD family may add `templates/<family>/<op>.c.j2`).",
              "4. A test that runs the op through hwsim and the generated C and compares every bit.",
              "5. `intonly ops --markdown > docs/ops.md`.",
              "",
              "An executor that does not implement the op says why in `OpDef.declines`. A frontend that lowers to it "
              "lists it in its table (PyTorch: `LOWERS_TO` in `quantize/capture.py`).", ""]
    return "\n".join(lines)
