"""lookup: ``y = table[x - input_min]`` elementwise. ``input_min`` is the smallest code of the input's bit range
(``-2^(bits-1)``) and ``table`` holds one output code (int8/int16, inside the output's range) for every input
code, so the kernel does no arithmetic besides the index. The lowering fills the table once, at quantization,
from the float function itself: ``table[q - input_min] = clamp(rint(f(s_x (q - zp_x)) / s_y) + zp_y)`` (rint
half to even), which is the best any integer kernel can do at those two scales; TensorFlow Lite's int8
TANH/LOGISTIC kernels also read a 256-entry table (tensorflow/lite/kernels/activations.cc). The validator
proves every index lies inside the table. Any elementwise function of one tensor lowers to it: Sigmoid, Tanh,
Hardswish, Hardsigmoid, SiLU, ELU, LeakyReLU, Softplus, Mish, GELU(approximate="tanh"), single-parameter PReLU.
A table costs ``2^bits`` entries: 256 at 8 bits, 65,536 (128 KiB) at 16."""

from ..bounds import Bound
from ..names import WEIGHT_DTYPES
from ._attrs import Attr
from ._opdef import OpDef
from ._shapes import same_as_input


def bounds(model, node, producers=None):
    lo, hi = model.tensors[node.inputs[0]].qrange()
    start, size = node.attrs["input_min"], model.param(node, "table").size
    return [Bound("x - input_min (>= 0)", start - lo, 0), Bound("x - input_min (< table size)", hi - start, size - 1)]


def shape(attrs, in_shapes, params):
    if len(params["table"]) != 1:
        raise ValueError(f"lookup table has shape {tuple(params['table'])}, expected one dimension")
    return same_as_input(attrs, in_shapes, params)


OP = OpDef(name="lookup", summary="elementwise function as a table of output codes, one per input code",
           definition="docs/ops.md#lookup", n_inputs=1, attrs={"input_min": Attr("int", -2**15, 0)},
           params={"table": WEIGHT_DTYPES}, shape=shape, bounds=bounds, elementwise=True, copies_param="table")
