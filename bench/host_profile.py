"""Per-layer wall time of the generated C on this host, for validating a latency cost model.

    python -m bench.host_profile [--out bench/results/host_profile.json] [--min-seconds 0.3] [--only A,B]

Models: every case of ``bench/layer_suite.py`` (single layers at ResNet / MobileNet / DeiT-Tiny shapes) and the
demo models ``digits`` and ``vit`` (``intonly.workloads.load_workload``, quantized as ``intonly run`` does:
``api.quantize(work.model, work.calib, work.config)``; inputs: the integer inputs hwsim makes of the first
:data:`DEMO_SAMPLES` test samples).

For each model two C projects are emitted and built with host gcc (builds run in parallel, before any timing),
and their outputs are checked: profiled build == normal build == hwsim (``bit_exact``).

* **profiled** (``PROFILE_CFLAGS`` = ``HOST_CFLAGS -DINTONLY_PROFILE``): ``model.c`` reads
  ``clock_gettime(CLOCK_MONOTONIC)`` once before the first node and once after each integer node's last kernel
  call and adds the difference to that node's counter (so a node's time includes one clock read). The driver
  runs the whole input file ``REPEATS`` times (``toolchain.profile_host``). ``layers[].seconds_per_sample`` =
  the node's ns_total / (samples x repeats), the median over :data:`ROUNDS` rounds;
  ``total_seconds_per_sample`` = their sum (it leaves out the driver's fread/fwrite and the final output
  memcpy).
* **unprofiled** (``HOST_CFLAGS``, the normal build): the wall clock of ``toolchain.run_host`` (process start,
  Python packing and writing the input file, the run, reading the outputs back) on 1 sample and on N samples
  (the case's samples tiled): ``unprofiled_seconds_per_sample`` = (T_N - T_1) / (N - 1), so process
  start-up and other fixed costs cancel. What remains per sample besides the model is file I/O
  (``io_bytes_per_sample`` in and out), which run_host's Python side makes noticeable for big tensors
  (~0.4 ms of ~3.7 ms for GELU on 197x768 here). So the driver process alone is timed the same way on the
  input files run_host wrote (``subprocess.run`` wall clock): ``unprofiled_process_seconds_per_sample`` (it
  still includes the driver's fread/fwrite of one sample). ``profiled_wall_seconds_per_sample`` and
  ``profiled_process_seconds_per_sample`` are the same two measurements of the profiled build (REPEATS 1).
  ``timer_overhead`` = profiled_process / unprofiled_process - 1 is what the timers cost (within noise), and
  ``profiled_sum_vs_unprofiled`` = total_seconds_per_sample / unprofiled_process.

Files: the projects live in a temporary folder on tmpfs (``/dev/shm``) where there is one, and every timed run
first has its output files removed (untimed): on ext4, re-truncating a 10 MB output file alone cost 10-20 ms.

Sample counts: a pilot profile run (REPEATS raised 4x at a time until it measures >= :data:`PILOT_SECONDS`,
so that once-per-process costs such as first-touch page faults are amortised) estimates t, the time per
sample. REPEATS and N are then chosen so that each of the :data:`ROUNDS` rounds measures >= ``--min-seconds``
/ ROUNDS of C time per method (profile; process on N samples), i.e. >= ``--min-seconds`` (0.3 s) per model
and method in all (aiming :data:`MARGIN` x higher; where load made the pilot's estimate too low, more rounds
follow, up to :data:`MAX_ROUNDS`; ``measured_seconds`` is what the profile rounds measured). The rounds
interleave the methods so that changes in machine load hit them alike, and every reported time is the median
over the rounds (per node for the profile; T_1 and T_N for the wall clocks; run_host is timed in every other
round only, to keep the whole script within ~2-2.5 minutes on 2 cores); the raw times are kept too. The C
program is single-threaded; runs are sequential. Load averages before and after are recorded: on a shared
machine, compare runs only at similar load (noise between rounds here: a few percent, up to ~10 %).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from intonly.codegen.c.emit import emit_c
from intonly.codegen.c.toolchain import (HOST_CFLAGS, PROFILE_CFLAGS, build_host, find_compiler,
                                         profile_host, run_host)
from intonly.hwsim.executor import simulate

from .layer_suite import LayerCase, suite

HERE = Path(__file__).resolve().parent

DEMOS = ("digits", "vit")
DEMO_SAMPLES = 64
ROUNDS = 5
MAX_ROUNDS = 10
PILOT_SECONDS = 0.02
MARGIN = 1.1  # aim above --min-seconds: the pilot's estimate of the time per sample is noisy


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "logical_cpus": os.cpu_count()}
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        text = Path("/proc/cpuinfo").read_text()
        blocks = [dict(line.split(":", 1) for line in b.splitlines() if ":" in line) for b in text.split("\n\n")]
        blocks = [{k.strip(): v.strip() for k, v in b.items()} for b in blocks if b]
        models = {b.get("model name") for b in blocks if "model name" in b}
        info["cpu_model"] = ", ".join(sorted(m for m in models if m)) or None
        cores = {(b.get("physical id"), b.get("core id")) for b in blocks if "core id" in b}
        info["physical_cores"] = len(cores) or None
        mhz = [float(b["cpu MHz"]) for b in blocks if "cpu MHz" in b]
        info["cpu_mhz_at_start"] = round(max(mhz), 1) if mhz else None
        flags = next((b.get("flags", "") for b in blocks if "flags" in b), "").split()
        info["simd"] = [f for f in ("sse4_2", "avx", "avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in flags]
    except OSError:
        info["cpu_model"] = platform.processor() or None
    try:
        cc = find_compiler()
        info["compiler"] = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                          check=True).stdout.splitlines()[0]
    except Exception as exc:  # noqa: BLE001 -- recorded, not fatal here (the build reports it)
        info["compiler"] = f"unknown ({exc})"
    return info


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def demo_case(spec: str) -> LayerCase:
    from intonly import api
    from intonly.workloads import load_workload

    work = load_workload(spec)
    int_model = api.quantize(work.model, work.calib, work.config, name=work.name)
    sim = simulate(int_model, [a[:DEMO_SAMPLES] for a in work.x])
    return LayerCase(work.name, int_model, sim.int_inputs)


def output_ports(case: LayerCase, project) -> list[tuple[str, tuple]]:
    return [(case.int_model.tensors[t].dtype, case.int_model.tensors[t].shape) for t in project.output_tensors]


def tiled(x: list[np.ndarray], n: int) -> list[np.ndarray]:
    """``n`` samples: the case's samples repeated in order."""
    return [np.ascontiguousarray(np.resize(a, (n, *a.shape[1:]))) for a in x]


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


