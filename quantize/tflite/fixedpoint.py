"""gemmlowp's fixed-point arithmetic, as TensorFlow Lite's integer SOFTMAX, LOGISTIC and TANH use it.

Transcribed from gemmlowp ``fixedpoint/fixedpoint.h`` (``SaturatingRoundingDoublingHighMul``,
``RoundingDivideByPOT``, ``SaturatingRoundingMultiplyByPOT``, ``exp_on_negative_values``,
``one_over_one_plus_x_for_x_in_0_1``) and TensorFlow Lite ``kernels/internal/common.h`` (``GetReciprocal``) and
``quantization_util.cc`` (``PreprocessSoftmaxScaling``, ``CalculateInputRadius``); see docs/sources.md.

A ``FixedPoint<int32, I>`` value is its raw int32 ``r`` meaning ``r / 2^(31 - I)``. Every function takes and
returns raw int32 values held in Python or int64 integers; every intermediate fits int64. The functions are
``register_jitable``: plain Python at import time (the tables the importer builds) and inlined into the Numba
kernels of hwsim. No float is read.
"""

from __future__ import annotations

import math

from numba.extending import register_jitable

from ..dyadic import frexp_multiplier

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@register_jitable
def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul: ``a*b / 2^31`` rounded to nearest, ties toward +inf (gemmlowp's nudge
    of ``2^30`` or ``1 - 2^30`` before a truncating division), saturating only for ``a = b = -2^31``."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    return (a * b + (1 << 30)) >> 31   # = gemmlowp's (ab + nudge) / 2^31 truncated, for either sign of ab


@register_jitable
def rdbpot(x, exponent):
    """RoundingDivideByPOT: ``x / 2^exponent`` to nearest, ties away from zero (0 <= exponent <= 31)."""
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


@register_jitable
def saturating_shift_left(x, exponent):
    """SaturatingRoundingMultiplyByPOT with an exponent >= 0: ``x * 2^exponent`` saturated to int32."""
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


@register_jitable
def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a Q0.31 ``a`` in [-1/4, 0): Taylor series around -1/8, result Q0.31."""
    constant_term = 1895147668        # exp(-1/8)
    constant_1_over_3 = 715827883
    x = a + (1 << 28)                 # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


# exp(-2^k) in Q0.31 for k = -2 .. 4 (gemmlowp's barrel shifter constants)
EXP_OF_MINUS_POWERS_OF_TWO = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


@register_jitable
def exp_on_negative_values(a, integer_bits):
    """exp(a) for a raw ``a <= 0`` in Q``integer_bits``.(31 - integer_bits); result Q0.31 (2^31 - 1 for a = 0).

    The fractional part modulo 1/4 goes through the Taylor series, each set bit of the rest multiplies by
    exp(-2^k); below -32 the result is 0 (only when ``integer_bits > 5``)."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = a_mod_quarter_minus_one_quarter - a
    for k in range(-2, 5):
        if integer_bits > k and (remainder & (1 << (fractional_bits + k))) != 0:
            result = srdhm(result, EXP_OF_MINUS_POWERS_OF_TWO[k + 2])
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):   # below -32
        result = 0
    if a == 0:
        result = INT32_MAX
    return result


@register_jitable
def one_over_one_plus_x_for_x_in_0_1(a):
    """1 / (1 + a) for a Q0.31 ``a`` in [0, 1): three Newton-Raphson steps in Q2.29 from 48/17 - 32/17 d
    (d = (1 + a) / 2); result Q0.31."""
    half_denominator = (a + INT32_MAX + 1) >> 1       # RoundingHalfSum(a, 1): a + INT32_MAX >= 0 here
    x = 1515870810 + srdhm(half_denominator, -1010580540)
    for _ in range(3):
        one_minus_half_denominator_times_x = (1 << 29) - srdhm(half_denominator, x)
        x = x + saturating_shift_left(srdhm(x, one_minus_half_denominator_times_x), 2)
    return saturating_shift_left(x, 1)


@register_jitable
def count_leading_zeros32(x):
    """Leading zero bits of ``x`` as a uint32 (32 for 0)."""
    n = 0
    bit = 1 << 31
    while n < 32 and (x & bit) == 0:
        n += 1
        bit >>= 1
    return n


@register_jitable
def reciprocal(x, integer_digits):
    """GetReciprocal of a positive raw ``x`` in Q``integer_digits``: returns ``(scale, bits_over_unit)`` with
    ``1/x = scale / 2^31 / 2^bits_over_unit`` (``scale`` Q0.31)."""
    headroom_plus_one = count_leading_zeros32(x)
    bits_over_unit = integer_digits - headroom_plus_one
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), bits_over_unit


