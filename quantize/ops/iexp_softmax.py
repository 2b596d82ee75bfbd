"""iexp_softmax (I-BERT softmax): I-BERT's second-order polynomial exp of ``x - max`` per row, normalised by one
integer division per row to ``norm_bits``-bit probabilities."""

from ._attrs import FLAG, IEXP, NORM_BITS
from ._opdef import OpDef
from ._shapes import same_as_input
from ._softmax import softmax_bounds

OP = OpDef(name="iexp_softmax", summary="integer softmax with I-BERT's polynomial exp",
           definition="docs/transformer-ops.md#softmax-normalisation-shared-by-shiftmax-iexp_softmax", n_inputs=1,
           attrs={**IEXP, "norm_bits": NORM_BITS, "masked": FLAG}, shape=same_as_input, bounds=softmax_bounds,
           probabilities=True)
