"""Host toolchain: build a generated C project with gcc and run it on integer test vectors."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from quantize.errors import ToolchainError

HOST_CFLAGS = "-std=c99 -O2 -Wall -Wextra -Werror"


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
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"gcc failed in {project} ({' '.join(cmd)}):\n{proc.stderr.strip()}")
    return exe


def sample_dtype(ports: list[tuple[str, tuple]]) -> np.dtype:
    """One sample's record in the driver's binary files: the ports' elements back to back, in order."""
    return np.dtype([(f"p{i}", dtype, tuple(shape)) for i, (dtype, shape) in enumerate(ports)])


def run_host(exe: str | Path, inputs: list[np.ndarray], outputs: list[tuple[str, tuple]],
             timeout: float = 600) -> list[np.ndarray]:
    """Run a built model on integer ``inputs`` (one batch-first array per model input, in order);
    ``outputs`` lists each model output's (dtype, per-sample shape). Returns one array per output."""
    exe = Path(exe).resolve()
    in_file, out_file = exe.parent / "input.bin", exe.parent / "output.bin"
    batch = len(inputs[0])
    records = np.empty(batch, dtype=sample_dtype([(a.dtype, a.shape[1:]) for a in inputs]))
    for i, arr in enumerate(inputs):
        records[f"p{i}"] = arr
    records.tofile(in_file)
    proc = subprocess.run([str(exe), str(in_file), str(out_file)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ToolchainError(f"{exe} exited with {proc.returncode}: {proc.stderr.strip()}")
    result = np.fromfile(out_file, dtype=sample_dtype(outputs))
    if len(result) != batch:
        raise ToolchainError(f"{exe} wrote {len(result)} output samples for {batch} inputs")
    return [np.ascontiguousarray(result[f"p{i}"]) for i in range(len(outputs))]
