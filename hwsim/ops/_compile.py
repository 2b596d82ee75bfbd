"""How an op's loop is compiled twice: as the scalar reference kernel and as the parallel fast path."""

import types

import numpy as np
from numba import njit


def reference_and_parallel(func):
    """``func`` compiled as the scalar reference (``njit``) and as the fast path (``njit(parallel=True)``, its
    ``prange`` loops threaded). The fast path compiles a renamed copy of ``func``: Numba's on-disk cache keys an
    entry by function, signature and bytecode but not by compile flags, so the two variants of one function would
    share a cache entry and whichever compiled first would serve both."""
    twin = types.FunctionType(func.__code__, func.__globals__, func.__name__ + "_parallel", func.__defaults__,
                              func.__closure__)
    twin.__qualname__ = func.__qualname__ + "_parallel"
    return njit(cache=True)(func), njit(parallel=True, cache=True)(twin)


def run_kernel(model, node, x: np.ndarray, fast: bool, kernels, *args):
    """Allocate the node's batched output, run ``kernels`` (reference, parallel: :func:`reference_and_parallel`)
    as ``kernel(x, *args, out)``, and return ``(out, what the kernel returned)``."""
    info = model.tensors[node.outputs[0]]
    out = np.empty((x.shape[0],) + tuple(info.shape), dtype=info.dtype)
    return out, (kernels[1] if fast else kernels[0])(x, *args, out)


def run_over_rows(kernels, x: np.ndarray, fast: bool, out_dtype, *args):
    """Run a last-axis kernel ``kernel(rows, *args, out_rows)`` of ``kernels`` (reference, parallel) on ``x`` viewed
    as (rows, D); return ``(out, what the kernel returned)``."""
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape, dtype=out_dtype)
    depth = x.shape[-1]
    return out, (kernels[1] if fast else kernels[0])(x.reshape(-1, depth), *args, out.reshape(-1, depth))


@njit(inline="always", cache=True)
def row_max(x, r):
    """The largest element of row ``r`` of a 2-D integer array, as int64."""
    top = np.int64(x[r, 0])
    for c in range(1, x.shape[1]):
        top = max(top, np.int64(x[r, c]))
    return top
