"""Throughput of the bit-accurate integer simulator (hwsim) beside PyTorch FP32 eager, same inputs, same run.

    python -m bench.sim_throughput [--out bench/results/sim_throughput.json] [--quick]

Models:

* ``digits_cnn``  -- the bundled 8x8 digits CNN (``intonly.demos.digits``), batch = the whole test split.
  Also times the scalar reference kernels (``simulate(..., fast=False)``) once or twice.
* ``mobilenetv2_224`` -- MobileNetV2 (width 1.0, torchvision layout, random weights with realistic
  BatchNorm statistics, see ``bench/mobilenetv2.py``) on random 224x224 inputs.
* ``efficientnet_lite0`` -- EfficientNet-Lite0 with its ImageNet weights as its packages ship it, in the
  ``intonly run --model efficientnet-lite0`` config (``intonly.workloads.efficientnet_workload``: scikit-image photo
  crops, TF-Lite preprocessing); goal 1.0x (the real-models issue).
* ``deit_tiny_224`` -- DeiT-Tiny geometry (224x224, patch 16, 197 tokens, D=192, 12 blocks, 3 heads;
  ``intonly.models.vit.deit_tiny`` with synthetic weights) lowered with ``QuantConfig.transformer()``.

Both sides run the same float batch: the simulator end to end (input quantize -> integer graph ->
dequantized logits), PyTorch in eval mode under ``torch.no_grad()`` with its default thread count.
One untimed warm-up call each (Numba loads or compiles its kernels then), then ``reps`` timed calls
interleaved sim/torch so background load hits both alike; the reported time is the median (the
fastest call is kept too, as ``*_best``). ``goal_ratio`` is the target for sim images/s divided by FP32
images/s. ``--threads N`` pins both sides (torch intra-op, Numba, BLAS) to N threads; the default
leaves every library at its own default. The 1/5/15-minute load averages are recorded before and after:
on a shared machine, parallel kernels (OpenMP barriers on both sides) slow down by large factors
when other processes compete for the cores, so compare runs only at similar load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

GOAL_RATIO = 0.5


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def set_threads(n: int) -> None:
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    numba.set_num_threads(n)
    threadpool_limits(n, user_api="blas")


ENV_KEYS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER",
            "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def machine_info() -> dict:
    import numba
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "cpu": cpu, "cpu_count": os.cpu_count(), "cpus_usable": affinity, "platform": platform.platform(),
        "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "numba_threads": numba.get_num_threads(), "numba_threading_layer": _numba_layer(),
        "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ},
    }


def _numba_layer() -> str:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return "unset"


def top1(logits: np.ndarray) -> np.ndarray:
    return np.asarray(logits).reshape(len(logits), -1).argmax(axis=1)


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    ref, test = np.asarray(ref, np.float64), np.asarray(test, np.float64)
    noise = float(np.sum((ref - test) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(float(np.sum(ref ** 2)) / noise)


def bench_pair(int_model, model, x: np.ndarray, reps: int, goal: float = GOAL_RATIO) -> dict:
    """Warm up and time ``simulate(int_model, x)`` and ``model(x)`` alternately; medians and raw times."""
    import torch

    from intonly.hwsim import simulate

    xt = torch.from_numpy(np.ascontiguousarray(x))
    t0 = time.perf_counter()
    sim_out = simulate(int_model, x).outputs[0]
    warm_sim = time.perf_counter() - t0
    with torch.no_grad():
        t0 = time.perf_counter()
        fp_out = model(xt).numpy()
        warm_fp = time.perf_counter() - t0
        sim_t, fp_t = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            simulate(int_model, x)
            sim_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            model(xt)
            fp_t.append(time.perf_counter() - t0)
    n = len(x)
    sim_s, fp_s = statistics.median(sim_t), statistics.median(fp_t)
    ratio = (n / sim_s) / (n / fp_s)
    sim_best, fp_best = min(sim_t), min(fp_t)
    return {
        "batch": n, "reps": reps,
        "sim_s_per_batch_median": sim_s, "torch_fp32_s_per_batch_median": fp_s,
        "sim_images_per_s": n / sim_s, "torch_fp32_images_per_s": n / fp_s,
        "ratio_sim_over_fp32": ratio, "goal_ratio": goal, "meets_goal": bool(ratio >= goal),
        "sim_images_per_s_best": n / sim_best, "torch_fp32_images_per_s_best": n / fp_best,
        "ratio_sim_over_fp32_best": fp_best / sim_best,
        "int_vs_fp_top1_agreement": float(np.mean(top1(sim_out) == top1(fp_out))),
        "int_vs_fp_logit_sqnr_db": sqnr_db(fp_out, sim_out),
        "sim_warmup_s": warm_sim, "torch_warmup_s": warm_fp,
        "sim_s_all": sim_t, "torch_fp32_s_all": fp_t,
        "_sim_out": sim_out, "_fp_out": fp_out,
    }


def run_digits(reps: int, ref_reps: int) -> dict:
    from intonly.hwsim import simulate
    from intonly.demos import digits
    from intonly.quantize.config import QuantConfig
    from intonly.quantize.lower import quantize

    model = digits.load_model()
    x_tr, _, x_te, y_te = digits.load_split()
    t0 = time.perf_counter()
    int_model = quantize(model, x_tr, QuantConfig())
    quant_s = time.perf_counter() - t0
    res = bench_pair(int_model, model, x_te, reps)
    sim_out, fp_out = res.pop("_sim_out"), res.pop("_fp_out")
    res.update(model="digits_cnn", input_shape=list(x_te.shape[1:]), quantize_s=quant_s,
               calib_images=len(x_tr), sim_top1_accuracy=float(np.mean(top1(sim_out) == y_te)),
               torch_fp32_top1_accuracy=float(np.mean(top1(fp_out) == y_te)))
    if ref_reps:
        simulate(int_model, x_te[:8], fast=False)  # load the reference kernels
        ref_t = []
        for _ in range(ref_reps):
            t0 = time.perf_counter()
            ref = simulate(int_model, x_te, fast=False, keep_values=True)
            ref_t.append(time.perf_counter() - t0)
        fast = simulate(int_model, x_te, keep_values=True)
        ref_s = statistics.median(ref_t)
        same = fast.values.keys() == ref.values.keys() and all(
            np.array_equal(fast.values[k], ref.values[k]) for k in ref.values)
        same = same and [(t.requants, t.divides, t.clamp_events) for t in fast.trace] == \
            [(t.requants, t.divides, t.clamp_events) for t in ref.trace]
        res.update(sim_reference_images_per_s=len(x_te) / ref_s, sim_reference_reps=ref_reps,
                   fast_equals_reference=bool(same))
    return res


def run_mobilenetv2(reps: int, batch: int, calib: int) -> dict:
    from . import mobilenetv2
    from intonly.quantize.config import QuantConfig
    from intonly.quantize.lower import quantize

    t0 = time.perf_counter()
    model = mobilenetv2.build(seed=0)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    calib_x = rng.standard_normal((calib, 3, 224, 224)).astype(np.float32)
    x = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
    t0 = time.perf_counter()
    int_model = quantize(model, calib_x, QuantConfig())
    quant_s = time.perf_counter() - t0
    res = bench_pair(int_model, model, x, reps)
    res.pop("_sim_out"), res.pop("_fp_out")
    res.update(model="mobilenetv2_224", input_shape=[3, 224, 224], build_s=build_s, quantize_s=quant_s,
               calib_images=calib, params=sum(p.numel() for p in model.parameters()),
               note="random weights and random N(0,1) inputs: top-1 agreement over 1000 near-tied "
                    "classes is a weak signal; logit SQNR is the better fidelity number")
    return res


def run_efficientnet(reps: int, batch: int, calib: int) -> dict:
    from intonly.quantize.lower import quantize
    from intonly.workloads import efficientnet_workload

    wl = efficientnet_workload(n_eval=batch, n_calib=calib)
    t0 = time.perf_counter()
    int_model = quantize(wl.model, wl.calib, wl.config)
    quant_s = time.perf_counter() - t0
    res = bench_pair(int_model, wl.model, wl.x[0], reps, goal=1.0)
    res.pop("_sim_out"), res.pop("_fp_out")
    res.update(model="efficientnet_lite0", input_shape=[3, 224, 224], quantize_s=quant_s, calib_images=calib,
               params=sum(p.numel() for p in wl.model.parameters()), config=repr(wl.config),
               note="pretrained ImageNet weights; photo crops from scikit-image (no labels: agreement with FP32)")
    return res


def run_deit_tiny(reps: int, batch: int, calib: int) -> dict:
    from intonly.models.vit import deit_tiny, init_synthetic
    from intonly.quantize.config import QuantConfig
    from intonly.quantize.lower import quantize

    model = init_synthetic(deit_tiny(), seed=0).eval()
    rng = np.random.default_rng(0)
    calib_x = rng.standard_normal((calib, 3, 224, 224)).astype(np.float32)
    x = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
    t0 = time.perf_counter()
    int_model = quantize(model, calib_x, QuantConfig.transformer())
    quant_s = time.perf_counter() - t0
    res = bench_pair(int_model, model, x, reps)
    res.pop("_sim_out"), res.pop("_fp_out")
    res.update(model="deit_tiny_224", input_shape=[3, 224, 224], quantize_s=quant_s, calib_images=calib,
               params=sum(p.numel() for p in model.parameters()), tokens=197,
               config="QuantConfig.transformer(): Shiftmax, ShiftGELU, integer LayerNorm, int16 residual, auto bits",
               note="synthetic weights (intonly.models.vit.init_synthetic) and random N(0,1) inputs")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE / "results" / "sim_throughput.json"))
    p.add_argument("--quick", action="store_true", help="fewer repetitions (well under a minute when warm)")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per side (default 7, quick 3)")
    p.add_argument("--mnv2-batch", type=int, default=8)
    p.add_argument("--deit-batch", type=int, default=8)
    p.add_argument("--effnet-batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=None,
                   help="pin torch, Numba and BLAS to this many threads (default: library defaults)")
    p.add_argument("--omp-passive", action="store_true",
                   help="set OMP_WAIT_POLICY=PASSIVE (both torch and Numba's omp layer use libgomp): idle "
                        "OpenMP threads sleep instead of spinning, which matters a lot on a loaded machine")
    p.add_argument("--models", default="digits,mobilenetv2,efficientnet,deit_tiny",
                   help="comma list of: digits, mobilenetv2, efficientnet, deit_tiny")
    args = p.parse_args(argv)
    reps = args.reps or (3 if args.quick else 7)
    if args.omp_passive:
        if "torch" in sys.modules:
            raise SystemExit("--omp-passive must take effect before torch is imported")
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    wanted = {m.strip() for m in args.models.split(",") if m.strip()}

    if args.threads:
        set_threads(args.threads)
    load_before = loadavg()
    t_start = time.perf_counter()
    models = []
    if "digits" in wanted:
        models.append(run_digits(reps=reps, ref_reps=1 if args.quick else 2))
    if "mobilenetv2" in wanted:
        models.append(run_mobilenetv2(reps, args.mnv2_batch, calib=16))
    if "efficientnet" in wanted:
        models.append(run_efficientnet(reps, args.effnet_batch, calib=32))
    if "deit_tiny" in wanted:
        models.append(run_deit_tiny(reps, args.deit_batch, calib=16))
    report = {"machine": machine_info(), "quick": args.quick, "threads_pinned": args.threads,
              "loadavg_before": load_before, "loadavg_after": loadavg(),
              "wall_s": time.perf_counter() - t_start, "models": models}

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    m = report["machine"]
    print(f"{m['cpu']} | {m['cpus_usable']} cpus | torch {m['torch']} ({m['torch_threads']} thr) | "
          f"numba {m['numba']} ({m['numba_threads']} thr, {m['numba_threading_layer']})")
    hdr = f"{'model':17s} {'batch':>5s} {'sim img/s':>10s} {'fp32 img/s':>11s} {'ratio':>6s} {'goal':>5s} " \
          f"{'meets':>5s} {'top1 agr':>8s} {'SQNR dB':>7s}"
    print(hdr)
    print("-" * len(hdr))
    for r in models:
        print(f"{r['model']:17s} {r['batch']:5d} {r['sim_images_per_s']:10.1f} {r['torch_fp32_images_per_s']:11.1f} "
              f"{r['ratio_sim_over_fp32']:6.2f} {r['goal_ratio']:5.2f} {str(r['meets_goal']):>5s} "
              f"{r['int_vs_fp_top1_agreement']:8.3f} {r['int_vs_fp_logit_sqnr_db']:7.1f}")
        if "sim_reference_images_per_s" in r:
            print(f"{'':17s} reference kernels (fast=False): {r['sim_reference_images_per_s']:.1f} img/s, "
                  f"fast == reference: {r['fast_equals_reference']}")
    print(f"load average (1/5/15 min) before {report['loadavg_before']}, after {report['loadavg_after']}; "
          f"ratio from fastest calls: " + ", ".join(f"{r['model']} {r['ratio_sim_over_fp32_best']:.2f}"
                                                     for r in models))
    print(f"wrote {out} ({report['wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