class WallClock:
    """The per-sample wall time of one build, from runs on 1 and on ``n`` samples (module docstring)."""

    def __init__(self, exe: Path, x: list[np.ndarray], ports, n: int):
        self.exe, self.ports, self.n = Path(exe).resolve(), ports, n
        self.inputs = {1: tiled(x, 1), n: tiled(x, n)}
        self.files = {}
        self.host = {1: [], n: []}
        self.process = {1: [], n: []}
        for k in (1, n):  # run_host writes input.bin next to exe: keep a copy of each for the process timings
            run_host(self.exe, self.inputs[k], ports)
            self.files[k] = self.exe.parent / f"input_{k}.bin"
            (self.exe.parent / "input.bin").replace(self.files[k])

    def fresh(self, *names: str) -> None:
        """Remove files a run is about to (re)create: truncating a big file costs time that grows with it."""
        for name in names:
            (self.exe.parent / name).unlink(missing_ok=True)

    def time_run_host(self) -> None:
        for k in (1, self.n):
            self.fresh("input.bin", "output.bin", "profile.csv")
            self.host[k].append(timed(run_host, self.exe, self.inputs[k], self.ports))

    def time_process(self) -> None:
        for k in (1, self.n):
            self.fresh("output_wall.bin", "profile.csv")
            cmd = [str(self.exe), str(self.files[k]), str(self.exe.parent / "output_wall.bin")]
            self.process[k].append(timed(subprocess.run, cmd, capture_output=True, check=True))

    def cleanup(self) -> None:
        self.fresh("input.bin", "output.bin", "output_wall.bin", *(f.name for f in self.files.values()))

    def per_sample(self, times: dict) -> float:
        """(median T_N - median T_1) / (N - 1)."""
        return float(np.median(times[self.n]) - np.median(times[1])) / (self.n - 1)

    def report(self) -> dict:
        return {"n_samples": self.n, "run_host_s": {str(k): v for k, v in self.host.items()},
                "process_s": {str(k): v for k, v in self.process.items()},
                "seconds_per_sample": self.per_sample(self.host),
                "process_seconds_per_sample": self.per_sample(self.process)}


