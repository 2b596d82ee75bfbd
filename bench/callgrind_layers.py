"""Instructions per MAC of the generated C kernels, per template family, counted by callgrind.

    python -m bench.callgrind_layers [--out bench/results/callgrind_layers.json] [--only A,B]
                                     [--families generic,x86] [--jobs N] [--keep DIR]
                                     [--rounding half_up|double|half_even]

Cases: the cases of ``bench/layer_suite.py`` whose integer node is a conv2d or a dense layer (3x3 conv,
depthwise 3x3, 1x1 conv, dense; the DeiT fc1 included), one sample each (``suite(names, samples=1)``).

Families: every ``codegen/c/templates/<family>/`` (not the ``_``-prefixed shared folders, not ``project/``) whose
code runs on this host: ``generic`` always; a SIMD family when its compiler is the host gcc and every
``-m<feature>`` of its flags (codegen/c/families.py; x86: ``-mavx2 -mfma``) is in this CPU's ``/proc/cpuinfo``
flags (and valgrind can execute it: AVX2/FMA yes, AVX-512 no). Others (neon, cortex-m-*) are listed under
``skipped_families``.

Method, per case and family:

1. ``emit_c(model, dir, family=F, cflags=HOST_CFLAGS + F's flags)`` and ``build_host`` with the same flags (the
   normal ``-O2`` build: what runs); ``kernel_source`` records, from the project's build report, whether each
   kernel is the family's specialised one or the generic fallback.
2. The driver runs one sample under ``valgrind --tool=callgrind`` (instruction counts only: no cache or branch
   simulation), and its output is compared with hwsim (``bit_exact``).
3. ``callgrind_annotate --inclusive=yes`` gives each function's inclusive ``Ir`` (instructions executed in it
   and everything it calls, e.g. a SIMD kernel's generic fallback for a tail). ``instructions`` = the sum over
   the node's kernel functions (``codegen.c.calls.node_calls``: the functions model.c calls for that node), so
   the driver, file I/O, the dynamic loader and the final output copy are excluded. (Cross-checked against
   ``--toggle-collect=<kernel>``, which gives the same count.)
4. ``macs`` = ``IntModel.node_macs`` (every tap, padding included); ``executed_macs`` = the MACs of the op's
   hwsim work row, ``work`` in hwsim/ops/<op>.py (padding taps skipped, as the generic kernels do; the SIMD patch
   kernels multiply padded taps by zero instead). ``instructions_per_mac`` = instructions / macs.

``ratio_<family>_over_generic`` = that family's instructions / generic's, per case. Instruction counts are exact
and deterministic for a given compiler and flags (no timing: ``--jobs`` runs cases in parallel), but they are
not time: a vector instruction does 8-32 MACs yet may cost more cycles than a scalar one, and memory stalls are
not counted. Runtime: about 30 s on 2 cores (the generic ResNet 3x3 convs dominate: ~0.48 G instructions each
under callgrind).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from intonly.codegen.c.calls import node_calls
from intonly.codegen.c.emit import PROJECT, TEMPLATES, emit_c
from intonly.codegen.c.toolchain import HOST_CFLAGS, build_host, find_compiler, sample_dtype
from intonly.hwsim.executor import simulate
from intonly.hwsim.work import op_work

from .layer_suite import CASES, LayerCase, suite

HERE = Path(__file__).resolve().parent
MAC_CLASSES = ("int8_conv", "int8_depthwise", "int8_dense")
DEFAULT_OUT = HERE / "results" / "callgrind_layers.json"
# cpuinfo flag names for gcc's -m<feature> options where they differ
CPU_FLAG = {"avx512vnni": "avx512_vnni", "avxvnni": "avx_vnni", "sse4.2": "sse4_2", "sse4.1": "sse4_1"}


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def family_flags(name: str) -> tuple[str | None, str]:
    """(the extra cflags for family ``name``, or None when it cannot run here; the reason/ISA)."""
    if name == "generic":
        return "", "portable C99"
    try:
        from intonly.codegen.c.families import get_family
        fam = get_family(name)
        flags, compiler, isa = fam.cflags, fam.compiler, fam.isa
    except ImportError:  # an older tree without families.py: only x86 is known to run here
        flags, compiler, isa = ("-mavx2 -mfma", "gcc", "AVX2") if name == "x86" else ("", "?", "?")
    if compiler != "gcc":
        return None, f"needs {compiler or 'a cross compiler'} ({isa})"
    if platform.machine() not in ("x86_64", "AMD64"):
        return None, f"host is {platform.machine()}"
    have = cpu_flags()
    need = [f[2:] for f in flags.split() if f.startswith("-m")]
    missing = [f for f in need if CPU_FLAG.get(f, f) not in have]
    if missing or not need:
        return None, f"this CPU lacks {missing or flags!r}"
    return flags, isa


def mac_cases(only: list[str] | None) -> list[str]:
    prefixes = ("conv3x3_", "dw3x3_", "pw1x1_", "dense_")
    names = [n for n in CASES if n.startswith(prefixes)]
    return [n for n in names if n in only] if only else names


def inclusive_counts(callgrind_out: Path, exe: Path) -> dict[str, int]:
    """Inclusive Ir per function of ``exe`` (callgrind_annotate --inclusive=yes)."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(callgrind_out)],
                          capture_output=True, text=True, check=True).stdout
    counts = {}
    line_re = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*):([^:\s]+)(?:\s+\[(.*)\])?\s*$")
    for line in text.splitlines():
        m = line_re.match(line)
        if m and (m.group(4) is None or Path(m.group(4)).resolve() == exe.resolve()):
            counts.setdefault(m.group(3), int(m.group(1).replace(",", "")))
    return counts


