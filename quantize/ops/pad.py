"""pad: the input inside a border of ``value`` (TFLite PAD / PADV2): ``pads`` holds, per axis, the elements
before then after it (``[b0, a0, b1, a1, ...]``); ``value`` is a code of the output's range (TFLite's PAD pads
with the output zero point). Data movement: same quantization in and out."""

from ..bounds import Bound
from ._attrs import Attr, INT
from ._opdef import OpDef

MAX_PAD_RANK = 4   # the C kernel's loop nest


def shape(attrs, in_shapes, params):
    (x,) = in_shapes
    pads = attrs["pads"]
    if len(pads) != 2 * len(x) or len(x) > MAX_PAD_RANK:
        raise ValueError(f"pads {pads} do not give a before and an after for each of the {len(x)} axes "
                         f"(rank <= {MAX_PAD_RANK})")
    return tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(x))


def bounds(model, node, producers=None):
    """``value`` must be a code of the output's range (it is stored there unchanged)."""
    lo, hi = model.tensors[node.outputs[0]].qrange()
    value = node.attrs["value"]
    return [Bound(f"pad value {value} outside the output range [{lo}, {hi}]", max(lo - value, value - hi, 0), 0)]


OP = OpDef(name="pad", summary="constant border around a tensor (data movement)", definition="docs/ops.md#pad",
           n_inputs=1, attrs={"pads": Attr("ints", 0, 2**16), "value": INT}, shape=shape, bounds=bounds)
