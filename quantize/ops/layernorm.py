"""layernorm: integer LayerNorm over the last axis: the mean rounded by the model's rounding mode, the variance
in int64, an exact integer square root, ``(x - mean) << norm_shift / std``, times gamma plus beta, then one
requant per channel and the clamp."""

import numpy as np

from ..bounds import INT64_LIMIT, Bound, span
from ._attrs import CLAMP, INT, SHIFT_COUNT
from ._opdef import OpDef
from ._shapes import same_as_input


def shape(attrs, in_shapes, params):
    out = same_as_input(attrs, in_shapes, params)
    if params["weight"] != (out[-1],) or out[-1] < 1:
        raise ValueError(f"layernorm weight {params['weight']} does not fit {out[-1]} channels")
    return out


def bounds(model, node, producers=None):
    info = model.tensors[node.inputs[0]]
    channels, x_span = info.shape[-1], span(model, node.inputs[0])
    lo, hi = info.qrange()
    w = np.abs(model.param(node, "weight").astype(np.int64))
    b = np.abs(model.param(node, "bias").astype(np.int64))
    k = node.attrs["norm_shift"]
    return [Bound(f"sum over {channels} channels", channels * x_span),
            Bound("variance sum of (x - mean)^2 (int64)", channels * (hi - lo) ** 2, INT64_LIMIT),
            Bound(f"normalized * gamma + beta (norm_shift={k})", int(((w << k) + b).max(initial=0)))]


OP = OpDef(name="layernorm", summary="integer LayerNorm with an exact integer square root",
           definition="docs/transformer-ops.md#layernorm-integer-layernorm-exact-square-root", n_inputs=1,
           attrs={"norm_shift": SHIFT_COUNT, "output_zp": INT, **CLAMP},
           params={"weight": ("int16",), "bias": ("int32",), "multiplier": ("int32",), "shift": ("int32",)},
           shape=shape, bounds=bounds)
