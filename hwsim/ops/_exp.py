"""Integer exp building blocks of the transformer non-linear ops (docs/transformer-ops.md), the one row kernel
that the three softmax ops (``shiftmax``, ``iexp_softmax``, ``log2_softmax``) share, and the GELU ops' ``run``.

Scalar primitives (Numba, inlined; every value int64, so a value outside its proven width is visible, never
wrapped). ``n`` is the precision (e has scale S / 2^n), ``q_max`` the range (exps decay down to 2^-q_max of the
row's max, then clip); ``q_max = n`` is I-ViT's / I-BERT's own formula:

* :func:`shift_exp` — I-ViT's shift-exp of ``d <= 0`` (``x0 = floor(-1/S) < 0``)::

      t = d + (d >> 1) - (d >> 4) ;  t = max(t, q_max * x0)
      q = t // x0 ;  r = t - x0 * q                          # 0 <= q <= q_max, x0 < r <= 0
      e = ((r - 2*x0) << n) >> (q + 1)                       # floor((r/2 - x0) 2^(n-q)); e <= -x0 * 2^n

* :func:`i_exp` — I-BERT's i-exp of ``d <= 0``::

      t = max(d, q_max * x0) ;  q = t // x0 ;  r = t - x0 * q
      z = (r + b_int) * r + c_int ;  e = max((z << n) >> q, 0)

* :func:`log2_code` — FQ-ViT's log2 code of ``e / Σ``: ``Z = 2^code_bits`` for ``e == 0``, else
  ``v = (2Σ + e) // (2e)`` (round(Σ/e), ties up), ``c = floor(log2 v) + [bit floor(log2 v) - 1 of v]``,
  ``Z`` if ``c > Z - 1``.

:func:`_softmax_rows` runs one softmax over every row of a (rows, N) matrix: ``m`` = max over the row's
unmasked values (with ``masked``, the input's lowest code ``sentinel`` marks a masked key: ``e = 0``, left out of
the max); ``e_i = exp(x_i - m)``; ``Σ = sum e_i`` (int32, proven); then either linear probabilities
``p_i = (e_i * ((2^M - 1) // Σ)) >> (M + 1 - k)`` (``M = norm_bits``, 31 or 62; int64) or log2 codes. A row
whose every key is masked has Σ = 0 and outputs 0 (linear) or Z (log2); so does a row whose exps are all 0
(only possible for an i-exp with ``c_int <= 0``, which no lowering emits), so nothing ever divides by zero.

Counted, per the trace's contract: one integer division per exp evaluated (``t // x0``), one per row with
``Σ > 0`` (linear: ``F``) or per nonzero exp (log2: ``v``); an overflow event per row whose ``Σ`` or
``|q_max * x0|`` exceeds ``2^31 - 1`` and per i-exp polynomial ``z`` outside int32 (quantize/bounds.py proves
them for a validated model, so these stay 0 there).

The attributes ``q_max`` and ``norm_bits`` default to ``n`` and 31 (the references' formulas) on a node that
does not carry them.
"""

import numpy as np
from numba import njit, prange

from ..numerics import INT32_MAX, INT32_MIN
from ._compile import reference_and_parallel

SHIFT_EXP, I_EXP = 0, 1  # which exp a softmax row uses
LINEAR, LOG2 = 0, 1  # what a softmax row outputs


def exp_range(attrs) -> tuple[int, int]:
    """(q_max, norm_bits) of a node; log2_softmax has no normalisation (its norm_bits slot is unused: 0)."""
    return attrs["q_max"], attrs.get("norm_bits", 0)


