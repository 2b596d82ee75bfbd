"""Emit a whole-model C99 project from an IntModel.

Files: ``model.h`` (API), ``model.c`` (straight-line kernel calls over a static arena), ``kernels.[ch]``
(one specialised function per kernel signature used), ``intonly_runtime.h`` (requant for the chosen
rounding mode), ``weights.[ch]`` (const arrays), ``main.c`` (reads input vectors, writes outputs), ``Makefile``,
``build_report.json`` (the family, and per kernel whether the family specialised it or the generic one is used).
Kernel templates are looked up in ``templates/<family>/`` first, then ``templates/generic/``; a family template
can include a generic one explicitly as ``generic/<op>.c.j2`` (docs/codegen-families.md). The project files'
templates are in ``templates/project/``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from intonly.quantize.errors import UnsupportedOpError
from intonly.quantize.ir import IntModel
from intonly.quantize.memory import ArenaPlan, plan_model_arena

from .c_names import c_comment, c_identifier, c_string_literal
from .calls import C_TYPES, KernelCall, node_calls
from .families import TEMPLATES, get_family
from .toolchain import HOST_CFLAGS

PROJECT = "project"  # templates/project/: the project files around the kernels (not a family)


@dataclass
class CProject:
    directory: Path
    input_tensors: list[str]
    output_tensors: list[str]
    plan: ArenaPlan
    functions: list[str]
    family: str = "generic"
    # per kernel function: {"fn", "op", "dtypes", "source": the family or "generic", "guard": the C condition the
    # family's SIMD body compiles under (else that kernel compiles its generic body), None for generic kernels}
    kernels: list[dict] = field(default_factory=list)


def environment(family: str) -> jinja2.Environment:
    """Templates of ``family``, falling back to ``generic``, then the project files (``templates/project/``:
    Makefile, main.c, model.[ch], weights.[ch], kernels.[ch], runtime.h); the templates root is searched last, so
    a family template can name a generic one explicitly (``{% include "generic/conv2d.c.j2" %}``)."""
    fam = get_family(family)
    dirs = [TEMPLATES / family, TEMPLATES / "generic"] if family != "generic" else [TEMPLATES / "generic"]
    dirs += [TEMPLATES / PROJECT, TEMPLATES]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(d) for d in dirs]), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.globals.update(family=family, guard=fam.guard)  # what a family template's SIMD body compiles under
    return env


def c_int(value: int) -> str:
    """A C integer literal of ``value``: ``LL`` outside int32 (int64 constants), INT32_MIN spelled without overflow."""
    if value == -(2**31):
        return "(-2147483647 - 1)"
    return str(int(value)) + ("LL" if not -(2**31) <= value < 2**31 else "")


def render_kernels(env: jinja2.Environment, calls: list[KernelCall], rounding: str) -> list[dict]:
    """One rendered function per distinct kernel signature, in first-use order. Templates see ``fn``, ``params``,
    ``args`` (the parameter names, comma-separated, for a kernel that forwards its call), ``t`` (the C element
    types) and ``rounding`` (the model's rounding mode, for kernels whose own divisions round by it, like
    layernorm's mean).

    Each entry also says where the kernel came from: ``family`` is the directory of the template that rendered it
    (``generic`` when the family has none for the op), or ``generic`` when a family template declined the element
    types by setting ``specialised = false`` at its top level (it then renders the generic body)."""
    kernels: dict[tuple, dict] = {}
    for call in calls:
        if call.signature_key in kernels:
            continue
        params = ", ".join(a.c_param() for a in call.args)
        template = env.get_template(f"{call.op}.c.j2")
        module = template.make_module({"fn": call.function, "params": params,
                                       "args": ", ".join(a.name for a in call.args),
                                       "t": [C_TYPES[d] for d in call.dtypes], "rounding": rounding})
        origin = Path(template.filename).parent.name
        if origin != "generic" and not getattr(module, "specialised", True):
            origin = "generic"
        kernels[call.signature_key] = {"fn": call.function, "params": params, "source": str(module),
                                       "op": call.op, "dtypes": list(call.dtypes), "family": origin}
    return list(kernels.values())


def build_report(family: str, kernels: list[dict], rounding: str, cflags: str) -> dict:
    """``build_report.json``: which ops the family specialised, which fell back to the generic kernels, per kernel."""
    fam = get_family(family)
    rows = [{"fn": k["fn"], "op": k["op"], "dtypes": k["dtypes"], "source": k["family"],
             "guard": fam.guard if k["family"] != "generic" else None} for k in kernels]
    return {"family": family, "isa": fam.isa, "guard": fam.guard, "family_cflags": fam.cflags, "cflags": cflags,
            "rounding": rounding,
            "specialised_ops": sorted({r["op"] for r in rows if r["source"] != "generic"}),
            "fallback_ops": sorted({r["op"] for r in rows if r["source"] == "generic"}),
            "kernels": rows}


def boundary_tensors(model: IntModel) -> tuple[list[str], list[str]]:
    """The integer tensors the C program takes (quantize outputs) and returns (dequantize inputs)."""
    return ([n.outputs[0] for n in model.nodes if n.op == "quantize"],
            [n.inputs[0] for n in model.nodes if n.op == "dequantize"])


def format_values(arr: np.ndarray, per_line: int = 16) -> str:
    flat = [c_int(v) for v in arr.ravel().tolist()]
    return ",\n".join("    " + ", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line))


def emit_c(model: IntModel, out_dir: str | Path, family: str = "generic", rounding: str | None = None,
           cflags: str = HOST_CFLAGS) -> CProject:
    """Write the C project for ``model`` into ``out_dir``; ``rounding`` overrides the model's mode."""
    model.validate()
    out_dir = Path(out_dir)
    env = environment(family)
    in_ts, out_ts = boundary_tensors(model)
    if not in_ts or not out_ts:
        raise UnsupportedOpError([(model.name, "C code generation needs at least one quantize input and one "
                                               "dequantize output")])
    steps_nodes = model.integer_nodes()
    per_node = [(node, node_calls(model, node)) for node in steps_nodes]

    plan = plan_model_arena(model)

    const_ids: dict[str, str] = {}
    for i, name in enumerate(model.constants):
        const_ids[name] = c_identifier(name, f"k{i}_")

    def expr(arg) -> str:
        if arg.kind in ("in", "out"):
            if arg.value in in_ts:
                return f"input{in_ts.index(arg.value)}"
            qual = "const " if arg.kind == "in" else ""
            return f"({qual}{C_TYPES[arg.dtype]} *)(ARENA + {plan.offsets[arg.value]})"
        if arg.kind == "const":
            return const_ids[arg.value]
        return c_int(arg.value)

    steps = [{"fn": call.function, "args": ", ".join(expr(a) for a in call.args),
              "comment": c_comment(f"{node.name}: {node.op}"),
              "profile_mark": i if j == len(calls) - 1 else None}
             for i, (node, calls) in enumerate(per_node) for j, call in enumerate(calls)]
    # INTONLY_PROFILE builds: one timer slot per integer node, read after the node's last kernel call.
    profile = [{"index": i, "name": c_string_literal(node.name)} for i, (node, _) in enumerate(per_node)]
    all_calls = [call for _, calls in per_node for call in calls]
    kernels = render_kernels(env, all_calls, rounding or model.rounding)

    def port(i, name):
        t = model.tensors[name]
        return {"index": i, "name": c_comment(name), "count": math.prod(t.shape), "ctype": C_TYPES[t.dtype],
                "shape": "x".join(map(str, t.shape)), "scale": f"{t.scale:.9g}", "zp": t.zero_point,
                "expr": f"input{in_ts.index(name)}" if name in in_ts else f"ARENA + {plan.offsets[name]}"}

    constants = [{"ident": const_ids[n], "name": c_comment(n), "ctype": C_TYPES[str(a.dtype)],
                  "size": max(a.size, 1), "shape": list(a.shape), "data": format_values(a) if a.size else "0"}
                 for n, a in model.constants.items()]
    ctx = {"model_name": c_identifier(model.name, ""), "rounding": rounding or model.rounding, "family": family,
           "kernels": kernels, "constants": constants, "steps": steps, "profile": profile,
           "arena_bytes": plan.arena_bytes,
           "inputs": [port(i, t) for i, t in enumerate(in_ts)], "outputs": [port(i, t) for i, t in enumerate(out_ts)],
           "cflags": cflags}
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"intonly_runtime.h": "runtime.h.j2", "kernels.h": "kernels.h.j2", "kernels.c": "kernels.c.j2",
             "weights.h": "weights.h.j2", "weights.c": "weights.c.j2", "model.h": "model.h.j2",
             "model.c": "model.c.j2", "main.c": "main.c.j2", "Makefile": "Makefile.j2"}
    for filename, template in files.items():
        (out_dir / filename).write_text(env.get_template(template).render(**ctx))
    report = build_report(family, kernels, ctx["rounding"], cflags)
    (out_dir / "build_report.json").write_text(json.dumps(report, indent=1) + "\n")
    return CProject(out_dir, in_ts, out_ts, plan, [k["fn"] for k in kernels], family, report["kernels"])
