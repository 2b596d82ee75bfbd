"""transpose: the input's axes permuted by ``perm``."""

from ._attrs import PERM
from ._opdef import OpDef
from ._shapes import permuted

OP = OpDef(name="transpose", summary="permute axes (data movement)", definition="docs/numerics.md#transpose",
           n_inputs=1, attrs={"perm": PERM}, shape=permuted)