def measure(case: LayerCase, family: str, flags: str, work: Path, rounding: str | None = None) -> dict:
    model = case.int_model
    (node,) = model.integer_nodes()
    cflags = f"{HOST_CFLAGS} {flags}".strip()
    out_dir = work / f"{case.name}.{family}"
    project = emit_c(model, out_dir, family=family, cflags=cflags, rounding=rounding)
    exe = build_host(out_dir, cflags)
    records = np.empty(1, dtype=sample_dtype([(a.dtype, a.shape[1:]) for a in case.x]))
    for i, arr in enumerate(case.x):
        records[f"p{i}"] = arr[:1]
    records.tofile(out_dir / "in.bin")
    cg_out = out_dir / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg_out}", str(exe), str(out_dir / "in.bin"),
           str(out_dir / "out.bin")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    ports = [(model.tensors[t].dtype, model.tensors[t].shape) for t in project.output_tensors]
    got = np.fromfile(out_dir / "out.bin", dtype=sample_dtype(ports))["p0"]
    want = simulate(model, [a[:1] for a in case.x], quantized=True, rounding=rounding).int_outputs[0]
    counts = inclusive_counts(cg_out, exe)
    fns = list(dict.fromkeys(call.function for call in node_calls(model, node)))
    missing = [f for f in fns if f not in counts]
    if missing:
        raise RuntimeError(f"{case.name}/{family}: callgrind_annotate lists no {missing} ({cg_out})")
    instructions = sum(counts[f] for f in fns)
    report = json.loads((out_dir / "build_report.json").read_text()) if (out_dir / "build_report.json").is_file() \
        else {}
    sources = {k["fn"]: k.get("source") for k in report.get("kernels", [])}
    macs = model.node_macs(node)
    executed = sum(v for c, v in op_work(model, node).items() if c in MAC_CLASSES)
    return {"cflags": cflags, "functions": {f: counts[f] for f in fns},
            "kernel_source": {f: sources.get(f, family) for f in fns},
            "instructions": instructions, "instructions_per_mac": instructions / macs,
            "instructions_per_executed_mac": instructions / executed,
            "model_run_instructions": counts.get("intonly_model_run"),
            "bit_exact": bool(np.array_equal(got, want)), "callgrind_seconds": round(seconds, 2)}


