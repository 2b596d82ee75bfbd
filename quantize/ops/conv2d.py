"""conv2d: ``acc = bias[oc] + sum w * (x - input_zp)`` over the in-bounds taps of an (H, W, C) input with OHWI
weights (stride, dilation, groups; padding contributes 0), then one requant per output channel and the clamp."""

from ._attrs import Attr, PADDING, PAIR, REQUANT
from ._opdef import OpDef
from ._shapes import of_rank, window_out
from ._weighted import WEIGHTED_PARAMS, accumulator_bounds


def shape(attrs, in_shapes, params):
    h, w, c = of_rank(in_shapes[0], 3, "conv2d input (H, W, C)")
    oc, kh, kw, icg = of_rank(params["weight"], 4, "conv2d weight (OC, KH, KW, IC/groups)")
    g = attrs["groups"]
    sh, sw = attrs["stride"]
    pt, pl, pb, pr = attrs["padding"]
    dh, dw = attrs["dilation"]
    if g < 1 or c % g or oc % g or icg != c // g:
        raise ValueError(f"weight {params['weight']} and groups={g} do not fit {c} input channels")
    return (window_out(h, kh, sh, pt, pb, dh), window_out(w, kw, sw, pl, pr, dw), oc)


def macs(model, node) -> int:
    """Every tap of every output, padding included (hwsim's work row counts the executed, in-bounds ones)."""
    oh, ow, oc = model.tensors[node.outputs[0]].shape
    _, kh, kw, icg = model.param(node, "weight").shape
    return oh * ow * oc * kh * kw * icg


OP = OpDef(
    name="conv2d", summary="2-D convolution (groups, depthwise), int32 accumulator, per-channel requant",
    definition="docs/numerics.md#conv2d", n_inputs=1,
    attrs={"stride": PAIR, "padding": PADDING, "dilation": PAIR, "groups": Attr("int", 1, 2**16), **REQUANT},
    params=WEIGHTED_PARAMS, shape=shape, macs=macs, bounds=accumulator_bounds)
