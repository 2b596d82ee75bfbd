"""The TVM backend's foundation: the pinned TVM loads, serializes TIR without crashing (the failure of the unpinned
FFI), compiles an integer kernel for the host that equals numpy, and a missing or wrong TVM is one ToolchainError."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from intonly.codegen import tvm as tvm_backend
from intonly.quantize.errors import ToolchainError


def test_the_pinned_tvm_serializes_tir_in_a_separate_process():
    """With apache-tvm-ffi 0.1.15.post2 this segfaults; run apart so a crash fails the test, not the session."""
    code = ("from intonly.codegen.tvm import load_tvm; tvm = load_tvm(); "
            "print(len(tvm.ir.save_json(tvm.tirx.Var('x', 'int32'))) > 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout.strip()) == (0, "True"), done.stderr[-2000:]


def test_an_int8_dense_with_int32_accumulation_compiles_for_the_host_and_equals_numpy():
    tvm = tvm_backend.load_tvm()
    from tvm import te

    m, k, n = 7, 37, 5
    x = te.placeholder((m, k), "int8", name="x")
    w = te.placeholder((n, k), "int8", name="w")
    r = te.reduce_axis((0, k), name="r")
    y = te.compute((m, n), lambda i, j: te.sum(x[i, r].astype("int32") * w[j, r].astype("int32"), axis=r),
                   name="y")
    kernel = tvm.compile(te.create_prim_func([x, w, y]), target={"kind": "llvm"})
    rng = np.random.default_rng(0)
    xs = rng.integers(-128, 128, (m, k)).astype(np.int8)
    ws = rng.integers(-128, 128, (n, k)).astype(np.int8)
    xs[0], ws[0] = -128, -128                              # the extreme product, k times
    out = tvm.runtime.tensor(np.zeros((m, n), np.int32))
    kernel(tvm.runtime.tensor(xs), tvm.runtime.tensor(ws), out)
    np.testing.assert_array_equal(out.numpy(), xs.astype(np.int32) @ ws.astype(np.int32).T)


@pytest.mark.parametrize("installed, message", [
    ({"apache-tvm-ffi": "0.1.15.post2"}, "apache-tvm-ffi 0.1.15.post2 is installed"),
    ({"apache-tvm": None}, "apache-tvm is not installed"),
])
def test_a_missing_or_other_tvm_is_one_toolchain_error_naming_the_pins(installed, message, monkeypatch):
    real = metadata.version

    def version(name):
        if name in installed:
            if installed[name] is None:
                raise metadata.PackageNotFoundError(name)
            return installed[name]
        return real(name)
    monkeypatch.setattr(tvm_backend.metadata, "version", version)
    with pytest.raises(ToolchainError) as e:
        tvm_backend.load_tvm()
    assert str(e.value).startswith("the TVM backend needs apache-tvm==0.27.0.post1 and apache-tvm-ffi==0.1.14.post0; ")
    assert message in str(e.value)