def measure(case: LayerCase, projects: dict, min_seconds: float) -> dict:
    """Profile ``case`` and time both builds, in ROUNDS interleaved rounds (so load changes hit all alike)."""
    model, x = case.int_model, case.x
    samples = len(x[0])
    prof_exe, plain_exe = projects["profiled"]["exe"], projects["unprofiled"]["exe"]
    ports = output_ports(case, projects["profiled"]["project"])
    expected = simulate(model, x, quantized=True).int_outputs

    plain_out = run_host(plain_exe, x, ports)
    prof_out = run_host(prof_exe, x, ports)
    bit_exact = all(np.array_equal(a, b) and np.array_equal(a, c) for a, b, c in zip(plain_out, prof_out, expected))

    # time per sample: a run long enough (>= PILOT_SECONDS) that the process's first-touch page faults of its
    # arena and buffers (paid once per process, in the first sample) do not inflate it
    pilot_repeats = 1
    while True:
        pilot = sum(profile_host(prof_exe, x, ports, repeats=pilot_repeats).values())
        if pilot * samples * pilot_repeats >= PILOT_SECONDS or pilot_repeats >= 4096:
            break
        pilot_repeats *= 4
    share = MARGIN * min_seconds / ROUNDS  # each round measures >= this much C time per method
    repeats = max(1, math.ceil(share / max(pilot * samples, 1e-9)))
    n_wall = max(2, math.ceil(share / max(pilot, 1e-9)) + 1)
    clocks = {"unprofiled": WallClock(plain_exe, x, ports, n_wall), "profiled": WallClock(prof_exe, x, ports, n_wall)}
    rounds = []

    def measured() -> float:  # seconds of C time measured so far, the smaller of the profile's and the wall's
        profiled = sum(sum(r.values()) for r in rounds) * samples * repeats
        walls = min(sum(c.process[c.n]) - sum(c.process[1]) for c in clocks.values())
        return min(profiled, walls)

    # ROUNDS rounds, and more (up to MAX_ROUNDS) while a noisy pilot left less than min_seconds measured
    while len(rounds) < ROUNDS or (measured() < min_seconds and len(rounds) < MAX_ROUNDS):
        rounds.append(profile_host(prof_exe, x, ports, repeats=repeats))
        for clock in clocks.values():
            clock.time_process()
            if len(rounds) % 2 == 1:  # run_host's timings in rounds 1, 3, 5, ... only (time budget)
                clock.time_run_host()
    for clock in clocks.values():
        clock.cleanup()
    prof = {name: float(np.median([r[name] for r in rounds])) for name in rounds[0]}
    total = sum(prof.values())
    plain, profiled = clocks["unprofiled"].report(), clocks["profiled"].report()

    ops = {n.name: n for n in model.integer_nodes()}
    return {
        "samples": samples, "repeats_per_round": repeats, "rounds": len(rounds),
        "measured_seconds": sum(sum(r.values()) for r in rounds) * samples * repeats,
        "layers": [{"node": name, "op": ops[name].op, "macs": int(model.node_macs(ops[name])),
                    "seconds_per_sample": s} for name, s in prof.items()],
        "total_seconds_per_sample": total,
        "round_totals_seconds_per_sample": [sum(r.values()) for r in rounds],
        "unprofiled_seconds_per_sample": plain["seconds_per_sample"],
        "unprofiled_process_seconds_per_sample": plain["process_seconds_per_sample"],
        "profiled_wall_seconds_per_sample": profiled["seconds_per_sample"],
        "profiled_process_seconds_per_sample": profiled["process_seconds_per_sample"],
        "timer_overhead": profiled["process_seconds_per_sample"] / plain["process_seconds_per_sample"] - 1,
        "profiled_sum_vs_unprofiled": total / plain["process_seconds_per_sample"],
        "unprofiled_runs": plain, "profiled_runs": profiled,
        "io_bytes_per_sample": int(sum(a[0].nbytes for a in x) + sum(np.dtype(d).itemsize * math.prod(s)
                                                                     for d, s in ports)),
        "macs_per_sample": int(sum(model.node_macs(n) for n in ops.values())),
        "bit_exact": bool(bit_exact),
    }


