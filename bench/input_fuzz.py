"""Fuzzing intonly's inputs: hypothesis-driven mutations of valid model archives and target files.

    python -m bench.input_fuzz [--cases 20000] [--targets-share 0.25] [--seed N] [--out bench/results/input_fuzz.json]

The CI test (tests/test_input_fuzz.py) runs the same cases, fewer of them and derandomized; this script runs a
longer, random campaign and writes a JSON report (cases tried per kind, outcomes, findings, peak traced memory,
slowest cases).

**Seeds.** The bundled digits CNN and tiny ViT, quantized (conv2d, dense, add, pools, concat, requantize,
reshape, transpose, layernorm, matmul, shiftmax, shiftgelu, constant, slice), and the built-in target files.

**Mutations of an archive** (:func:`archive_cases`): a field of graph.json replaced by an interesting value
(NaN, inf, 0, -1, 2^31, 10^30, huge or empty strings and lists, rich markup, path traversal, a neighbour of the
original value), deleted, duplicated or renamed; nodes reordered or dropped; a constant's .npy header rewritten
(huge or empty shape, object/big-endian/float dtype, Fortran order, a pickle, garbage) with its sha256 updated so
the checksum passes; zip structure (a member dropped, repeated or added, a declared size patched, the archive
truncated); raw byte flips.

**Mutations of a target file** (:func:`target_cases`): a number replaced (nan, inf, 0, negative, 1e308, huge
integers), a line dropped or duplicated, a string replaced (compiler, emulator, flags, name), deep nesting,
non-UTF-8 bytes, byte flips.

**One case** (:func:`run_archive_case`, :func:`run_target_case`), inside a sandbox folder that is the working
directory: the file is loaded; if it loads, the model is simulated on two samples (when its activations are
small) and estimated, and ``intonly inspect`` / ``intonly estimate --out out`` run in-process; a target file is
loaded, listed, shown and used for an estimate, whose totals must be finite. Outcome: ``ok``, or the name of
the :class:`~quantize.errors.IntonlyError` subclass that refused it; anything else escaping is a **finding**.
Each case records its wall time, its peak traced memory (tracemalloc: Python and NumPy allocations) and every
file it created, changed or removed outside ``out/`` in the sandbox (must be none).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import struct
import sys
import time
import tracemalloc
import traceback
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from intonly.quantize.errors import IntonlyError

HERE = Path(__file__).resolve().parent

SIM_LIMIT_BYTES = 64 << 20      # simulate a mutated model only if its activations for 2 samples stay below this
ESTIMATE_TARGET = "cortex-m4"

# ---- seeds -------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Seeds:
    archives: dict[str, bytes]      # name -> a valid .intonly archive
    targets: dict[str, str]         # built-in target name -> its TOML text

    @classmethod
    def build(cls, calib: int = 64) -> "Seeds":
        """Quantize the bundled demos once (a few seconds) and read the built-in target files."""
        import tempfile

        from intonly import api
        from intonly.workloads import load_workload
        from intonly.targets.loader import BUILTIN_DIR

        archives = {}
        with tempfile.TemporaryDirectory() as tmp:
            for demo in ("digits", "vit"):
                work = load_workload(demo)
                model = api.quantize(work.model, [a[:calib] for a in work.calib], work.config, name=work.name)
                archives[demo] = model.save(Path(tmp) / f"{demo}.intonly").read_bytes()
        targets = {p.stem: p.read_text() for p in sorted(BUILTIN_DIR.glob("*.toml"))}
        return cls(archives, targets)

    def warm_up(self, sandbox: Path) -> None:
        """Run every seed through a case once, untimed: Numba compiles (or loads from its cache) the reference
        kernels and the CLI imports its plotting on first use, seconds that belong to no case."""
        for name, archive in self.archives.items():
            result = run_archive_case(f"seed:{name}", archive, sandbox)
            if result.outcome != "ok":
                raise RuntimeError(f"seed {name} does not run: {result.finding or result.outcome}")


# ---- archive mutations -------------------------------------------------------------------------------------

INTERESTING = [math.nan, math.inf, -math.inf, 0, -1, 1, 2, 7, 63, 64, 2**15, 2**31 - 1, 2**31, -2**31 - 1, 2**63,
               10**30, 1e-45, 1e39, -0.5, "", "../../victim", "/etc/passwd", "[/x]", "[bold]", "$\\frac{", "x" * 5000,
               None, True, False, [], {}, [0, 0], [0, 0, 0, 0], [-1, 2], [1] * 9, [2**40], ["a"], {"a": 1}, "int8",
               "int64", "float32", "object", "HWC", "NHWC", "log2", "conv2d", "nonsense_op"]


def _members(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(members: list[tuple[str, bytes]], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf, contextlib.suppress(Exception):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")            # "Duplicate name" is the point of some cases
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def _paths(value, prefix=()) -> list[tuple]:
    """Every path to a value inside a JSON document (the root excluded)."""
    out = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        out.append(prefix + (key,))
        out.extend(_paths(item, prefix + (key,)))
    return out


def _neighbour(value, draw):
    if isinstance(value, bool) or value is None:
        return draw(st.sampled_from([0, 1, "1", None]))
    if isinstance(value, int):
        return value + draw(st.sampled_from([-2**31, -1000, -2, -1, 1, 2, 1000, 2**31]))
    if isinstance(value, float):
        return value * draw(st.sampled_from([-1.0, 0.0, 1e-30, 1e30, math.nan]))
    if isinstance(value, str):
        return draw(st.sampled_from([value + "x", value[:-1], value.upper(), value + "/..", "[" + value]))
    if isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        return value[:i] + [_neighbour(value[i], draw)] + value[i + 1:]
    return value


@st.composite
def _json_case(draw, seeds: Seeds):
    name = draw(st.sampled_from(sorted(seeds.archives)))
    members = _members(seeds.archives[name])
    graph = json.loads(members["graph.json"])
    paths = _paths(graph)
    path = draw(st.sampled_from(paths))
    parent = graph
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    action = draw(st.sampled_from(["replace", "replace", "replace", "neighbour", "neighbour", "delete",
                                   "duplicate", "unknown_key", "reorder_nodes", "drop_node"]))
    if action == "replace":
        parent[key] = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(), st.floats(),
                                     st.text(max_size=12), st.lists(st.integers(-5, 300), max_size=6)))
    elif action == "neighbour":
        parent[key] = _neighbour(parent[key], draw)
    elif action == "delete":
        del parent[key]
    elif action == "duplicate" and isinstance(parent, list):
        parent.insert(key, json.loads(json.dumps(parent[key])))
    elif action == "unknown_key" and isinstance(parent, dict):
        parent[draw(st.sampled_from(["extra", "name ", "attrs2"]))] = 1
    elif action == "reorder_nodes":
        nodes = graph["nodes"]
        i, j = draw(st.integers(0, len(nodes) - 1)), draw(st.integers(0, len(nodes) - 1))
        nodes[i], nodes[j] = nodes[j], nodes[i]
    elif action == "drop_node":
        graph["nodes"].pop(draw(st.integers(0, len(graph["nodes"]) - 1)))
    members["graph.json"] = json.dumps(graph).encode()
    return f"json:{action}:{'/'.join(map(str, path[:3]))}", _zip(list(members.items()))


def npy_bytes(header: str, body: bytes, version: int = 1) -> bytes:
    """A .npy file with an arbitrary header text (padded to 64 bytes as numpy writes it)."""
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<L", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + body


@st.composite
def _npy_case(draw, seeds: Seeds):
    name = draw(st.sampled_from(sorted(seeds.archives)))
    members = _members(seeds.archives[name])
    graph = json.loads(members["graph.json"])
    const = draw(st.sampled_from(sorted(graph["constants"])))
    meta = graph["constants"][const]
    arr = np.load(io.BytesIO(members[meta["file"]]), allow_pickle=False)
    descr = draw(st.sampled_from(["|i1", "<i2", "<i4", ">i4", "<f8", "|O", "<U4", "|b1", "[('a', '<i4')]", "<i8"]))
    shape = draw(st.sampled_from([tuple(arr.shape), (99999999999,), (), (0,), (2**31, 2**31), (-1,),
                                  tuple(arr.shape) + (1,), (arr.size + 1,)]))
    fortran = draw(st.sampled_from(["False", "True", "'x'"]))
    header = draw(st.sampled_from([
        f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}",
        f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}",
        "{'descr': __import__('os').system('true'), 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '|i1', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
        "[" * 200 + "]" * 200,
        "not a dict",
    ]))
    body = arr.tobytes()
    body = draw(st.sampled_from([body, body[: len(body) // 2], body + b"\0" * 8, b""]))
    data = npy_bytes(header, body, draw(st.sampled_from([1, 2, 3, 9])))
    if draw(st.booleans()):
        data = b"\x80\x04\x95" + data[3:]           # a pickle opcode where the magic should be
    members[meta["file"]] = data
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    if draw(st.booleans()):                         # let graph.json agree with the new header where it can
        with contextlib.suppress(TypeError, ValueError):
            meta["dtype"] = str(np.dtype(descr))
            meta["shape"] = list(shape)
    members["graph.json"] = json.dumps(graph).encode()
    return f"npy:{descr}:{shape[:2]}", _zip(list(members.items()))


@st.composite
def _zip_case(draw, seeds: Seeds):
    name = draw(st.sampled_from(sorted(seeds.archives)))
    members = list(_members(seeds.archives[name]).items())
    action = draw(st.sampled_from(["drop", "repeat", "extra", "stored", "size", "truncate", "empty", "huge_count"]))
    if action == "drop":
        members.pop(draw(st.integers(0, len(members) - 1)))
    elif action == "repeat":
        members.append(members[draw(st.integers(0, len(members) - 1))])
    elif action == "extra":
        members.append((draw(st.sampled_from(["../evil.txt", "/abs", "extra.npy", "constants/99.npy"])), b"x"))
    data = _zip(members, zipfile.ZIP_STORED if action == "stored" else zipfile.ZIP_DEFLATED)
    raw = bytearray(data)
    if action == "size":                            # patch a declared uncompressed size in the central directory
        at = raw.rfind(b"PK\x01\x02")
        if at >= 0:
            struct.pack_into("<L", raw, at + 24, draw(st.sampled_from([0, 1, 2**31, 2**32 - 1])))
    elif action == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif action == "empty":
        raw = bytearray(_zip([]))
    elif action == "huge_count":                    # end-of-central-directory declares 65535 members
        at = raw.rfind(b"PK\x05\x06")
        struct.pack_into("<HH", raw, at + 8, 0xFFFF, 0xFFFF)
    return f"zip:{action}", bytes(raw)


@st.composite
def _bytes_case(draw, seeds: Seeds):
    name = draw(st.sampled_from(sorted(seeds.archives)))
    raw = bytearray(seeds.archives[name])
    for _ in range(draw(st.integers(1, 8))):
        raw[draw(st.integers(0, len(raw) - 1))] ^= draw(st.integers(1, 255))
    return "bytes:flip", bytes(raw)


ARCHIVE_KINDS = {"json": (_json_case, 5), "npy": (_npy_case, 2), "zip": (_zip_case, 2), "bytes": (_bytes_case, 1)}


@st.composite
def archive_cases(draw, seeds: Seeds):
    """``(label, archive bytes)`` for one mutated model file; kinds drawn by the weights of ARCHIVE_KINDS."""
    kind = draw(st.sampled_from([k for k, (_, weight) in ARCHIVE_KINDS.items() for _ in range(weight)]))
    return draw(ARCHIVE_KINDS[kind][0](seeds))


# ---- target mutations --------------------------------------------------------------------------------------

TARGET_NUMBERS = ["nan", "inf", "-inf", "0", "-1", "1e308", "1e-308", "123456789012345678901234567890", "0.0001",
                  "1e15", "true", '"12"', "[1]"]
TARGET_STRINGS = ['"/bin/true"', '"sh -c true"', '"gcc -o /tmp/x"', '"qemu-system-arm -monitor stdio"',
                  '"-O2 -Wl,-o,/tmp/x"', '"-fplugin=x.so"', '"@/etc/passwd"', '""', '"[/x]"', '"x"',
                  '"' + "a" * 3000 + '"', '"cortex-m4"', '"../x"']


@st.composite
def target_cases(draw, seeds: Seeds):
    """``(label, file name stem, TOML bytes)`` for one mutated target file."""
    name = draw(st.sampled_from(sorted(seeds.targets)))
    lines = seeds.targets[name].splitlines()
    action = draw(st.sampled_from(["number", "number", "number", "string", "drop", "duplicate", "nest",
                                   "bytes", "rename"]))
    stem = name
    i = draw(st.integers(0, len(lines) - 1))
    if action == "number":
        numbered = [j for j, line in enumerate(lines) if "value =" in line]
        i = draw(st.sampled_from(numbered))
        head, _, tail = lines[i].partition("value = ")
        lines[i] = head + "value = " + draw(st.sampled_from(TARGET_NUMBERS)) + tail[tail.index(","):]
    elif action == "string":
        strings = [j for j, line in enumerate(lines) if "=" in line and '"' in line and "{" not in line]
        i = draw(st.sampled_from(strings))
        lines[i] = lines[i].split("=")[0] + "= " + draw(st.sampled_from(TARGET_STRINGS))
    elif action == "drop":
        lines.pop(i)
    elif action == "duplicate":
        lines.insert(i, lines[i])
    elif action == "nest":
        lines.append("deep = " + "[" * draw(st.sampled_from([50, 5000, 100000])))
    elif action == "rename":
        stem = draw(st.sampled_from(["..", "x y", "[x]", "a" * 200, "cortex-m4"]))
    data = ("\n".join(lines) + "\n").encode()
    if action == "bytes":
        raw = bytearray(data)
        for _ in range(draw(st.integers(1, 6))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        data = bytes(raw)
    return f"target:{action}", stem, data


# ---- running one case --------------------------------------------------------------------------------------

@dataclasses.dataclass
class CaseResult:
    label: str
    outcome: str                   # "ok" or the IntonlyError subclass that refused the input
    seconds: float
    peak_bytes: int                # peak memory above the start of the case (PeakMemory)
    finding: str | None = None     # an exception other than IntonlyError: "Type: message @ file:line"
    wrote_outside: list[str] = dataclasses.field(default_factory=list)


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root`` but ``out/`` (relative path -> size, mtime)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel.parts[:1] == ("out",):
            continue
        for n in dirnames + filenames:
            if rel == Path(".") and n == "out":
                continue
            p = Path(dirpath) / n
            with contextlib.suppress(OSError):
                st_ = p.lstat()
                found[str(rel / n)] = (st_.st_size, st_.st_mtime_ns)
    return found


def _finding(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" @ {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {str(exc)[:300]}{where}"


class PeakMemory:
    """Peak memory of a block: the process's peak resident set (Linux ``VmHWM``, reset through
    ``/proc/self/clear_refs``) above its resident set when the block began; where that is unavailable, the
    peak of tracemalloc's traced allocations (slower, and blind to Numba's own allocations)."""

    def __init__(self):
        self.rss = _can_reset_peak()

    def __enter__(self):
        if self.rss:
            _reset_peak()
            self.start = _status_kib("VmRSS")
        else:
            tracemalloc.start()
        return self

    def __exit__(self, *exc):
        if self.rss:
            self.peak = max(0, _status_kib("VmHWM") - self.start) * 1024
        else:
            self.peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return False


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _can_reset_peak() -> bool:
    try:
        _reset_peak()
        _status_kib("VmHWM")
        return True
    except (OSError, StopIteration, ValueError):
        return False


@contextlib.contextmanager
def _measured(sandbox: Path, label: str, results: list):
    """Run the block in ``sandbox`` (cwd), timing it, measuring its peak memory, diffing the sandbox."""
    before = _snapshot(sandbox)
    cwd = os.getcwd()
    os.chdir(sandbox)
    result = CaseResult(label, "ok", 0.0, 0)
    memory = PeakMemory()
    t0 = time.perf_counter()
    try:
        with memory:
            yield result
    except IntonlyError as exc:
        result.outcome = type(exc).__name__
    except Exception as exc:  # noqa: BLE001  (that is what a finding is)
        result.outcome, result.finding = "finding", _finding(exc)
    finally:
        result.seconds = time.perf_counter() - t0
        result.peak_bytes = memory.peak
        os.chdir(cwd)
    after = _snapshot(sandbox)
    result.wrote_outside = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    results.append(result)


def _cli(argv: list[str]) -> int:
    from intonly import cli

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli.main(argv)


def _cli_ok(argv: list[str]) -> None:
    """Run the CLI in-process: exit 0 or 2 (one typed error) are fine; other exceptions propagate."""
    rc = _cli(argv)
    if rc not in (0, 2):
        raise AssertionError(f"intonly {' '.join(argv)} exited {rc}")


def run_archive_case(label: str, archive: bytes, sandbox: Path, with_cli: bool = True) -> CaseResult:
    """Load a mutated archive and use it as far as it goes (module docstring)."""
    from intonly.hwsim.executor import simulate
    from intonly import api
    from intonly.quantize.ir import IntModel

    results: list[CaseResult] = []
    path = sandbox / "m.intonly"
    path.write_bytes(archive)
    with _measured(sandbox, label, results):
        model = IntModel.load(path)
        act_bytes = sum(math.prod(t.shape) * 4 for t in model.tensors.values())
        if 2 * act_bytes <= SIM_LIMIT_BYTES:
            rng = np.random.default_rng(0)
            xs = []
            for node in (n for n in model.nodes if n.op == "quantize"):
                info = model.tensors[node.outputs[0]]
                lo, hi = info.qrange()
                xs.append(rng.integers(lo, hi + 1, size=(2, *info.shape)).astype(info.dtype))
            simulate(model, xs, quantized=True, fast=False)  # scalar kernels: no thread start-up per op
        (estimate,) = api.estimate(model, ESTIMATE_TARGET)
        if not (math.isfinite(estimate.latency_ms) and math.isfinite(estimate.energy_uj)):
            raise AssertionError(f"non-finite estimate {estimate.latency_ms} ms, {estimate.energy_uj} uJ")
    if with_cli:
        with _measured(sandbox, label + " [cli]", results):
            _cli_ok(["inspect", "m.intonly"])
            _cli_ok(["estimate", "m.intonly", "--target", ESTIMATE_TARGET, "--out", "out/estimate"])
    return _merge(results)


def run_target_case(label: str, stem: str, data: bytes, sandbox: Path, model) -> CaseResult:
    """Load a mutated target file from a --target-dir and use it: list, show, estimate (finite totals)."""
    from intonly import api
    from intonly.targets import load_file

    results: list[CaseResult] = []
    folder = sandbox / "tdir"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    path = folder / f"{stem}.toml"
    path.write_bytes(data)
    with _measured(sandbox, label, results):
        target = load_file(path)
        (estimate,) = api.estimate(model, target)
        totals = (estimate.latency_ms, estimate.energy_uj, estimate.peak_ram_bytes, estimate.flash_bytes)
        if not all(math.isfinite(v) and v >= 0 for v in totals):
            raise AssertionError(f"non-finite or negative estimate totals {totals}")
    with _measured(sandbox, label + " [cli]", results):
        _cli_ok(["targets", "list", "--target-dir", "tdir"])
        _cli_ok(["targets", "show", str(path.relative_to(sandbox)), "--json"])
    return _merge(results)


def _merge(results: list[CaseResult]) -> CaseResult:
    first = results[0]
    for r in results[1:]:
        first.seconds += r.seconds
        first.peak_bytes = max(first.peak_bytes, r.peak_bytes)
        first.finding = first.finding or r.finding
        first.wrote_outside += r.wrote_outside
    return first


# ---- the campaign ------------------------------------------------------------------------------------------

def campaign(cases: int, targets_share: float, seed: int | None, sandbox: Path) -> dict:
    """Run ``cases`` hypothesis-generated cases (a share of them target files) and summarise them."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed

    from intonly.quantize.ir import IntModel

    seeds = Seeds.build()
    seeds.warm_up(sandbox)
    model = IntModel.load(_write(sandbox / "seed.intonly", seeds.archives["digits"]))
    results: list[CaseResult] = []
    n_targets = int(cases * targets_share)

    common = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=seed is None)

    def record(result: CaseResult) -> None:
        results.append(result)
        if result.finding or result.wrote_outside:
            print(f"finding in case {len(results):,} ({result.label}): {result.finding or result.wrote_outside}",
                  file=sys.stderr, flush=True)
        if len(results) % 500 == 0:
            found = sum(1 for r in results if r.finding or r.wrote_outside)
            print(f"{len(results):,} cases, {found} findings, {time.perf_counter() - t0:.0f} s", file=sys.stderr,
                  flush=True)

    @settings(max_examples=cases - n_targets, **common)
    @given(case=archive_cases(seeds))
    def archives(case):
        record(run_archive_case(*case, sandbox))

    @settings(max_examples=max(n_targets, 1), **common)
    @given(case=target_cases(seeds))
    def target_files(case):
        record(run_target_case(*case, sandbox, model))

    if seed is not None:
        archives, target_files = hypothesis_seed(seed)(archives), hypothesis_seed(seed + 1)(target_files)
    t0 = time.perf_counter()
    archives()
    if n_targets:
        target_files()
    wall = time.perf_counter() - t0
    return summarise(results, wall)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def summarise(results: list[CaseResult], wall_s: float) -> dict:
    outcomes: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for r in results:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        kind = r.label.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    findings = sorted({r.finding for r in results if r.finding})
    slowest = sorted(results, key=lambda r: -r.seconds)[:5]
    return {"cases": len(results), "wall_s": round(wall_s, 1), "by_kind": kinds, "outcomes": outcomes,
            "findings": findings, "writes_outside_out": sorted({w for r in results for w in r.wrote_outside}),
            "peak_bytes": max((r.peak_bytes for r in results), default=0),
            "slowest": [{"label": r.label, "seconds": round(r.seconds, 3), "outcome": r.outcome} for r in slowest]}


def main() -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--targets-share", type=float, default=0.25)
    parser.add_argument("--seed", type=int, help="random campaign seed (default: derandomized, as in CI)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "input_fuzz.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = campaign(args.cases, args.targets_share, args.seed, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "slowest"}, indent=1))
    return 1 if report["findings"] or report["writes_outside_out"] else 0


if __name__ == "__main__":
    sys.exit(main())
