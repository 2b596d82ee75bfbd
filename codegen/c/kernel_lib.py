"""Run single IR nodes through their generated C kernels, in-process, via ctypes.

The kernels are rendered from the same templates as a whole-model project and compiled once per
(family, rounding mode, set of kernel signatures, flags) into a shared library with the host flags plus
``-shared -fPIC``. Used by the per-op property tests and for per-layer C-vs-hwsim checks. A family's own kernels
need its flags (``family_host_cflags``: ``-mavx2 -mfma`` for ``x86``; the other families compile their generic
bodies on the host).
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from intonly.quantize.errors import ToolchainError
from intonly.quantize.ir import IntModel, Node

from .calls import node_calls
from .emit import environment, render_kernels
from .families import get_family
from .toolchain import HOST_CFLAGS, find_compiler

_CACHE: dict[str, ctypes.CDLL] = {}
_BUILD_DIR = Path(tempfile.gettempdir()) / "intonly-kernel-libs"


def family_host_cflags(family: str) -> str:
    """Host flags that compile ``family``'s kernels: the family's own flags where its compiler is the host gcc."""
    fam = get_family(family)
    return " ".join([HOST_CFLAGS] + ([fam.cflags] if fam.compiler == "gcc" and fam.cflags else []))


def _library(family: str, rounding: str, calls, cflags: str | None = None) -> ctypes.CDLL:
    env = environment(family)
    cflags = family_host_cflags(family) if cflags is None else cflags
    kernels = render_kernels(env, calls, rounding)
    source = env.get_template("kernels.c.j2").render(kernels=kernels, family=family, rounding=rounding)
    runtime = env.get_template("runtime.h.j2").render(rounding=rounding)
    header = env.get_template("kernels.h.j2").render(kernels=kernels)
    key = hashlib.sha256((source + runtime + header + "\0" + cflags).encode()).hexdigest()[:16]
    if key in _CACHE:
        return _CACHE[key]
    work = _BUILD_DIR / key
    lib_path = work / "libkernels.so"
    if not lib_path.exists():
        work.mkdir(parents=True, exist_ok=True)
        for name, text in (("kernels.c", source), ("intonly_runtime.h", runtime), ("kernels.h", header)):
            (work / name).write_text(text)
        tmp = work / f"libkernels.{id(calls)}.so"
        cmd = [find_compiler(), *cflags.split(), "-shared", "-fPIC", "-o", str(tmp), "kernels.c"]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ToolchainError(f"gcc failed building kernel library in {work}:\n{proc.stderr.strip()}")
        tmp.replace(lib_path)
    _CACHE[key] = ctypes.CDLL(str(lib_path))
    return _CACHE[key]


def run_node_c(model: IntModel, node: Node, inputs: list[np.ndarray], rounding: str | None = None,
               family: str = "generic", batch: int = 1, cflags: str | None = None) -> np.ndarray:
    """Execute ``node`` with the generated C kernels on a batch (``inputs`` batch first, IR dtypes); ``batch``
    is needed only by a node without inputs (``constant``), whose every sample is the same. ``cflags`` default to
    :func:`family_host_cflags`."""
    calls = node_calls(model, node)
    lib = _library(family, rounding or model.rounding, calls, cflags)
    out_info = model.tensors[node.outputs[0]]
    batch = len(inputs[0]) if inputs else batch
    out = np.zeros((batch,) + tuple(out_info.shape), dtype=out_info.dtype)
    arrays = {t: np.ascontiguousarray(a, dtype=model.tensors[t].dtype) for t, a in zip(node.inputs, inputs)}
    consts = {name: np.ascontiguousarray(arr) for name, arr in model.constants.items()}
    for b in range(batch):
        for call in calls:
            args = []
            for a in call.args:
                if a.kind == "in":
                    args.append(arrays[a.value][b].ctypes.data_as(ctypes.c_void_p))
                elif a.kind == "out":
                    args.append(out[b].ctypes.data_as(ctypes.c_void_p))
                elif a.kind == "const":
                    args.append(consts[a.value].ctypes.data_as(ctypes.c_void_p))
                else:
                    args.append(ctypes.c_int32(a.value))
            getattr(lib, call.function)(*args)
    return out
