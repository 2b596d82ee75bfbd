"""quantize.memory.arena_report: how much the static activation arena reuses, against the bound no placement beats."""

import pytest

from intonly.workloads import load_workload
from intonly.quantize.ir import IntModel, Node, TensorInfo
from intonly.quantize.lower import quantize
from intonly.quantize.memory import arena_report, inplace_plan, live_bytes, plan_arena, plan_model_arena


@pytest.fixture(scope="module", params=["digits", "vit"])
def demo(request):
    work = load_workload(request.param)
    return request.param, quantize(work.model, work.calib, work.config, name=work.name)


def test_arena_report_of_the_demos(demo):
    spec, model = demo
    report = arena_report(model)
    plan = plan_model_arena(model)
    assert report["arena_bytes"] == plan.arena_bytes
    assert report["activation_bytes_total"] == sum(plan.sizes.values())
    assert report["ratio"] == pytest.approx(report["arena_bytes"] / report["activation_bytes_total"])
    assert report["ratio"] <= 0.60, (spec, report["ratio"])
    # the largest set alive at one step is a lower bound no placement can beat
    peak = report["peak_live"]
    assert report["peak_live_bytes"] == sum(t["bytes"] for t in peak) == max(live_bytes(plan))
    assert report["arena_bytes"] >= report["peak_live_bytes"]
    step = report["peak_step"]
    assert all(t["lifetime"][0] <= step <= t["lifetime"][1] for t in peak)
    assert {t["name"] for t in peak} == {n for n, (f, l) in plan.lifetimes.items() if f <= step <= l}
    assert report["peak_node"] == model.integer_nodes()[step].name
    # the in-place estimates are bounds of the same kind
    assert report["inplace_arena_bytes"] >= report["inplace_peak_live_bytes"]
    assert report["any_inplace_peak_live_bytes"] <= report["inplace_peak_live_bytes"] <= report["peak_live_bytes"]
    if spec == "digits":  # documented in arena_report: first fit is optimal here, and in-place would buy nothing
        assert report["arena_bytes"] == report["peak_live_bytes"] == report["inplace_arena_bytes"] == 3072
        assert report["any_inplace_peak_live_bytes"] == 2048
        assert report["peak_node"] == "pw.0"


def chain_model() -> IntModel:
    """x -> requantize a -> clamp b -> requantize c -> clamp d (a also read by d's sibling e = requantize a)."""
    shape = (4, 8)
    t = {n: TensorInfo(n, "int8", shape) for n in ("x_q", "a", "b", "c", "e")}
    t["x"] = TensorInfo("x", "float32", shape)
    t["y"] = TensorInfo("y", "float32", shape)
    req = {"multiplier": 1 << 30, "shift": 30, "input_zp": 0, "output_zp": 0, "act_min": -128, "act_max": 127}
    clamp = {"act_min": -100, "act_max": 100}
    nodes = [Node("q", "quantize", ["x"], ["x_q"], {"perm": [], "form": 0}),
             Node("ra", "requantize", ["x_q"], ["a"], dict(req)),   # step 0: x_q is the caller's: no reuse
             Node("cb", "clamp", ["a"], ["b"], dict(clamp)),        # step 1: a is read again at step 3
             Node("rc", "requantize", ["b"], ["c"], dict(req)),     # step 2: b dies -> c reuses it
             Node("re", "clamp", ["a"], ["e"], dict(clamp)),        # step 3: a dies -> e reuses it
             Node("out", "dequantize", ["c"], ["y"], {"perm": []})]
    model = IntModel("chain", "half_up", ["x"], ["y"], t, nodes, {})
    model.validate()
    return model


def test_inplace_plan_merges_elementwise_chains():
    model = chain_model()
    plan = plan_model_arena(model)
    assert plan.arena_bytes == 96  # step 2 reads b (a still alive) and writes c: 3 x 32 B
    report = arena_report(model)
    assert report["inplace_pairs"] == [("c", "b"), ("e", "a")]
    merged = inplace_plan(model)
    assert set(merged.sizes) == {"a", "b"}
    assert merged.lifetimes == {"a": (0, 3), "b": (1, 4)}  # b's buffer holds c, the graph output, to the end
    assert report["inplace_arena_bytes"] == 64 and report["inplace_peak_live_bytes"] == 64
    assert report["peak_live_bytes"] == 96
    assert report["any_inplace_peak_live_bytes"] == 64  # step 1 (clamp a -> b): a is still needed


def test_plan_arena_lower_bound_on_random_lifetimes():
    import random

    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 12)
        sizes = {f"t{i}": rng.choice([1, 16, 17, 64, 100, 1024]) for i in range(n)}
        lifetimes = {}
        for name in sizes:
            first = rng.randint(0, 10)
            lifetimes[name] = (first, first + rng.randint(0, 4))
        plan = plan_arena(sizes, lifetimes)
        assert plan.arena_bytes >= max(live_bytes(plan))
        for a, size_a in sizes.items():  # no two tensors alive together overlap
            for b, size_b in sizes.items():
                if a < b and lifetimes[a][0] <= lifetimes[b][1] and lifetimes[b][0] <= lifetimes[a][1]:
                    oa, ob = plan.offsets[a], plan.offsets[b]
                    assert oa + size_a <= ob or ob + size_b <= oa
