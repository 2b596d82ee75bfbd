"""zero_insert: ``stride - 1`` copies of ``pad_value`` (the input zero point: real 0) between neighbouring pixels
of an (H, W, C) image, and ``extra`` (bottom, right) rows/columns of ``pad_value`` after the last:
``y[oy, ox, c] = x[oy / sh, ox / sw, c]`` where ``oy % sh == 0`` and ``oy < (H - 1) * sh + 1`` (likewise ox), else
``pad_value``. Data movement: same scale, zero point and width in and out. With the stride-1 conv2d after it, this
is a ConvTranspose2d (quantize/rewrite.py)."""

from ._attrs import INT, Attr, PAIR
from ._opdef import OpDef
from ._shapes import of_rank

EXTRA = Attr("ints", 0, 2**16, length=2)


def shape(attrs, in_shapes, params):
    h, w, c = of_rank(in_shapes[0], 3, "zero_insert input (H, W, C)")
    (sh, sw), (eh, ew) = attrs["stride"], attrs["extra"]
    return ((h - 1) * sh + 1 + eh, (w - 1) * sw + 1 + ew, c)


OP = OpDef(name="zero_insert", summary="zeros (the zero point) between an image's pixels, for transposed convolution",
           definition="docs/ops.md#zero_insert", n_inputs=1,
           attrs={"stride": PAIR, "extra": EXTRA, "pad_value": INT}, shape=shape)
