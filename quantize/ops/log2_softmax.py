"""log2_softmax (FQ-ViT log-int-softmax): the i-exp row sum, then per element the code ``round(log2(sum / e))``
in ``code_bits`` bits (code c means 2^-c; the all-ones code past the top means exactly 0)."""

from ._attrs import CODE_BITS, FLAG, IEXP
from ._opdef import OpDef
from ._shapes import same_as_input
from ._softmax import softmax_bounds

OP = OpDef(name="log2_softmax", summary="softmax as log2 codes (FQ-ViT log-int-softmax)",
           definition="docs/transformer-ops.md#log2_softmax-fq-vit-log-int-softmax", n_inputs=1,
           attrs={**IEXP, "masked": FLAG, "code_bits": CODE_BITS}, shape=same_as_input, bounds=softmax_bounds)
