"""Large graphs and hostile names: a 20,000-node chain through estimate, inspect and the plot (linear-time
paths, bounded output), the arena planner against the all-pairs reference, and names with rich markup and
mathtext shown literally. Speed targets live in bench/; these tests only check values (and finish in seconds)."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from intonly import api
from intonly.commands import estimate as estimate_cmd
from intonly.commands import inspect as inspect_cmd
from intonly.quantize.bounds import matmul_bound, node_bounds, producer_map, row_sum_bound
from intonly.quantize.ir import IntModel, Node, TensorInfo
from intonly.quantize.memory import ALIGN, plan_arena, plan_model_arena
from intonly.targets import load_target

CHAIN = 20_000


def chain(n: int, name: str = "chain", node_name=lambda i: f"c{i}") -> IntModel:
    """quantize -> n clamps over 4-element int8 tensors -> dequantize."""
    t = {"x": TensorInfo("x", "float32", (4,)), "q0": TensorInfo("q0", "int8", (4,), 0.1)}
    nodes = [Node("quant", "quantize", ["x"], ["q0"], {"perm": [], "form": 0})]
    for i in range(n):
        t[f"q{i + 1}"] = TensorInfo(f"q{i + 1}", "int8", (4,), 0.1)
        nodes.append(Node(node_name(i), "clamp", [f"q{i}"], [f"q{i + 1}"], {"act_min": -100, "act_max": 100}))
    t["y"] = TensorInfo("y", "float32", (4,))
    nodes.append(Node("deq", "dequantize", [f"q{n}"], ["y"], {"perm": []}))
    return IntModel(name, "half_up", ["x"], ["y"], t, nodes, {})


@pytest.fixture(scope="module")
def big():
    return chain(CHAIN)


def console(width: int = 250) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None)


# ---- the arena planner -----------------------------------------------------------------------------------------

def reference_plan_arena(sizes, lifetimes):
    """The original all-pairs first fit (every placed tensor scanned for every tensor), kept as the oracle."""
    placed, offsets = [], {}
    for name in sorted(sizes, key=lambda n: (-sizes[n], lifetimes[n][0], n)):
        first, last = lifetimes[name]
        size = sizes[name]
        conflicts = sorted((o, e) for o, e, f, l in placed if f <= last and first <= l)
        offset = 0
        for o, e in conflicts:
            if offset + size <= o:
                break
            offset = max(offset, -(-e // ALIGN) * ALIGN)
        offsets[name] = offset
        placed.append((offset, offset + size, first, last))
    return offsets, max((e for _, e, _, _ in placed), default=0)


@st.composite
def tensors(draw):
    n = draw(st.integers(0, 40))
    sizes, lifetimes = {}, {}
    for i in range(n):
        name = f"t{draw(st.integers(0, 60))}_{i}"
        sizes[name] = draw(st.sampled_from([0, 1, 4, 15, 16, 17, 33, 64, 100, 1024]) | st.integers(0, 5000))
        first = draw(st.integers(-5, 30))
        lifetimes[name] = (first, first + draw(st.integers(0, 12) | st.integers(0, 40)))
    return sizes, lifetimes


@settings(max_examples=200, deadline=None)
@given(tensors())
def test_plan_arena_matches_the_all_pairs_reference(case):
    sizes, lifetimes = case
    plan = plan_arena(sizes, lifetimes)
    offsets, arena = reference_plan_arena(sizes, lifetimes)
    assert plan.offsets == offsets
    assert plan.arena_bytes == arena
    assert plan.total_bytes == sum(sizes.values())


def test_plan_arena_refuses_an_inverted_lifetime():
    with pytest.raises(ValueError, match=r"^tensor 'b': lifetime \(3, 2\) ends before it starts$"):
        plan_arena({"a": 4, "b": 8}, {"a": (0, 1), "b": (3, 2)})


def test_plan_arena_matches_the_reference_on_wide_lifetimes():
    """Long-lived tensors (graph outputs, skip connections) among short ones, sparse step numbers."""
    rng = np.random.default_rng(1)
    for _ in range(30):
        n = int(rng.integers(50, 300))
        sizes = {f"t{i}": int(rng.choice([16, 64, 256, 4096])) for i in range(n)}
        lifetimes = {}
        for name in sizes:
            first = int(rng.integers(0, 10**6)) if rng.random() < 0.3 else int(rng.integers(0, 100))
            lifetimes[name] = (first, first + int(rng.choice([0, 1, 2, 50, 10**6])))
        offsets, arena = reference_plan_arena(sizes, lifetimes)
        plan = plan_arena(sizes, lifetimes)
        assert plan.offsets == offsets and plan.arena_bytes == arena


def test_arena_plan_of_the_chain(big):
    plan = plan_model_arena(big)
    assert len(plan.offsets) == CHAIN
    assert plan.lifetimes["q1"] == (0, 1) and plan.lifetimes[f"q{CHAIN}"] == (CHAIN - 1, CHAIN)
    # step i reads q(i) and writes q(i+1): two 4-byte tensors alive, 16-byte aligned, alternating offsets
    assert plan.arena_bytes == 20
    assert {plan.offsets[f"q{i}"] for i in range(1, CHAIN + 1)} == {0, 16}
    assert all(plan.offsets[f"q{i}"] != plan.offsets[f"q{i + 1}"] for i in range(1, CHAIN))
    assert plan.total_bytes == 4 * CHAIN


# ---- estimate and its plot ----------------------------------------------------------------------------------------

def test_estimate_of_the_chain(big, tmp_path):
    (e,) = api.estimate(big, "cortex-m4")
    assert len(e.layers) == CHAIN + 2
    assert e.arena_bytes == 20
    assert e.peak_ram_bytes == 20 + 4 + 4  # arena + the quantize output + the dequantize input
    assert e.flash_bytes == 0 and e.fits
    clamps = [layer for layer in e.layers if layer.op == "clamp"]
    assert all(layer.ops == {"int32_elementwise": 4} for layer in clamps)
    assert all(sum(layer.bytes.values()) == 8 for layer in clamps)  # 4 bytes in, 4 bytes out
    assert len({layer.latency_ms for layer in clamps}) == 1
    assert e.latency_ms == pytest.approx(sum(layer.latency_ms for layer in e.layers))

    png, page = tmp_path / "estimate.png", tmp_path / "estimate.html"
    estimate_cmd.plot(big.name, [e], png, page)
    import matplotlib.image

    height, width = matplotlib.image.imread(png).shape[:2]
    assert width == estimate_cmd.PLOT_MAX_WIDTH_IN * estimate_cmd.PLOT_DPI
    assert height == estimate_cmd.PLOT_HEIGHT_IN * estimate_cmd.PLOT_DPI
    assert "cortex-m4" in page.read_text()
    width_in, ticks = estimate_cmd.plot_layout(CHAIN + 2)
    assert width_in == estimate_cmd.PLOT_MAX_WIDTH_IN
    assert len(ticks) <= estimate_cmd.PLOT_MAX_TICK_LABELS and ticks[0] == 0


def test_plot_layout_small_graphs_keep_every_label():
    assert estimate_cmd.plot_layout(10) == (8.0, list(range(10)))
    width, ticks = estimate_cmd.plot_layout(100)
    assert width == 29.0 and ticks == list(range(100))


# ---- inspect ---------------------------------------------------------------------------------------------------------

def test_inspect_report_of_the_chain_is_bounded(big):
    con = console()
    shown = inspect_cmd.print_nodes(big, con, "chain.intonly")
    out = con.file.getvalue()
    assert shown == inspect_cmd.HEAD_ROWS + inspect_cmd.TAIL_ROWS
    more = CHAIN + 2 - shown
    assert f"… {more:,} more nodes (use --all to list every node)" in out
    assert f"{CHAIN + 2} nodes, 0 parameters, 0 MACs per sample, 0 bytes of constants" in out
    lines = out.splitlines()
    assert any(" c0 " in line for line in lines) and any(f" c{CHAIN - 1} " in line for line in lines)
    assert not any(" c5000 " in line for line in lines)
    assert any(" c98 " in line for line in lines) and not any(" c99 " in line for line in lines)  # rows 0..99
    assert len(lines) < 2 * shown + 20


def test_inspect_report_of_the_chain_all_rows(big):
    con = console()
    assert inspect_cmd.print_nodes(big, con, all_rows=True) == CHAIN + 2
    out = con.file.getvalue()
    assert "more nodes" not in out
    rows = [line.split() for line in out.splitlines()]
    clamp_rows = [r for r in rows if len(r) > 2 and r[2] == "clamp"]
    assert len(clamp_rows) == CHAIN
    assert clamp_rows[5000][:5] == ["5001", "c5000", "clamp", "q5000", "q5001"]


def test_print_report_of_the_chain(big):
    con = console()
    inspect_cmd.print_report(big, con, "chain.intonly")
    out = con.file.getvalue()
    assert "overflow bounds" in out and "every activation tensor is 8-bit" in out


def test_bounded_bounds_and_wide_tensors_tables():
    m = chain(500)
    for name in list(m.tensors)[1:-1]:  # every int8 activation becomes a 12-bit int16 tensor
        t = m.tensors[name]
        t.dtype, t.bits = "int16", 12
    con = console()
    shown = inspect_cmd.print_wide_tensors(m, con, head=3, tail=2)
    out = con.file.getvalue()
    assert shown == 5 and "… 496 more tensors (use --all to list every tensor)" in out
    assert "501 tensors wider than 8 bits: 2,004 extra bytes per sample over int8 storage" in out
    assert inspect_cmd.print_wide_tensors(m, console(), all_rows=True) == 501


def test_shown_indices():
    assert inspect_cmd.shown_indices(5, head=2, tail=2) == [0, 1, 2, 3, 4]  # no "… 1 more" row
    assert inspect_cmd.shown_indices(6, head=2, tail=2) == [0, 1, None, 4, 5]
    assert inspect_cmd.shown_indices(6, all_rows=True, head=2, tail=2) == list(range(6))


# ---- bounds: producers looked up once ---------------------------------------------------------------------------

def test_row_sum_bound_with_a_producer_map():
    """A matmul whose left operand comes from a softmax: the map gives the same producer as IntModel.producer."""
    from conftest import single_op_model

    a = TensorInfo("a", "int16", (3, 5), 1 / 32768, 0, 16)
    b = TensorInfo("b", "int8", (5, 4), 0.1, 0, 8)
    y = TensorInfo("y", "int8", (3, 4), 0.1, 0, 8)
    attrs = {"input_zps": [0, 0], "transpose_b": 0, "output_zp": 0, "multiplier": 1 << 30, "shift": 40,
             "act_min": -128, "act_max": 127}
    model = single_op_model("matmul", [a, b], y, attrs)
    producers = producer_map(model)
    assert all(producers[t] is model.producer(t) for t in model.tensors if model.producer(t) is not None)
    node = next(n for n in model.nodes if n.op == "matmul")
    assert row_sum_bound(model, "a", 0, producers) == row_sum_bound(model, "a", 0) == 5 * 32768
    assert node_bounds(model, node, producers) == node_bounds(model, node)
    model.nodes[0].op = "shiftmax"  # pretend the producer of "a" is a softmax: its rows sum below 2^15
    assert row_sum_bound(model, "a", 0, producer_map(model)) == row_sum_bound(model, "a", 0) == 32767
    assert matmul_bound(model, node, producer_map(model)) == 32767 * 128


def test_producer_map_keeps_the_first_writer():
    m = chain(3)
    m.nodes.append(Node("again", "clamp", ["q1"], ["q2"], {"act_min": -1, "act_max": 1}))
    producers = producer_map(m)
    assert producers["q2"].name == "c1" == m.producer("q2").name


# ---- names shown literally --------------------------------------------------------------------------------------

HOSTILE = ["[/x]", "[bold]", "$\\frac{", "$\\frac{$", "[link=https://example.com]x[/link]", ":smile:", "a$b$",
           "esc\x1b[31m"]


def hostile_model() -> IntModel:
    return chain(len(HOSTILE), name="a$b$ [bold]", node_name=lambda i: HOSTILE[i])


def test_inspect_prints_hostile_names_literally():
    con = console(400)
    inspect_cmd.print_report(hostile_model(), con, "[red]file$.intonly")
    out = con.file.getvalue()
    for name in HOSTILE[:-1]:
        assert name in out
    assert "esc\\x1b[31m" in out and "\x1b" not in out
    assert "a$b$ [bold]" in out and "[red]file$.intonly" in out
    assert "😄" not in out


def test_estimate_tables_and_plot_show_hostile_names_literally(tmp_path):
    import dataclasses

    model = hostile_model()
    from intonly.targets.spec import Sourced

    base = load_target("cortex-m4")
    levels = tuple(dataclasses.replace(m, name=f"[/x]{m.name}$", size_bytes=Sourced(16, "test"))
                   if "activations" in m.holds else m for m in base.memory)
    target = dataclasses.replace(base, name="a$b$[/x]:smile:", memory=levels)
    estimates = api.estimate(model, [target])
    assert not estimates[0].fits and "[/x]" in estimates[0].notes[0]
    con = console(400)
    con.print(estimate_cmd.totals_table(model.name, estimates))
    estimate_cmd.print_layers(estimates[0], con)
    out = con.file.getvalue()
    for name in HOSTILE[:-1] + ["a$b$[/x]:smile:", "intonly estimate: a$b$ [bold] (batch 1)", "'[/x]"]:
        assert name in out
    assert "\x1b" not in out and "😄" not in out

    png, page = tmp_path / "estimate.png", tmp_path / "estimate.html"
    estimate_cmd.plot(model.name, estimates, png, page)  # mathtext would raise on "$\frac{"
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[:2] == (990, 880)
    assert "a$b$[/x]:smile:" in page.read_text()


def test_plot_draws_text_without_mathtext(tmp_path, monkeypatch):
    """Every text the plot draws that holds a name has math parsing off; the axes' numbers keep theirs."""
    import matplotlib.text

    seen = []
    original = matplotlib.text.Text.draw

    def draw(self, renderer):
        if self.get_text():
            seen.append((self.get_text(), self.get_parse_math()))
        return original(self, renderer)

    monkeypatch.setattr(matplotlib.text.Text, "draw", draw)
    model = hostile_model()
    estimate_cmd.plot(model.name, api.estimate(model, "cortex-m4"), tmp_path / "p.png", tmp_path / "p.html")
    texts = dict(seen)
    names = [*HOSTILE[:-1], "esc\\x1b[31m", "cortex-m4",
             "a$b$ [bold]: estimated per-layer latency and energy (batch 1)"]
    assert all(texts[name] is False for name in names)  # every name: literal
    # the log axes' own labels are still mathtext (a global parse_math=False would print "$\mathdefault{10^{...}}$")
    assert any(t.startswith("$\\mathdefault{10^") and parse for t, parse in seen)


def test_layer_as_dict_equals_dataclasses_asdict(tmp_path):
    import dataclasses
    import json

    model = chain(20)
    estimates = api.estimate(model, "cortex-m4,nvidia-t4", batch=3)
    for e in estimates:
        for layer in e.layers:
            assert list(layer.as_dict().items()) == list(dataclasses.asdict(layer).items())
    estimate_cmd.write_json(model.name, estimates, tmp_path / "estimate.json")
    text = (tmp_path / "estimate.json").read_text()
    assert text == json.dumps({"model": model.name, "estimates": [
        {**e.as_dict(), "layers": [dataclasses.asdict(layer) for layer in e.layers]} for e in estimates]}, indent=1)
