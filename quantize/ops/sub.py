"""sub (TFLite SUB): ``add``'s definition with the rescaled inputs subtracted, ``y = clamp(R(s_a - s_b; b_o, c_o) +
zp_o)`` (docs/numerics.md#add); its attributes, shape rule and bounds are add's (``|s_a| + |s_b|`` bounds the
difference too). Subtracting after the rounding of ``s_b`` is what TFLM does; negating ``x_b`` first and adding
would round ties of ``s_b`` the other way."""

from .add import OP as ADD
from ._opdef import OpDef

OP = OpDef(name="sub", summary="elementwise difference at a common intermediate scale (TFLite SUB)",
           definition="docs/numerics.md#add", n_inputs=2, attrs=ADD.attrs, shape=ADD.shape, bounds=ADD.bounds,
           elementwise=True)
