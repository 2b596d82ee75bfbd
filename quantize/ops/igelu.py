"""igelu (I-BERT i-GELU): ``x * (erf(x / sqrt 2) + 1)`` with erf a clipped second-order polynomial
(``b_int``, ``c_int``, ``>> erf_shift``, ``one_int``), then one per-tensor requant and the clamp."""

import numpy as np

from ..bounds import Bound
from ._attrs import SHIFT_COUNT, INT, REQUANT1
from ._opdef import OpDef
from ._shapes import same_as_input


def bounds(model, node, producers=None):
    """Every input of the (at most 16-bit) input tensor enumerated; the attributes are int32, so the polynomial
    fits int64 and the last product is taken in Python integers (it can exceed int64 for a hostile file, and
    must then be reported, not wrap)."""
    a = node.attrs
    lo, hi = model.tensors[node.inputs[0]].qrange()
    x = np.arange(lo, hi + 1, dtype=np.int64)
    u = np.minimum(np.abs(x), -a["b_int"])
    poly = (u + a["b_int"]) ** 2 + a["c_int"]
    erf = (np.sign(x) * poly) >> a["erf_shift"]
    product = np.abs(x.astype(object) * (erf + a["one_int"]).astype(object))
    return [Bound("erf polynomial (every input enumerated)", int(np.abs(poly).max())),
            Bound("x * (erf + 1) (every input enumerated)", int(product.max()))]


OP = OpDef(name="igelu", summary="integer GELU with I-BERT's erf polynomial",
           definition="docs/transformer-ops.md#igelu-i-bert-i-gelu", n_inputs=1,
           attrs={"b_int": INT, "c_int": INT, "erf_shift": SHIFT_COUNT, "one_int": INT, **REQUANT1},
           shape=same_as_input, bounds=bounds, elementwise=True)
