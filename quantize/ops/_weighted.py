"""What conv2d and dense share: their parameters, their accumulator bound, and TFLite's 16x8 form.

The bias decides the accumulator and the requantization:

* **int32 bias** (every int8 layer, and any layer intonly quantizes by default): an int32 accumulator (proven) and
  the model's requantization ``R(acc; b, c)`` in its rounding mode (docs/numerics.md).
* **int64 bias**: TensorFlow Lite's 16x8 layer (int16 input, int8 weights; TFLM's ``ConvPerChannel`` /
  ``DepthwiseConvPerChannel`` / ``FullyConnected`` with an int64 bias, CMSIS-NN's ``arm_nn_requantize_s64``): an
  int64 accumulator, which TFLite assumes below 2^47 (proven here), and TFLite's 64-bit
  ``MultiplyByQuantizedMultiplier`` whatever the model's rounding: the multiplier reduced to 16 bits,
  ``rm = b < 0x7FFF0000 ? (b + 2^15) >> 16 : 0x7FFF``, then one rounding, ``(acc·rm + 2^(c-17)) >> (c - 16)``
  (ties toward +inf). TFLite requires its shift <= 7, i.e. ``c >= 24`` here (proven).
"""

import numpy as np

from ..bounds import Bound, weighted_bound
from ..names import WEIGHT_DTYPES

# weight: int8 (or int16) per-output-channel symmetric; bias at scale s_in*s_w; one requant (b, c) per channel
WEIGHTED_PARAMS = {"weight": WEIGHT_DTYPES, "bias": ("int32", "int64"), "multiplier": ("int32",),
                   "shift": ("int32",)}
ACCUMULATOR_64_LIMIT = 2**47 - 1   # TFLite's stated range of the 16x8 accumulator
MIN_SHIFT_16X8 = 24                # TFLite's 16x8 requant shift <= 7, as c = 31 - shift


def is_16x8(model, node) -> bool:
    """The layer is TFLite's 16x8 form: an int64 bias."""
    return model.param(node, "bias").dtype == np.int64


def accumulator_bounds(model, node, producers=None) -> list[Bound]:
    """``max_oc (sum |w[oc]| * max|x - zp| + |bias[oc]|)`` over every input the input's bits allow, below 2^31
    (int32 bias) or 2^47 (int64 bias: also int16 input, int8 weights and every shift >= 24)."""
    if not is_16x8(model, node):
        return [Bound("int32 accumulator", weighted_bound(model, node))]
    not_16x8 = int(model.tensors[node.inputs[0]].dtype != "int16" or model.param(node, "weight").dtype != np.int8)
    lowest = int(model.param(node, "shift").min(initial=MIN_SHIFT_16X8))
    return [Bound("int64 accumulator of a 16x8 layer (TFLite: below 2^47)", weighted_bound(model, node),
                  ACCUMULATOR_64_LIMIT),
            Bound("an int64 bias on a layer other than int16 input x int8 weights", not_16x8, 0),
            Bound(f"{MIN_SHIFT_16X8} - shift of a 16x8 requant (TFLite: shift <= 7)", max(0, MIN_SHIFT_16X8 - lowest),
                  0)]
