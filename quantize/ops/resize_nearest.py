"""resize_nearest: ``y[oy, ox, c] = x[oy // scale_h, ox // scale_w, c]`` on an HWC image, for integer scale
factors: nearest-neighbour upsampling (data movement: same scale, zero point and width in and out). This is what
PyTorch's ``mode="nearest"`` and ``"nearest-exact"`` compute for an output an integer multiple of the input
(source index ``floor(dst / k)``, and ``floor((dst + 0.5) / k)`` which equals it for integer k)."""

from ._attrs import PAIR
from ._opdef import OpDef
from ._shapes import of_rank


def shape(attrs, in_shapes, params):
    h, w, c = of_rank(in_shapes[0], 3, "resize_nearest input")
    sh, sw = attrs["scale"]
    return (h * sh, w * sw, c)


OP = OpDef(name="resize_nearest", summary="nearest-neighbour upsampling of an image by integer factors",
           definition="docs/ops.md#resize_nearest", n_inputs=1, attrs={"scale": PAIR}, shape=shape)
