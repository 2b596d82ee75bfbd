"""Host toolchain: build a generated C project with gcc and run it on integer test vectors."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from intonly.quantize.errors import ToolchainError

HOST_CFLAGS = "-std=c99 -O2 -Wall -Wextra -Werror"
PROFILE_CFLAGS = HOST_CFLAGS + " -DINTONLY_PROFILE"  # per-node timers (model.h: model_profile_*)


def find_compiler(name: str = "gcc") -> str:
    path = shutil.which(os.environ.get("CC", name))
    if path is None:
        raise ToolchainError(f"C compiler {name!r} not found on PATH; install it (Debian: apt-get install gcc)")
    return path


def build_host(project: str | Path, cflags: str = HOST_CFLAGS) -> Path:
    """Compile ``project`` (an emitted C project) into ``project/model``; gcc's diagnostics on failure."""
    project = Path(project).resolve()
    sources = ["main.c", "model.c", "kernels.c", "weights.c"]
    exe = project / "model"
    cmd = [find_compiler(), *cflags.split(), "-o", str(exe), *sources]
    proc = subprocess.run(cmd, cwd=project, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"gcc failed in {project} ({' '.join(cmd)}):\n{proc.stderr.strip()}")
    return exe


def sample_dtype(ports: list[tuple[str, tuple]]) -> np.dtype:
    """One sample's record in the driver's binary files: the ports' elements back to back, in order."""
    return np.dtype([(f"p{i}", dtype, tuple(shape)) for i, (dtype, shape) in enumerate(ports)])


def _write_inputs(exe: Path, inputs: list[np.ndarray]) -> tuple[Path, Path, int]:
    """Pack ``inputs`` into the driver's input file next to ``exe``; returns (input file, output file, batch)."""
    in_file, out_file = exe.parent / "input.bin", exe.parent / "output.bin"
    batch = len(inputs[0])
    records = np.empty(batch, dtype=sample_dtype([(a.dtype, a.shape[1:]) for a in inputs]))
    for i, arr in enumerate(inputs):
        records[f"p{i}"] = arr
    records.tofile(in_file)
    return in_file, out_file, batch


def host_launch(exe: Path, in_file: Path, out_file: Path, extra_args: list[str]) -> tuple[list[str], Path | None]:
    """How the host runs a built driver: ``exe INPUT.bin OUTPUT.bin [extra_args]`` with absolute paths."""
    return [str(exe), str(in_file), str(out_file), *extra_args], None


def _run_driver(exe: str | Path, inputs: list[np.ndarray], outputs: list[tuple[str, tuple]], extra_args=(),
                timeout: float = 600, launch=host_launch, where: str | None = None) -> list[np.ndarray]:
    """Run the generated driver ``exe INPUT.bin OUTPUT.bin [extra_args]`` on ``inputs`` (files next to ``exe``);
    returns one array per output.

    ``launch(exe, in_file, out_file, extra_args) -> (argv, cwd)`` builds the command (the host's by default; an
    emulator's for a cross build, see codegen/c/cross.py). ``where`` (e.g. "target cortex-m4") names the target
    in errors: a non-zero exit, a timeout or a short output file is one :class:`ToolchainError` with the
    command and its stderr."""
    exe = Path(exe).resolve()
    in_file, out_file, batch = _write_inputs(exe, inputs)
    out_file.unlink(missing_ok=True)
    argv, cwd = launch(exe, in_file, out_file, [str(a) for a in extra_args])
    prefix = f"{where}: " if where else ""
    try:
        proc = subprocess.run(argv, cwd=cwd, check=False, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise ToolchainError(f"{prefix}{' '.join(argv)} did not finish within {timeout:g} s and was killed"
                             + (f"; stderr: {stderr.strip()}" if stderr.strip() else "")) from None
    if proc.returncode != 0:
        if where:
            raise ToolchainError(f"{prefix}{' '.join(argv)} exited with {proc.returncode}: "
                                 f"{proc.stderr.strip() or '(no stderr)'}")
        raise ToolchainError(f"{exe} exited with {proc.returncode}: {proc.stderr.strip()}")
    if not out_file.is_file():
        raise ToolchainError(f"{prefix}{' '.join(argv)} wrote no {out_file.name}")
    result = np.fromfile(out_file, dtype=sample_dtype(outputs))
    if len(result) != batch:
        raise ToolchainError(f"{prefix}{exe} wrote {len(result)} output samples for {batch} inputs")
    return [np.ascontiguousarray(result[f"p{i}"]) for i in range(len(outputs))]


def run_host(exe: str | Path, inputs: list[np.ndarray], outputs: list[tuple[str, tuple]],
             timeout: float = 600) -> list[np.ndarray]:
    """Run a built model on integer ``inputs`` (one batch-first array per model input, in order);
    ``outputs`` lists each model output's (dtype, per-sample shape). Returns one array per output."""
    return _run_driver(exe, inputs, outputs, timeout=timeout)


def read_profile(path: str | Path) -> list[tuple[str, int, int]]:
    """The rows of a profiling build's ``profile.csv``: (node, ns_total, calls), in execution order."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != ["node", "ns_total", "calls"]:
        raise ToolchainError(f"{path}: not a profile.csv (header {rows[:1]})")
    return [(name, int(ns), int(calls)) for name, ns, calls in rows[1:]]


def profile_host(exe: str | Path, inputs: list[np.ndarray], ports: list[tuple[str, tuple]], repeats: int = 1,
                 timeout: float = 600) -> dict[str, float]:
    """Run a profiling build (``PROFILE_CFLAGS``) of a model on ``inputs`` ``repeats`` times over and return,
    per integer node in execution order, the mean wall seconds one sample spent in it (its kernel calls plus
    one ``clock_gettime``): ``ns_total / (samples * repeats) * 1e-9``. ``ports`` are the outputs' (dtype,
    per-sample shape), as for :func:`run_host`."""
    if int(repeats) < 1:
        raise ValueError(f"repeats={repeats!r} must be >= 1")
    csv_path = Path(exe).resolve().parent / "profile.csv"  # main.c writes it next to output.bin
    csv_path.unlink(missing_ok=True)
    _run_driver(exe, inputs, ports, extra_args=(int(repeats),), timeout=timeout)
    rows = read_profile(csv_path)
    expected = len(inputs[0]) * int(repeats)
    if any(calls != expected for _, _, calls in rows):
        raise ToolchainError(f"{exe}: profile.csv counts calls {sorted({c for _, _, c in rows})}, "
                             f"expected {expected}")
    return {name: ns * 1e-9 / calls for name, ns, calls in rows}
