"""What conv2d and dense share: their parameters and their accumulator bound."""

from ..bounds import Bound, weighted_bound
from ..names import WEIGHT_DTYPES

# weight: int8 (or int16) per-output-channel symmetric; bias int32 at scale s_in*s_w; one requant (b, c) per channel
WEIGHTED_PARAMS = {"weight": WEIGHT_DTYPES, "bias": ("int32",), "multiplier": ("int32",), "shift": ("int32",)}


def accumulator_bounds(model, node, producers=None) -> list[Bound]:
    """``max_oc (sum |w[oc]| * max|x - zp| + |bias[oc]|)`` over every input the input's bits allow."""
    return [Bound("int32 accumulator", weighted_bound(model, node))]