def round_half_away(v: float) -> int:
    """std::round / roundf / TfLiteRound of a float: to nearest, ties away from zero (exact: ``a - floor(a)`` is
    representable, so no ``+ 0.5`` double rounding, which would send 0.49999999999999994 to 1)."""
    a = abs(float(v))
    whole = math.floor(a)
    n = whole + (1 if a - whole >= 0.5 else 0)
    return -n if float(v) < 0 else n


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplierGreaterThanOne: ``real = m / 2^31 * 2^left_shift`` with ``m`` in
    [2^30, 2^31) and ``left_shift >= 0`` (``real >= 1``)."""
    m, e = frexp_multiplier(real)
    if e < 0:
        raise ValueError(f"multiplier {real!r} is below 1")
    return m, e


def softmax_input_scaling(beta: float, input_scale: float, integer_bits: int = 5) -> tuple[int, int, int]:
    """TFLite's int8 softmax preparation: ``(input_multiplier, input_left_shift, diff_min)``.

    ``PreprocessSoftmaxScaling``: ``min(beta * s_in * 2^(31 - integer_bits), 2^31 - 1)`` in float64 as a
    multiplier greater than one; ``CalculateInputRadius``: ``diff_min = -floor((2^integer_bits - 1) *
    2^(31 - integer_bits) / 2^left_shift)``."""
    real = min(beta * input_scale * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier_greater_than_one(real)
    radius = math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift))
    return multiplier, left_shift, -radius


@register_jitable
def one_minus_x_over_one_plus_x_for_x_in_0_1(a):
    """(1 - a) / (1 + a) for a Q0.31 ``a`` in [0, 1): the Newton-Raphson of :func:`one_over_one_plus_x_for_x_in_0_1`,
    then ``x - 1`` rescaled from Q2.29 (result Q0.31)."""
    half_denominator = (a + INT32_MAX + 1) >> 1
    x = 1515870810 + srdhm(half_denominator, -1010580540)
    for _ in range(3):
        one_minus_half_denominator_times_x = (1 << 29) - srdhm(half_denominator, x)
        x = x + saturating_shift_left(srdhm(x, one_minus_half_denominator_times_x), 2)
    return saturating_shift_left(x - (1 << 29), 2)


def logistic(a: int, integer_bits: int) -> int:
    """gemmlowp ``logistic`` of a raw Q``integer_bits`` value: 1/2 at 0, ``1 / (1 + exp(-|a|))`` mirrored (Q0.31)."""
    if a == 0:
        return 1 << 30
    positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-abs(a), integer_bits))
    return positive if a > 0 else INT32_MAX - positive


def tanh(a: int, integer_bits: int) -> int:
    """gemmlowp ``tanh`` of a raw Q``integer_bits`` value: ``(1 - exp(-2|a|)) / (1 + exp(-2|a|))`` with the sign of
    ``a`` (Q0.31); ``exp(-2|a|)`` is exp of the same raw value read with one more integer bit."""
    if a == 0:
        return 0
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-abs(a), integer_bits + 1))
    return -t if a < 0 else t


def wrap32(x: int) -> int:
    """``x`` as C's int32 arithmetic leaves it (two's complement wrap-around)."""
    return ((x + 2**31) % 2**32) - 2**31


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier (double rounding): ``RDBPOT(SRDHM(x · 2^max(shift, 0), m),
    max(-shift, 0))``; the left shift wraps as TFLite's int32 does."""
    return rdbpot(srdhm(wrap32(x * (1 << max(shift, 0))), multiplier), max(-shift, 0))


def srdhm16(a: int, b: int) -> int:
    """gemmlowp's int16 SaturatingRoundingDoublingHighMul: ``a*b / 2^15`` to nearest, ties toward +inf."""
    if a == b == -(2**15):
        return 2**15 - 1
    n = a * b + ((1 << 14) if a * b >= 0 else 1 - (1 << 14))
    return n >> 15 if n >= 0 else -((-n) >> 15)      # C's truncating division by 2^15


def saturate16(x: int) -> int:
    return min(max(x, -(2**15)), 2**15 - 1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: ``real = m / 2^31 · 2^shift``, ``m`` in [2^30, 2^31) (0 for 0 or below
    2^-31)."""
    if real == 0.0:
        return 0, 0
    m, shift = frexp_multiplier(abs(real))     # std::round of a negative mantissa is the mirrored value
    if shift < -31:
        return 0, 0
    return (m if real > 0 else -m), shift
