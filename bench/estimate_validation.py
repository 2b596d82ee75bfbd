"""Validate the cost model (hwsim/cost.py) against measurements; every row: estimate, measurement, error.

    python -m bench.estimate_validation          # published rows + host rows -> bench/results/estimate_validation.json
    python -m bench.estimate_validation --fit    # also print the throughput scale each fitted row implies

Two kinds of rows:

* **Published** (bench/published_rows.py): STM32H743 MobileNetV2 rows of the TinyEngine table, Pixel 2 MobileNet
  v1/v2 (and ResNet v1 50) fixed-point CPU and HVX rows, HAWQ-V3 T4 ResNet18/50 W8A8 rows. The networks are the
  zoo's integer lowerings (bench/zoo.py); each row is estimated with its target at the measurement's clock and
  batch. :data:`FITTED` lists the rows whose measurement set a target's constants: one efficiency scale of
  that target's sustained throughputs (the target file's ``source`` strings say "fitted to" the same rows). The
  others are predictions. ``--fit`` recomputes the scale from the current files: 1.00 means the committed file
  is fitted to exactly these rows.
* **Host** (bench/results/host_profile.json, written by bench/host_profile.py): measured per-layer wall time of
  the generated C on this machine. Cycle costs per op class are fitted by non-negative least squares of the
  relative error (:func:`fit_host`). Each demo model (digits CNN, tiny ViT) is predicted with costs fitted to
  the single-layer suite (bench/layer_suite.py) and the *other* demo; the committed ``x86-64-host`` file holds
  the fit to all of them (``--fit`` prints it).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np

from intonly.hwsim.cost import estimate
from intonly.hwsim.work import op_work
from intonly.targets import load_target
from intonly.targets.spec import Sourced, Target

from . import published_rows, zoo

HERE = Path(__file__).resolve().parent

# (target, model, column) of the rows a target's constants were fitted to; one scale per target, fitted to the
# geometric mean of its rows' measured/estimated ratios.
FITTED = {
    ("cortex-m7", "mbv2-w0.3-r64", "TinyEngine @0363956"),
    ("cortex-a73", "mobilenet_v1-1.0-224", "Fixed point (CPU)"),
    ("cortex-a73", "mobilenet_v2-1.0-224", "Fixed point (CPU)"),
    ("hexagon-hvx", "mobilenet_v1-1.0-224", "Fixed point (HVX, NN-API)"),
    ("hexagon-hvx", "mobilenet_v2-1.0-224", "Fixed point (HVX, NN-API)"),
    ("nvidia-t4", "resnet18-224", "HAWQ-V3 W8A8 (TVM)"),
}
# Library columns the cortex-m7 constants do not describe (they model a TinyEngine / X-CUBE-AI class library):
# reported with their error, not counted in the acceptance.
OTHER_LIBRARY = {"TF-Lite Micro @713b6ed", "CMSIS-NN @011bf32"}
HOST_TARGET = "x86-64-host"
HOST_DEMOS = ("digits_cnn", "vit_digits")  # the demo models' names (intonly.workloads "digits", "vit")


def scaled(target: Target, k: float) -> Target:
    """``target`` with every sustained throughput multiplied by ``k``."""
    return replace(target, throughput={c: Sourced(s.value * k, s.source) for c, s in target.throughput.items()})


def fit_scale(cases: list[tuple], target: Target) -> float:
    """The throughput scale k with Σ log(estimate_k / measured) = 0 over ``cases`` = [(model, batch, ms)]
    (bisection on log k: the estimate falls monotonically as k grows)."""
    def misfit(log_k):
        t = scaled(target, math.exp(log_k))
        return sum(math.log(estimate(m, t, b).latency_ms / ms) for m, b, ms in cases)
    lo, hi = -12.0, 12.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if misfit(mid) > 0 else (lo, mid)
    return math.exp((lo + hi) / 2)


def published(fit: bool) -> list[dict]:
    rows, fit_cases = [], {}
    for r in published_rows.ROWS:
        model = zoo.int_model(r.exact_model or r.model, verbose=False)
        target = load_target(r.target_at)
        e = estimate(model, target, r.batch)
        key = (r.target, r.model, r.column)
        role = "fitted" if key in FITTED else "other library" if r.column in OTHER_LIBRARY else "predicted"
        if role == "fitted":
            fit_cases.setdefault(r.target, (target, []))[1].append((model, r.batch, r.measured_ms))
        rows.append({"target": r.target_at, "model": r.exact_model or r.model, "column": r.column, "batch": r.batch,
                     "measured_ms": r.measured_ms, "estimated_ms": round(e.latency_ms, 3),
                     "error": round(e.latency_ms / r.measured_ms - 1, 4), "role": role,
                     "measured_sram_kb": r.measured_sram_kb, "estimated_peak_ram_kb": round(e.peak_ram_bytes / 1024, 1),
                     "fits": e.fits})
    if fit:
        for name, (target, cases) in sorted(fit_cases.items()):
            print(f"{name}: throughput scale implied by its fitted rows = {fit_scale(cases, target):.4f}")
    return rows


# ---- host ----------------------------------------------------------------------------------------------------

def _host_models() -> dict:
    """name -> IntModel of every model host_profile.json measured, rebuilt deterministically."""
    from . import layer_suite
    from intonly import api
    from intonly.workloads import load_workload
    models = {case.name: case.int_model for case in layer_suite.suite()}
    for demo in ("digits", "vit"):
        work = load_workload(demo)
        models[work.name] = api.quantize(work.model, work.calib, work.config, name=work.name)
    return models


def _measured_layers(profile: dict, name: str) -> dict[str, float]:
    return {row["node"]: row["seconds_per_sample"] for row in profile["models"][name]["layers"]}


# Host fit unknowns: cycles per op of these classes plus a fixed cost per layer. Shifts share the ALU with the
# elementwise class and one exp-class polynomial is taken as 10 elementwise ops (the x86-64-host file says so),
# so the fit has six unknowns, all determined by the suite.
HOST_FEATURES = ("int8_conv", "int8_depthwise", "int8_dense", "int32_elementwise", "divide", "layer_overhead")


def _host_features(work) -> list[float]:
    return [work.get("int8_conv", 0), work.get("int8_depthwise", 0), work.get("int8_dense", 0),
            work.get("int32_elementwise", 0) + work.get("shift", 0) + 10 * work.get("exp", 0), work.get("divide", 0), 1.0]


def _host_rows(profile: dict, models: dict, names, clock_hz: float):
    a, cycles, nodes = [], [], []
    for name in names:
        model, measured = models[name], _measured_layers(profile, name)
        for node in model.integer_nodes():
            a.append(_host_features(op_work(model, node)))
            cycles.append(measured[node.name] * clock_hz)
            nodes.append((name, node))
    return np.array(a, float), np.array(cycles), nodes


def fit_host(profile: dict, models: dict, names, clock_hz: float) -> dict[str, float]:
    """Cycles per unit of each of :data:`HOST_FEATURES` that best explain the measured layers of ``names``:
    non-negative least squares of the *relative* error (each row divided by its measurement, so a 100-cycle
    reshape counts as much as a 100-million-cycle convolution)."""
    from scipy.optimize import nnls
    a, cycles, _ = _host_rows(profile, models, names, clock_hz)
    a = a / cycles[:, None]
    scale = a.max(axis=0)
    scale[scale == 0] = 1
    coef, _ = nnls(a / scale, np.ones(len(cycles)))
    return dict(zip(HOST_FEATURES, coef / scale))


def _host_estimate(profile: dict, models: dict, name: str, coef: dict, clock_hz: float) -> dict:
    """Per-layer estimate of ``name`` with cycle costs ``coef`` against its measurement."""
    a, cycles, nodes = _host_rows(profile, models, [name], clock_hz)
    est = a @ np.array([coef[f] for f in HOST_FEATURES])
    layers = [{"node": node.name, "op": node.op, "measured_ms": 1e3 * c / clock_hz, "estimated_ms": 1e3 * e / clock_hz,
               "error": e / c - 1} for (_, node), c, e in zip(nodes, cycles, est)]
    return {"layers": layers, "median_abs_layer_error": statistics.median(abs(r["error"]) for r in layers),
            "measured_ms": 1e3 * cycles.sum() / clock_hz, "estimated_ms": 1e3 * est.sum() / clock_hz,
            "model_error": est.sum() / cycles.sum() - 1}


def host(fit: bool) -> dict | None:
    """Host rows. Each demo model is *predicted* with constants fitted to the layer suite plus the other demo
    (leave one model out); the committed x86-64-host file is fitted to all of them, and its own estimate of each
    demo (hwsim/cost.py, memory term included) is reported beside."""
    path = HERE / "results" / "host_profile.json"
    if not path.exists():
        print(f"no {path}: run python -m bench.host_profile first; host rows skipped")
        return None
    profile = json.loads(path.read_text())
    target = load_target(HOST_TARGET)
    clock_hz = target.clock_mhz.value * 1e6
    models = _host_models()
    suite = [n for n in models if n not in HOST_DEMOS and n in profile["models"]]
    if fit:
        coef = fit_host(profile, models, suite + list(HOST_DEMOS), clock_hz)
        print("x86-64-host, fitted to the layer suite and both demos:")
        for f, c in coef.items():
            print(f"  {f} = {c:.1f} cycles" if f == "layer_overhead" else f"  {f} = {1 / c:.4g} ops/cycle")
    result = {}
    for name in HOST_DEMOS:
        others = suite + [d for d in HOST_DEMOS if d != name]
        predicted = _host_estimate(profile, models, name, fit_host(profile, models, others, clock_hz), clock_hz)
        measured = _measured_layers(profile, name)
        committed = [(layer.latency_ms, measured[layer.node] * 1e3) for layer in estimate(models[name], target).layers
                     if layer.node in measured]
        result[name] = {"predicted": predicted, "fitted_with": others,
                        "committed_target_ms": sum(e for e, _ in committed),
                        "committed_median_abs_layer_error": statistics.median(abs(e / m - 1) for e, m in committed),
                        "unprofiled_measured_ms": profile["models"][name]["unprofiled_seconds_per_sample"] * 1e3}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", action="store_true", help="print the constants the fitted rows imply")
    parser.add_argument("--out", default=str(HERE / "results" / "estimate_validation.json"))
    args = parser.parse_args()
    rows = published(args.fit)
    print(f"{'target':24s} {'model':22s} {'column':28s} {'measured':>9s} {'estimate':>9s} {'error':>7s}  role")
    for r in rows:
        print(f"{r['target']:24s} {r['model']:22s} {r['column'][:28]:28s} {r['measured_ms']:9.2f} "
              f"{r['estimated_ms']:9.2f} {100 * r['error']:+6.1f}%  {r['role']}")
    predicted = [abs(r["error"]) for r in rows if r["role"] == "predicted"]
    print(f"predicted rows: {len(predicted)}, max |error| {100 * max(predicted):.1f}%")
    host_rows = host(args.fit)
    for name, h in (host_rows or {}).items():
        p = h["predicted"]
        print(f"host {name} (predicted, leave-one-model-out): median |per-layer error| "
              f"{100 * p['median_abs_layer_error']:.1f}% over {len(p['layers'])} layers; model {p['measured_ms']:.4f} ms "
              f"measured (profiled sum; {h['unprofiled_measured_ms']:.4f} ms unprofiled), {p['estimated_ms']:.4f} ms "
              f"estimated ({100 * p['model_error']:+.1f}%); committed x86-64-host (intonly estimate): "
              f"{h['committed_target_ms']:.4f} ms, median |per-layer error| "
              f"{100 * h['committed_median_abs_layer_error']:.1f}%")
    Path(args.out).write_text(json.dumps({"published": rows, "host": host_rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
