"""The op registry: every IR op has every executor it claims (or says why not), the frontends' table is enforced,
and `intonly ops` / docs/ops.md show exactly the registry."""

import json
import re
from pathlib import Path

import pytest

from intonly import cli
from intonly.codegen.c import ops as c_ops
from intonly.codegen.c.emit import TEMPLATES
from intonly.codegen.c.families import FAMILIES
from intonly.hwsim import ops as hwsim_ops
from intonly.quantize import capture
from intonly.quantize.ops import EXECUTORS, OPS
from intonly.support import markdown, op_rows
from test_docs_links import anchors  # GitHub's heading slugs and HTML ids, as docs links are checked

ROOT = Path(__file__).resolve().parent.parent
IMPLEMENTED = {"hwsim": hwsim_ops.IMPLEMENTED, "c": c_ops.IMPLEMENTED}


def test_registry_lists_the_expected_ops():
    assert len(OPS) >= 25
    assert {"conv2d", "dense", "matmul", "add", "shiftmax", "layernorm", "quantize", "dequantize"} <= set(OPS)
    assert all(op.name == name for name, op in OPS.items())


@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_op_has_each_executor_or_declines_it_with_a_reason(executor):
    missing = sorted(name for name, op in OPS.items()
                     if name not in IMPLEMENTED[executor] and executor not in op.declines)
    both = sorted(name for name, op in OPS.items() if name in IMPLEMENTED[executor] and executor in op.declines)
    assert missing == [] and both == []
    assert IMPLEMENTED[executor] <= set(OPS), "an executor module for an op the IR does not know"
    assert all(len(reason) > 20 for op in OPS.values() for reason in op.declines.values())


def test_declined_executors_are_exactly_the_graph_boundary_in_c():
    assert {(name, ex) for name, op in OPS.items() for ex in op.declines} == {("quantize", "c"), ("dequantize", "c")}


def test_executor_modules_expose_their_entry_points():
    for name in hwsim_ops.IMPLEMENTED:
        module = hwsim_ops.executor(name)
        assert callable(module.run) and callable(module.work), name
    for name in c_ops.IMPLEMENTED:
        assert callable(c_ops.executor(name).calls), name
        assert (TEMPLATES / "generic" / f"{name}.c.j2").is_file() or name in ("concat", "reshape", "slice"), name
    assert hwsim_ops.executor("no_such_op") is None and c_ops.executor("no_such_op") is None


def test_family_templates_are_named_after_registered_ops():
    """A family kernel template specialises the generic kernel of the same name, so its op is findable."""
    for family in FAMILIES:
        for path in (TEMPLATES / family).glob("*.c.j2") if family != "generic" else ():
            name = path.name.removesuffix(".c.j2")
            assert name.startswith("_") or (name in OPS and (TEMPLATES / "generic" / path.name).is_file()), path


def test_every_definition_link_names_a_doc_section():
    for name, op in OPS.items():
        doc, _, anchor = op.definition.partition("#")
        assert (ROOT / doc).is_file(), (name, op.definition)
        assert anchor in anchors((ROOT / doc).read_text()), (name, op.definition)


def test_lowering_refuses_an_op_its_kind_does_not_list(monkeypatch):
    """The PyTorch frontend column cannot fall behind the lowering rules: emitting an unlisted op is an error."""
    import numpy as np
    import torch

    from intonly.quantize.lower import quantize
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
    monkeypatch.setitem(capture.LOWERS_TO, "conv", ())
    with pytest.raises(AssertionError, match="the 'conv' rule emitted 'conv2d', which capture.LOWERS_TO does not list"):
        quantize(net, np.random.default_rng(0).normal(size=(4, 1, 6, 6)).astype(np.float32))


def test_frontend_table_names_only_registered_ops_and_known_kinds():
    kinds = {*capture.MODULE_KINDS.values(), *capture.FUNCTION_KINDS.values(), *capture.METHOD_KINDS.values(),
             *capture.LEAF_KINDS, *capture.KIND_VARIANTS, "placeholder", "output"}
    assert set(capture.LOWERS_TO) <= kinds
    assert {op for ops in capture.LOWERS_TO.values() for op in ops} <= set(OPS)


def test_ops_json_lists_every_op_with_its_executors(capsys):
    assert cli.main(["ops", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["ops"]
    assert [r["name"] for r in rows] == sorted(OPS)
    for r in rows:
        assert set(r) >= {"name", "definition", "hwsim", "c", "c_families", "tvm", "frontends"}
        assert r["hwsim"] and (r["c"] or r["name"] in ("quantize", "dequantize")), r["name"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["conv2d"]["c_families"] == ["x86", "neon", "cortex-m-dsp", "cortex-m-mve"]
    assert by_name["add"]["c_families"] == [] and by_name["dequantize"]["c"] is False
    assert "pytorch:torch.nn.Conv2d" in by_name["conv2d"]["frontends"]
    assert {"pytorch:torch.nn.ReLU", "pytorch:torch.nn.functional.relu", "pytorch:Tensor.relu"} <= \
        set(by_name["clamp"]["frontends"])
    assert by_name["quantize"]["frontends"] == ["pytorch:a graph input"]


def test_docs_ops_md_is_current():
    """docs/ops.md is `intonly ops --markdown`; regenerate it with: intonly ops --markdown > docs/ops.md"""
    assert (ROOT / "docs" / "ops.md").read_text() == markdown(op_rows())


def test_rounding_modes_are_named_once():
    """Every folder of per-mode templates has one file per mode of quantize.names, and no template branches on a
    mode's name (a new mode is one file per folder, found by the mode's name)."""
    from intonly.quantize.names import ROUNDING_MODES
    folders = {p.parent for mode in ROUNDING_MODES for p in TEMPLATES.rglob(f"{mode}.c.j2")}
    assert {f.relative_to(TEMPLATES).as_posix() for f in folders} == {"project/requant", "generic/layernorm_mean",
                                                                      "x86/requant8"}
    for folder in folders:
        assert sorted(p.name.removesuffix(".c.j2") for p in folder.glob("[!_]*.c.j2")) == sorted(ROUNDING_MODES)
    branching = [p for p in TEMPLATES.rglob("*.j2") if re.search(r"rounding\s*[!=]=", p.read_text())]
    assert branching == []