@njit(inline="always", cache=True)
def floor_div_nonpos(t, x0):
    """``t // x0`` for ``t <= 0`` and ``x0 < 0`` (so the quotient is >= 0 and floor = truncation), as one unsigned
    division: the same value as Python's floor division, without its sign fix-ups (measured ~2x faster)."""
    return np.int64(np.uint64(-t) // np.uint64(-x0))


@njit(inline="always", cache=True)
def shift_exp(d, x0, n, q_max):
    """I-ViT shift-exp of ``d <= 0``; scale S / 2^n (see the module docstring)."""
    d = np.int64(d)
    x0 = np.int64(x0)
    t = max(d + (d >> 1) - (d >> 4), np.int64(q_max) * x0)
    q = floor_div_nonpos(t, x0)
    r = t - x0 * q
    return ((r - 2 * x0) << n) >> (q + 1)


@njit(inline="always", cache=True)
def i_exp(d, x0, n, q_max, b_int, c_int):
    """I-BERT i-exp of ``d <= 0``: returns ``(e, 1 if the polynomial z left int32 else 0)``."""
    x0 = np.int64(x0)
    t = max(np.int64(d), np.int64(q_max) * x0)
    q = floor_div_nonpos(t, x0)
    r = t - x0 * q
    z = (r + b_int) * r + c_int
    return ((z << n) >> q) if z > 0 else np.int64(0), np.int64((z > INT32_MAX) | (z < INT32_MIN))


@njit(inline="always", cache=True)
def log2_code(e, total, code_bits):
    """The log2 code of probability ``e / total`` (``Z = 2^code_bits`` means exactly 0)."""
    top = np.int64(1) << code_bits
    if e <= 0:
        return top
    v = (2 * total + e) // (2 * e)
    f = -1
    while (v >> (f + 1)) > 0:
        f += 1
    c = f + (1 if f >= 1 and ((v >> (f - 1)) & 1) == 1 else 0)
    return top if c > top - 1 else np.int64(c)


@njit(inline="always", cache=True)
def row_exps(x, masked, sentinel, kind, x0, n, q_max, b_int, c_int, e):
    """``e[i] = exp(x[i] - m)`` over one row (0 for masked keys). Returns (Σ, exps evaluated, overflow events)."""
    m = np.int64(INT32_MIN)
    for i in range(x.size):
        v = np.int64(x[i])
        if not (masked and v == sentinel):
            m = max(m, v)
    total = np.int64(0)
    live = np.int64(0)
    over = np.int64(abs(np.int64(q_max) * x0) > INT32_MAX)
    for i in range(x.size):
        v = np.int64(x[i])
        if masked and v == sentinel:
            e[i] = 0
            continue
        if kind == SHIFT_EXP:
            e[i] = shift_exp(v - m, x0, n, q_max)
        else:
            value, poly_over = i_exp(v - m, x0, n, q_max, b_int, c_int)
            e[i] = value
            over += poly_over
        total += e[i]
        live += 1
    return total, live, over + np.int64(total > INT32_MAX)


def _softmax_rows(x, masked, sentinel, kind, x0, n, q_max, b_int, c_int, out_kind, norm_bits, out_param, out):
    """One softmax per row of ``x`` (rows, N) into ``out``; ``out_param`` is ``norm_bits + 1 - k`` (LINEAR) or
    ``code_bits`` (LOG2). Returns (integer divisions, overflow events)."""
    rows, width = x.shape
    counts = np.zeros((rows, 2), dtype=np.int64)
    numerator = (np.int64(1) << norm_bits) - 1
    for r in prange(rows):
        e = np.empty(width, dtype=np.int64)
        total, divides, over = row_exps(x[r], masked, sentinel, kind, x0, n, q_max, b_int, c_int, e)
        if out_kind == LINEAR:
            f = numerator // total if total > 0 else np.int64(0)
            divides += total > 0
            for i in range(width):
                out[r, i] = (e[i] * f) >> out_param
        else:
            for i in range(width):
                out[r, i] = log2_code(e[i], total, out_param)
                divides += e[i] > 0
        counts[r, 0] = divides
        counts[r, 1] = over
    return counts[:, 0].sum(), counts[:, 1].sum()


softmax_kernels = reference_and_parallel(_softmax_rows)


def run_softmax(model, node, inputs, ctx, kind, b_int, c_int, out_kind):
    """The ``run`` of a softmax op (exp ``kind``, output ``out_kind``; see :func:`_softmax_rows`). Rows are every
    leading axis, batch included."""
    x = inputs[0]
    a = node.attrs
    q_max, norm_bits = exp_range(a)
    out_param = a["code_bits"] if out_kind == LOG2 else norm_bits + 1 - model.tensors[node.outputs[0]].bits
    out = np.empty(x.shape, dtype=np.int32)
    sentinel = model.tensors[node.inputs[0]].qrange()[0]
    kernel = softmax_kernels[1] if ctx.fast else softmax_kernels[0]
    rows = np.ascontiguousarray(x, dtype=np.int16).reshape(-1, x.shape[-1])  # int8 widens exactly: one compile
    divides, overflows = kernel(rows, a["masked"], sentinel, kind, a["x0"], a["n"], q_max, b_int, c_int, out_kind,
                                norm_bits, out_param, out.reshape(-1, x.shape[-1]))
    ctx.trace.divides = int(divides)
    ctx.trace.overflows = int(overflows)
    return out.astype(model.tensors[node.outputs[0]].dtype)


def run_gelu(model, node, inputs, ctx, kernels, by_rows, *constants):
    """The ``run`` of a GELU op: ``kernels`` = (scalar reference, fast path) of a kernel called as
    ``kernel(x, *constants, multiplier, shift, output_zp, act_min, act_max, mode, out)`` on (rows, last axis)
    views (``by_rows``) or flat ones, returning (clamp events, overflow events[, divisions]). One requant per
    element."""
    x = inputs[0]
    a = node.attrs
    out = np.empty(x.shape, dtype=np.int32)
    shape = (-1, x.shape[-1]) if by_rows else (-1,)
    kernel = kernels[1] if ctx.fast else kernels[0]
    counts = kernel(np.ascontiguousarray(x, dtype=np.int16).reshape(shape), *constants, a["multiplier"], a["shift"],
                    a["output_zp"], a["act_min"], a["act_max"], ctx.mode, out.reshape(shape))
    clamps, overflows, divides = (*counts, 0)[:3]
    ctx.trace.requants = out.size
    ctx.trace.divides = int(divides)
    ctx.trace.clamp_events = int(clamps)
    ctx.trace.overflows = int(overflows)
    return out.astype(model.tensors[node.outputs[0]].dtype)