def machine() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "logical_cpus": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu_model"] = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                                  if line.startswith("model name")), None)
    except OSError:
        info["cpu_model"] = platform.processor() or None
    info["simd"] = sorted(f for f in cpu_flags() if f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni"))
    for tool, argv in (("compiler", [find_compiler(), "--version"]), ("valgrind", ["valgrind", "--version"])):
        try:
            info[tool] = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()[0]
        except (OSError, subprocess.CalledProcessError, IndexError) as exc:
            info[tool] = f"unknown ({exc})"
    return info


def table(result: dict) -> str:
    fams = result["families"]
    head = f"{'case':30s} {'MACs':>12s}"
    for f in fams:
        head += f" {f + ' instr':>15s} {'/MAC':>6s}"
    ratios = [f for f in fams if f != "generic" and "generic" in fams]
    head += "".join(f" {f + '/generic':>12s}" for f in ratios)
    lines = [head, "-" * len(head)]
    for name, row in result["cases"].items():
        line = f"{name:30s} {row['macs']:>12,d}"
        for f in fams:
            r = row["families"][f]
            line += f" {r['instructions']:>15,d} {r['instructions_per_mac']:>6.2f}"
        line += "".join(f" {row[f'ratio_{f}_over_generic']:>12.3f}" for f in ratios)
        lines.append(line)
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", help="comma-separated case names (default: every conv/dense case)")
    ap.add_argument("--families", help="comma-separated families (default: every one that runs on this host)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel callgrind runs")
    ap.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temporary folder)")
    ap.add_argument("--rounding", choices=["half_up", "double", "half_even"],
                    help="requant rounding of the generated C (default: the model's, half_up; CMSIS-NN's is double)")
    args = ap.parse_args(argv)
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found; install it with: apt-get install valgrind")
    start = time.perf_counter()

    available = sorted(p.name for p in TEMPLATES.iterdir()
                       if p.is_dir() and not p.name.startswith("_") and p.name != PROJECT)
    wanted = args.families.split(",") if args.families else available
    families, skipped = {}, {}
    for name in wanted:
        if name not in available:
            skipped[name] = f"no templates/{name}/"
            continue
        flags, why = family_flags(name)
        if flags is None:
            skipped[name] = why
        else:
            families[name] = flags
    families = dict(sorted(families.items(), key=lambda kv: kv[0] != "generic"))  # generic first
    names = mac_cases(args.only.split(",") if args.only else None)
    cases = suite(names, samples=1)

    work_ctx = None
    if args.keep:
        work = args.keep
        work.mkdir(parents=True, exist_ok=True)
    else:
        base = "/dev/shm" if Path("/dev/shm").is_dir() else None
        work_ctx = tempfile.TemporaryDirectory(prefix="callgrind-layers-", dir=base)
        work = Path(work_ctx.name)
    try:
        jobs = [(case, fam, flags) for case in cases for fam, flags in families.items()]
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            measured = list(pool.map(lambda j: measure(j[0], j[1], j[2], work, args.rounding), jobs))
    finally:
        if work_ctx is not None:
            work_ctx.cleanup()

    rows = {}
    for (case, fam, _), m in zip(jobs, measured):
        (node,) = case.int_model.integer_nodes()
        row = rows.setdefault(case.name, {
            "op": node.op, "groups": node.attrs.get("groups"), "macs": case.int_model.node_macs(node),
            "executed_macs": sum(v for c, v in op_work(case.int_model, node).items() if c in MAC_CLASSES),
            "families": {}})
        row["families"][fam] = m
    for row in rows.values():
        base = row["families"].get("generic")
        for fam, m in row["families"].items():
            if fam != "generic" and base:
                row[f"ratio_{fam}_over_generic"] = m["instructions"] / base["instructions"]
    method = __doc__.split("Method, per case and family:")[1].strip().split("\n\n")[0]
    rounding = args.rounding or cases[0].int_model.rounding
    result = {"machine": machine(), "method": " ".join(method.split()), "host_cflags": HOST_CFLAGS, "rounding": rounding,
              "families": list(families), "family_cflags": families, "skipped_families": skipped, "cases": rows,
              "all_bit_exact": all(m["bit_exact"] for m in measured),
              "seconds": round(time.perf_counter() - start, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    print(f"rounding: {rounding}; skipped families: {skipped or 'none'}; bit-exact vs hwsim: {result['all_bit_exact']}; "
          f"{result['seconds']} s; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
