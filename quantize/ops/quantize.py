"""quantize: the graph's float input to integers, ``q = clamp(round_half_even(x / scale) + zp)`` on the output
tensor's bit range, with an optional axis permutation (CHW images become HWC)."""

from ._attrs import PERM
from ._opdef import OpDef
from ._shapes import permuted

OP = OpDef(
    name="quantize", summary="float graph input -> integer tensor (and CHW -> HWC for images)",
    definition="docs/numerics.md#quantization", n_inputs=1, attrs={"perm": PERM}, shape=permuted, integer=False,
    declines={"c": "runs where the float input is: the generated model_run() takes the quantize node's integer "
                   "output"})
