"""Latency of the five MLPerf Tiny models: intonly's generated C on this host (generic and x86 families) beside the
TFLM interpreter (reference kernels, the ``tflite-micro`` wheel) and LiteRT with XNNPACK (``ai-edge-litert``,
one thread), on the same inputs in the same run.

    python -m bench.tflite_latency [--samples 64] [--rounds 5] [--out bench/results/tflite_latency.json]

Per model and runtime, the median over ``--rounds`` rounds (the runtimes interleaved, so load changes hit them
alike) of the seconds one inference takes:

* **intonly C** (``generic``; ``x86``: AVX2 kernels, ``-mavx2 -mfma``): a profiling build (``-O2``, per-node
  timers, ``toolchain.profile_host``) run over ``--samples`` inputs; the sum of the per-node times per sample (the
  model alone, without the driver's file I/O). Its outputs are first checked equal to hwsim's.
* **TFLM**: ``Interpreter.invoke()`` wall time per sample through the Python binding (its per-call overhead,
  a few microseconds, is included).
* **LiteRT + XNNPACK**: ``Interpreter(num_threads=1).invoke()`` likewise; LiteRT applies the XNNPACK delegate by
  default. Its outputs are not TFLM's bit for bit (XNNPACK requantizes its own way); only its time is used.

Ratios: ``tflm / intonly`` (goal >= 10) and ``litert / intonly`` (goal >= 1.0), for the faster intonly family.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

from intonly.codegen.c.emit import emit_c
from intonly.codegen.c.kernel_lib import family_host_cflags
from intonly.codegen.c.toolchain import build_host, profile_host, run_host
from intonly.hwsim import simulate
from intonly.quantize.tflite import import_tflite

MODELS = ["ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "str_ww_ref_model", "vww_96_int8"]
FAMILIES = ("generic", "x86")


def model_path(name: str) -> Path:
    return Path(str(resources.files("intonly") / "assets" / "mlperf-tiny" / f"{name}.tflite"))


def build_c(model, family: str, root: Path, x: list[np.ndarray]):
    """A profiling build of ``family``; its outputs checked equal to hwsim's on ``x``."""
    cflags = family_host_cflags(family) + " -DINTONLY_PROFILE"
    project = emit_c(model, root / family, family=family, cflags=cflags)
    exe = build_host(project.directory, cflags)
    ports = [(model.tensors[t].dtype, model.tensors[t].shape) for t in project.output_tensors]
    (out,) = run_host(exe, x, ports)
    if not np.array_equal(out, simulate(model, x, quantized=True).int_outputs[0]):
        raise AssertionError(f"{model.name} {family}: the C differs from hwsim")
    return exe, ports


def time_interpreter(interp, set_input, samples: np.ndarray) -> float:
    t0 = time.perf_counter()
    for s in samples:
        set_input(s[None])
        interp.invoke()
    return (time.perf_counter() - t0) / len(samples)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default="bench/results/tflite_latency.json")
    args = ap.parse_args(argv)
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    from tflite_micro import runtime

    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        for name in args.models.split(","):
            path = model_path(name)
            model = import_tflite(path).model
            t = model.tensors[model.nodes[0].outputs[0]]
            rng = np.random.default_rng(0)
            x = rng.integers(*t.qrange(), endpoint=True, size=(args.samples, *t.shape)).astype(t.dtype)
            builds = {f: build_c(model, f, Path(tmp) / name, [x]) for f in FAMILIES}
            tflm = runtime.Interpreter.from_file(str(path), arena_size=1 << 22)
            litert = LiteRT(model_path=str(path), num_threads=1)
            litert.allocate_tensors()
            lit_in = litert.get_input_details()[0]["index"]
            times = {k: [] for k in (*FAMILIES, "tflm", "litert_xnnpack")}
            for _ in range(args.rounds):
                for f, (exe, ports) in builds.items():
                    times[f].append(sum(profile_host(exe, [x], ports, repeats=3).values()))
                times["tflm"].append(time_interpreter(tflm, lambda s: tflm.set_input(s, 0), x))
                times["litert_xnnpack"].append(time_interpreter(litert, lambda s: litert.set_tensor(lit_in, s), x))
            med = {k: statistics.median(v) for k, v in times.items()}
            best = min(FAMILIES, key=lambda f: med[f])
            rows.append({"model": name, "macs": int(sum(model.node_macs(n) for n in model.nodes)),
                         "seconds_per_inference": med, "raw": times, "fastest_family": best,
                         "tflm_over_intonly": med["tflm"] / med[best],
                         "litert_over_intonly": med["litert_xnnpack"] / med[best]})
            print(f"{name:24s} " + "  ".join(f"{k} {1e3 * v:8.3f} ms" for k, v in med.items()) +
                  f"  tflm/intonly {rows[-1]['tflm_over_intonly']:6.1f}x  litert/intonly "
                  f"{rows[-1]['litert_over_intonly']:5.2f}x", flush=True)
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
              "samples": args.samples, "rounds": args.rounds, "load_before": load_before,
              "load_after": os.getloadavg(), "goals": {"tflm_over_intonly": 10.0, "litert_over_intonly": 1.0},
              "models": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
