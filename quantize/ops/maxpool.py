"""maxpool: the largest in-bounds tap of each (dilated) window; padding never wins."""

from ._attrs import PAIR, WINDOW
from ._opdef import OpDef
from ._shapes import pooled

OP = OpDef(
    name="maxpool", summary="2-D max pooling", definition="docs/numerics.md#maxpool", n_inputs=1,
    attrs={**WINDOW, "dilation": PAIR}, shape=pooled("maxpool"))
