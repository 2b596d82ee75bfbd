"""dequantize: an integer tensor to the graph's float output, ``x = scale * (q - zp)`` in float32, with an optional
axis permutation (HWC images become CHW)."""

from ._attrs import PERM
from ._opdef import OpDef
from ._shapes import permuted

OP = OpDef(
    name="dequantize", summary="integer tensor -> float graph output (and HWC -> CHW for images)",
    definition="docs/numerics.md#quantization", n_inputs=1, attrs={"perm": PERM}, shape=permuted, integer=False,
    declines={"c": "runs where the float output is used: the generated model_run() returns the integer tensor "
                   "the dequantize node reads"})
