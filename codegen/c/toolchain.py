"""Host toolchain: build a generated C project with gcc and run it on integer test vectors."""

from __future__ import annotations

import math
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


def run_host(exe: str | Path, inputs: np.ndarray, out_dtype: str, out_shape: tuple, timeout: float = 600) -> np.ndarray:
    """Run a built model on ``inputs`` (batch first, the C input type); returns outputs (batch first)."""
    exe = Path(exe).resolve()
    in_file, out_file = exe.parent / "input.bin", exe.parent / "output.bin"
    np.ascontiguousarray(inputs).tofile(in_file)
    proc = subprocess.run([str(exe), str(in_file), str(out_file)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ToolchainError(f"{exe} exited with {proc.returncode}: {proc.stderr.strip()}")
    out = np.fromfile(out_file, dtype=out_dtype)
    return out.reshape((len(inputs),) + tuple(out_shape)) if math.prod(out_shape) else out
