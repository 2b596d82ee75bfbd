"""One name for each value the packages share: rounding modes, integer dtypes, cost-model op classes.

Everything that lists, parses or dispatches on one of these imports it from here (the CLI's choices, the config
and IR validators, hwsim's mode ids, the target loader, the C templates' per-mode macros, the work rows).
"""

# Requantization rounding modes, in the order of their ids (hwsim passes the id to its Numba kernels; the C
# templates define one macro per name). Exact definitions: docs/numerics.md, "Dyadic requantization".
ROUNDING_MODES = ("half_up", "double", "half_even")
ROUNDING_IDS = {name: i for i, name in enumerate(ROUNDING_MODES)}
DEFAULT_ROUNDING = "half_up"

# Integer tensor dtypes, and the ones an activation may have (its ``bits`` <= 16 are stored in the narrowest).
INT_DTYPES = ("int8", "int16", "int32")
CONSTANT_DTYPES = INT_DTYPES + ("int64",)  # int64: the bias of a TFLite 16x8 layer (quantize/ops/_weighted.py)
ACT_DTYPES = ("int8", "int16")
WEIGHT_DTYPES = ("int8", "int16")  # weights and embedding tables: int8, or int16 above 8 bits
DTYPE_RANGE = {"int8": (-128, 127), "int16": (-32768, 32767), "int32": (-2**31, 2**31 - 1)}

# The op classes every target states a sustained throughput and an energy per operation for; hwsim's work rows
# (hwsim/ops/<op>.py ``work``) count each layer's operations in these classes.
INT8_CONV = "int8_conv"                  # multiply-accumulates of a dense (groups = 1) convolution
INT8_DEPTHWISE = "int8_depthwise"        # multiply-accumulates of a depthwise / grouped convolution
INT8_DENSE = "int8_dense"                # multiply-accumulates of fully connected layers and matrix products
INT32_ELEMENTWISE = "int32_elementwise"  # add, compare/clamp, requant multiply, zero-point/bias adds, pooling adds
SHIFT = "shift"                          # shift-and-add work of Shiftmax / ShiftGELU / log2 softmax, P·V by shifts
DIVIDE = "divide"                        # integer divisions and square-root iterations
EXP = "exp"                              # exp-like evaluations (i-exp, i-GELU polynomials) per element
OP_CLASSES = (INT8_CONV, INT8_DEPTHWISE, INT8_DENSE, INT32_ELEMENTWISE, SHIFT, DIVIDE, EXP)
