"""Overflow bounds shared by the softmax ops (shiftmax, iexp_softmax, log2_softmax)."""

from __future__ import annotations

from ..bounds import Bound, iexp_poly_max, shift_exp_max


def softmax_bounds(model, node, producers=None) -> list[Bound]:
    """The exp before its shift (shift-exp for shiftmax, I-BERT's polynomial otherwise), the row sum of
    ``exp << n`` over the key axis, and the exp range clip ``q_max * x0``."""
    a = node.attrs
    n_keys = model.tensors[node.inputs[0]].shape[-1]
    peak = shift_exp_max(a["x0"]) if node.op == "shiftmax" else iexp_poly_max(a["x0"], a["b_int"], a["c_int"])
    return [Bound("exp before shift", peak),
            Bound(f"row sum of exp (N={n_keys} keys, n={a['n']})", n_keys * (peak << a["n"])),
            Bound("exp range clip q_max*x0", abs(a["q_max"] * a["x0"]))]
