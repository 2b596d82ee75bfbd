"""resize_bilinear (TFLite's integer RESIZE_BILINEAR, ``reference_ops::ResizeBilinearInteger``): on an (H, W, C)
image, per axis a 10-bit fixed-point source coordinate ``s = o * scale_10`` (``+ scale_10 / 2 - 512`` with
``half_pixel_centers``), ``scale_10 = (1024 * in + out / 2) / out`` (``align_corners``: ``(1024 * (in - 1) +
(out - 1) / 2) / (out - 1)``), neighbours ``i0 = max(s / 1024, 0)``, ``i1 = min((s + 1023) / 1024, in - 1)``
(C division, truncating), weights ``d = s - 1024 * i0`` and ``1024 - d``; the int64 sum of the four stored values
times their weight products (2^20 in all) is divided by 2^20 rounding half away from zero. Weights summing to one
keep the scale and zero point: same quantization in and out. PyTorch's ``mode="bilinear"`` with
``align_corners=False`` is ``half_pixel_centers``; it is equal to this wherever ``in / out`` is a multiple of
2^-10 (integer upscaling factors that are powers of two), else within the 10-bit coordinate rounding."""

from ._attrs import FLAG, PAIR
from ._opdef import OpDef
from ._shapes import of_rank


def scale_10(size_in: int, size_out: int, align_corners: int) -> int:
    """The 10-bit fixed-point source step of one axis (TFLite's ``height_scale_10`` / ``width_scale_10``)."""
    if align_corners and size_out > 1:
        return ((1 << 10) * (size_in - 1) + (size_out - 1) // 2) // (size_out - 1)
    return ((1 << 10) * size_in + size_out // 2) // size_out


def shape(attrs, in_shapes, params):
    _, _, c = of_rank(in_shapes[0], 3, "resize_bilinear input (H, W, C)")
    if attrs["half_pixel_centers"] and attrs["align_corners"]:
        raise ValueError("half_pixel_centers and align_corners exclude each other")
    oh, ow = attrs["size"]
    return (oh, ow, c)


OP = OpDef(name="resize_bilinear", summary="bilinear resize of an image (TFLite's integer RESIZE_BILINEAR)",
           definition="docs/ops.md#resize_bilinear", n_inputs=1,
           attrs={"size": PAIR, "half_pixel_centers": FLAG, "align_corners": FLAG}, shape=shape)
