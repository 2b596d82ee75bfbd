"""mean_pool: the mean over the token axis of the tokens whose mask is set, rounded to nearest."""

from ..bounds import Bound, span
from ._attrs import INT
from ._opdef import OpDef


def shape(attrs, in_shapes, params):
    x, mask = in_shapes
    if len(x) < 2 or mask != (x[-2],):
        raise ValueError(f"mean_pool mask {mask} does not match the token axis of {x}")
    return x[:-2] + x[-1:]


def bounds(model, node, producers=None):
    info = model.tensors[node.inputs[0]]
    return [Bound(f"sum over {info.shape[-2]} tokens", info.shape[-2] * span(model, node.inputs[0],
                                                                               node.attrs["input_zp"]))]


OP = OpDef(name="mean_pool", summary="masked mean over tokens (sentence embedding)",
           definition="docs/transformer-ops.md#embedding-constant-slice-mean_pool", n_inputs=2,
           attrs={"input_zp": INT, "output_zp": INT}, shape=shape, bounds=bounds)