def build_all(cases: list[LayerCase], work: Path, jobs: int) -> dict[str, dict]:
    """Emit both projects of every case, then compile them all, ``jobs`` gcc processes at a time."""
    projects = {}
    for case in cases:
        for kind, cflags in (("profiled", PROFILE_CFLAGS), ("unprofiled", HOST_CFLAGS)):
            d = work / case.name / kind
            projects.setdefault(case.name, {})[kind] = {"dir": d, "cflags": cflags,
                                                        "project": emit_c(case.int_model, d, cflags=cflags)}
    todo = [p for per in projects.values() for p in per.values()]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for p, exe in zip(todo, pool.map(lambda p: build_host(p["dir"], p["cflags"]), todo)):
            p["exe"] = exe
    return projects


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(HERE / "results" / "host_profile.json"))
    ap.add_argument("--min-seconds", type=float, default=0.3, help="measured C time per model and method")
    ap.add_argument("--only", default=None, help="comma-separated layer-suite case names and/or digits,vit")
    ap.add_argument("--work", default=None, help="folder for the C projects (default: a temporary folder in "
                                                 "/dev/shm where writable)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel gcc builds")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    only = None if args.only is None else [s for s in args.only.split(",") if s]
    layer_names = None if only is None else [s for s in only if s not in DEMOS]
    demos = DEMOS if only is None else [s for s in only if s in DEMOS]
    cases = (suite(layer_names) if layer_names is None or layer_names else []) + [demo_case(d) for d in demos]
    print(f"{len(cases)} models ready in {time.perf_counter() - t_start:.1f} s", flush=True)

    shm = Path("/dev/shm")  # tmpfs: no journal or writeback in the timed file I/O
    with tempfile.TemporaryDirectory(prefix="host_profile_", dir=shm if os.access(shm, os.W_OK) else None) as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        t0 = time.perf_counter()
        projects = build_all(cases, work, args.jobs)
        print(f"built {2 * len(cases)} C projects in {time.perf_counter() - t0:.1f} s", flush=True)
        load_before = loadavg()
        models = {}
        for case in cases:
            r = measure(case, projects[case.name], args.min_seconds)
            models[case.name] = r
            print(f"{case.name:28s} profiled sum {r['total_seconds_per_sample'] * 1e3:9.4f} ms | unprofiled "
                  f"run_host {r['unprofiled_seconds_per_sample'] * 1e3:9.4f} ms, process "
                  f"{r['unprofiled_process_seconds_per_sample'] * 1e3:9.4f} ms | timers "
                  f"{100 * r['timer_overhead']:+5.1f}% | repeats {r['rounds']}x{r['repeats_per_round']:<4d} | "
                  f"bit_exact {r['bit_exact']}", flush=True)

    result = {
        "machine": machine(),
        "cflags": PROFILE_CFLAGS,
        "cflags_unprofiled": HOST_CFLAGS,
        "min_seconds": args.min_seconds,
        "loadavg_before": load_before, "loadavg_after": loadavg(),
        "script_seconds": round(time.perf_counter() - t_start, 1),
        "models": models,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} in {result['script_seconds']} s")
    return result


if __name__ == "__main__":
    main()
