"""shiftmax (I-ViT Shiftmax): a base-2 exp by shifts of ``x - max`` per row, normalised by one integer division
per row to ``norm_bits``-bit probabilities (masked: a row may hold masked keys)."""

from ._attrs import SHIFT_COUNT, FLAG, NORM_BITS, Q_MAX, X0
from ._opdef import OpDef
from ._shapes import same_as_input
from ._softmax import softmax_bounds

OP = OpDef(name="shiftmax", summary="integer softmax by shifts (I-ViT Shiftmax)",
           definition="docs/transformer-ops.md#softmax-normalisation-shared-by-shiftmax-iexp_softmax", n_inputs=1,
           attrs={"x0": X0, "n": SHIFT_COUNT, "q_max": Q_MAX, "norm_bits": NORM_BITS, "masked": FLAG},
           shape=same_as_input, bounds=softmax_bounds, probabilities=True)
