"""avgpool (TFLite AVERAGE_POOL_2D): the sum of the in-bounds taps (plus ``pad_value`` per padded tap with
``count_include_pad``) divided by the taps counted, rounded to nearest with ties away from zero, clamped."""

from ._attrs import CLAMP, FLAG, INT, WINDOW
from ._opdef import OpDef
from ._shapes import pooled

OP = OpDef(
    name="avgpool", summary="2-D average pooling, rounded to nearest (ties away from zero)",
    definition="docs/numerics.md#avgpool", n_inputs=1,
    attrs={**WINDOW, "count_include_pad": FLAG, "pad_value": INT, **CLAMP}, shape=pooled("avgpool"))
