"""adaptive_avgpool (PyTorch ``AdaptiveAvgPool2d`` with windows that need not divide the input): output
``(oy, ox)`` of an (H, W, C) image averages rows ``[floor(oy*H/OH), ceil((oy+1)*H/OH))`` and columns
``[floor(ox*W/OW), ceil((ox+1)*W/OW))``, PyTorch's window rule; the sum (int32: the shape rule keeps ``H*W`` below
2^16, so ``|sum| < 2^16 * 2^15 = 2^31``) is divided by the window's size rounding half away from zero, as
``avgpool`` does, then clamped. Input and output share scale and zero point."""

from ._attrs import CLAMP, PAIR
from ._opdef import OpDef
from ._shapes import of_rank

MAX_TAPS = 2**16 - 1   # H*W: the int32 sum of int16 values cannot overflow


def shape(attrs, in_shapes, params):
    h, w, c = of_rank(in_shapes[0], 3, "adaptive_avgpool input (H, W, C)")
    if h * w > MAX_TAPS:
        raise ValueError(f"input of {h}x{w} positions: the window sum could exceed int32 (at most {MAX_TAPS})")
    oh, ow = attrs["output_size"]
    return (oh, ow, c)


OP = OpDef(name="adaptive_avgpool", summary="2-D average pooling to a given output size (PyTorch's uneven windows)",
           definition="docs/numerics.md#adaptive_avgpool", n_inputs=1, attrs={"output_size": PAIR, **CLAMP},
           shape=shape)
