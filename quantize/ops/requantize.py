"""requantize: ``y = clamp(R(x - input_zp; multiplier, shift) + output_zp)`` elementwise."""

from ._attrs import MULTIPLIER, REQUANT, SHIFT
from ._opdef import OpDef
from ._shapes import same_as_input

OP = OpDef(
    name="requantize", summary="rescale a tensor to another scale / zero point / width",
    definition="docs/numerics.md#requantize", n_inputs=1, attrs={"multiplier": MULTIPLIER, "shift": SHIFT, **REQUANT},
    shape=same_as_input, elementwise=True)
