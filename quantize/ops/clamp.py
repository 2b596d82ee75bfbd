"""clamp: ``y = min(max(x, act_min), act_max)`` elementwise (a ReLU that could not be fused into a requant)."""

from ._attrs import CLAMP
from ._opdef import OpDef
from ._shapes import same_as_input

OP = OpDef(name="clamp", summary="elementwise min/max (a ReLU, ReLU6 or Hardtanh not fused into a requant)",
           definition="docs/numerics.md#clamp", n_inputs=1, attrs=dict(CLAMP), shape=same_as_input, elementwise=True)
