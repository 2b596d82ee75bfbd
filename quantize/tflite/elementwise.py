"""TFLite's int8 elementwise builtins as tables: each function here is TFLM's reference kernel for one input code
(written out from ``tensorflow/lite/kernels/internal/reference`` and the ``Prepare`` of ``tensorflow/lite/micro/
kernels``; see docs/sources.md), so evaluating it on all 256 codes gives the exact table the IR's ``lookup`` op
applies. Scales are float32 and every derived ratio is formed as TFLM forms it (float32 or float64, noted)."""

from __future__ import annotations

import math

import numpy as np

from .fixedpoint import (logistic, multiply_by_quantized_multiplier, quantize_multiplier, rdbpot, round_half_away,
                         saturate16, srdhm16, tanh)
from .lut16 import SIGMOID_TABLE_UINT16, checked_log2

F32 = np.float32
INT8 = (-128, 127)


def _radius_multiplier(input_scale: float, integer_bits: int) -> tuple[int, int, int]:
    """LOGISTIC / TANH Prepare: ``(multiplier, left_shift, range_radius)`` from ``frexp(s_in · 2^(31 - bits))``."""
    q, left_shift = math.frexp(float(F32(input_scale)) * (1 << (31 - integer_bits)))
    multiplier = int(math.floor(q * 2**31 + 0.5))
    radius = math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift))
    return multiplier, left_shift, radius


def _saturating_unit(s_in: float, zp_in: int, function, output_shift: int, output_zp: int):
    """The shape TFLite's int8 LOGISTIC and TANH share: -128 / 127 outside the input radius, else ``function`` of
    the input rescaled to Q4.27, ``RDBPOT(·, output_shift) + output_zp`` clamped to int8."""
    multiplier, shift, radius = _radius_multiplier(s_in, 4)

    def f(q: int) -> int:
        x = q - zp_in
        if x <= -radius:
            return -128
        if x >= radius:
            return 127
        y = rdbpot(function(multiply_by_quantized_multiplier(x, multiplier, shift), 4), output_shift) + output_zp
        return min(max(y, -128), 127)
    return f


def logistic_int8(s_in: float, zp_in: int):
    """reference_integer_ops::Logistic (int8): gemmlowp logistic, ``RDBPOT(·, 23) - 128``; the output is read at
    scale 1/256, zero point -128."""
    return _saturating_unit(s_in, zp_in, logistic, 23, -128)


def tanh_int8(s_in: float, zp_in: int):
    """reference_integer_ops::Tanh (int8): gemmlowp tanh, ``RDBPOT(·, 24)``; the output is read at scale 1/128,
    zero point 0."""
    return _saturating_unit(s_in, zp_in, tanh, 24, 0)


def _sigmoid_table_scaling(s_in: float, s_out: float, zp_in: int, zp_out: int, pot_shifts: tuple[int, ...]):
    """int16 LOGISTIC / TANH Prepare: ``(multiplier, right_shift)`` that bring an input code to the sigmoid table's
    unit of 1/(3 · 4096). Zero points must be 0 and the output scale 2^-15. A power-of-two input scale whose shift
    ``12 + log2(s_in)`` is in ``pot_shifts`` uses ``(3 · 2^shift, 0)`` (the kernels' power-of-two case); any other
    scale doubles the float64 ``s_in · 4096 · 3`` while it is at most 32767 / 2 (at most 31 times) and truncates."""
    if zp_in != 0 or zp_out != 0:
        raise ValueError(f"zero points {zp_in} (input) and {zp_out} (output); TFLite's int16 LOGISTIC and TANH "
                         "take zero point 0")
    out_pot, out_log2 = checked_log2(s_out)
    if not out_pot or out_log2 != -15:
        raise ValueError(f"output scale {s_out}; TFLite's int16 LOGISTIC and TANH write scale 2^-15")
    pot, log2 = checked_log2(s_in)
    if pot and 12 + log2 in pot_shifts:
        return 3 << (12 + log2), 0
    multiplier, right_shift = float(F32(s_in)) * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and right_shift <= 30:
        right_shift, multiplier = right_shift + 1, multiplier * 2.0
    if not 1 <= int(multiplier) <= 32767:
        raise ValueError(f"input scale {s_in} gives the int16 sigmoid multiplier {int(multiplier)}, outside TFLite's "
                         "1..32767")
    return int(multiplier), right_shift


def _sigmoid_table_input(q: int, multiplier: int, right_shift: int) -> int:
    """The input code in units of 1/(3 · 4096): ``(q · m + 2^(shift - 1)) >> shift`` (|q · m| < 2^30)."""
    return (q * multiplier + ((1 << right_shift) >> 1)) >> right_shift


def _sigmoid_table_at(a: int, unit_bits: int, saturated: int) -> int:
    """``a >= 0`` interpolated in ``sigmoid_table_uint16`` at ``2^unit_bits`` units per entry:
    ``(T[u] << unit_bits) + (a mod 2^unit_bits) · (T[u+1] - T[u])``, or ``saturated`` from entry 255 on."""
    u, frac = a >> unit_bits, a & ((1 << unit_bits) - 1)
    if u >= 255:
        return saturated
    low, high = int(SIGMOID_TABLE_UINT16[u]), int(SIGMOID_TABLE_UINT16[u + 1])
    return (low << unit_bits) + frac * (high - low)


def logistic_int16(s_in: float, zp_in: int, s_out: float, zp_out: int):
    """reference_integer_ops::Logistic (int16): ``|x|`` interpolated in ``sigmoid_table_uint16`` at 512 units per
    entry (``(T[u] << 9) + (|x| mod 512) · (T[u+1] - T[u])``, saturated to ``0x7FFF << 10`` from entry 255), mirrored
    for ``x < 0`` as ``2^25 - r + 511``, plus 512, ``>> 10``: Q0.15 in [0, 32767]."""
    multiplier, right_shift = _sigmoid_table_scaling(s_in, s_out, zp_in, zp_out, (0,))

    def f(q: int) -> int:
        x = _sigmoid_table_input(q, multiplier, right_shift)
        r = _sigmoid_table_at(abs(x), 9, 0x7FFF << 10)
        return (r + (1 << 9) if x >= 0 else (1 << 25) - r + (1 << 9) - 1) >> 10
    return f


def tanh_int16(s_in: float, zp_in: int, s_out: float, zp_out: int):
    """reference_integer_ops::Tanh (int16), ``tanh(x) = 2 sigmoid(2x) - 1`` on the same table at 256 units per entry
    (saturated to ``0xFFFF << 8``), ``r - 2^23 + 128`` for ``x >= 0`` and ``2^23 - r + 127`` below, ``>> 8``
    (arithmetic): Q0.15 in [-32767, 32767]."""
    multiplier, right_shift = _sigmoid_table_scaling(s_in, s_out, zp_in, zp_out, (0, 1))

    def f(q: int) -> int:
        x = _sigmoid_table_input(q, multiplier, right_shift)
        r = _sigmoid_table_at(abs(x), 8, 0xFFFF << 8)
        return (r - (1 << 23) + (1 << 7) if x >= 0 else -r + (1 << 23) + (1 << 7) - 1) >> 8
    return f


def relu(s_in: float, zp_in: int, s_out: float, zp_out: int, out_range=INT8):
    """ReluQuantized (RELU, int8 or int16): ``zp_out + MBQM(q - zp_in)`` with the multiplier of
    ``double(s_in) / double(s_out)`` (the ratio formed in double, as the tflite-micro wheel computes it: the source
    at 90b983c2 reads as a float32 division, which differs in the last bits and shows on int16 codes), clamped to
    ``[zp_out + roundf(0 / s_out), type max]`` within the type."""
    multiplier, shift = quantize_multiplier(float(F32(s_in)) / float(F32(s_out)))
    lo = max(out_range[0], zp_out + round_half_away(F32(0.0) / F32(s_out)))
    hi = out_range[1]

    def f(q: int) -> int:
        return min(max(zp_out + multiply_by_quantized_multiplier(q - zp_in, multiplier, shift), lo), hi)
    return f


def relu6(s_in: float, zp_in: int, out_range=INT8):
    """Relu6Quantized (int8 or int16): ``clamp(q, zp_in, zp_in + round(6 / s_in))`` on the input's own codes (TFLM
    reads no output quantization)."""
    six = min(max(round_half_away(F32(6.0) / F32(s_in)) + zp_in, out_range[0]), out_range[1])

    def f(q: int) -> int:
        return min(max(q, zp_in), six)
    return f


def leaky_relu(s_in: float, zp_in: int, s_out: float, zp_out: int, alpha: float, out_range=INT8):
    """reference_ops::QuantizeLeakyRelu (int8 or int16): ``zp_out + MBQM(x, identity)`` for ``x = q - zp_in >= 0``,
    else ``zp_out ± MBQM(x, |alpha|)``; multipliers of ``s_in · alpha / s_out`` and ``s_in / s_out`` formed in double,
    as the tflite-micro wheel does (see :func:`relu`); clamped to the type."""
    m_alpha, shift_alpha = quantize_multiplier(float(F32(s_in)) * float(F32(alpha)) / float(F32(s_out)))
    m_identity, shift_identity = quantize_multiplier(float(F32(s_in)) / float(F32(s_out)))
    negative = m_alpha < 0

    def f(q: int) -> int:
        x = q - zp_in
        if x >= 0:
            y = zp_out + multiply_by_quantized_multiplier(x, m_identity, shift_identity)
        else:
            scaled = multiply_by_quantized_multiplier(x, abs(m_alpha), shift_alpha)
            y = zp_out + (-scaled if negative else scaled)
        return min(max(y, out_range[0]), out_range[1])
    return f


def requantize(s_in: float, zp_in: int, s_out: float, zp_out: int, out_range=INT8):
    """QUANTIZE of an integer tensor (reference_ops::Requantize, int8/int16 in and out): ``zp_out + MBQM(q - zp_in)``
    with the multiplier of ``double(s_in) / double(s_out)``, clamped to the output type."""
    multiplier, shift = quantize_multiplier(float(F32(s_in)) / float(F32(s_out)))

    def f(q: int) -> int:
        return min(max(zp_out + multiply_by_quantized_multiplier(q - zp_in, multiplier, shift), out_range[0]),
                   out_range[1])
    return f


def hard_swish_int8(s_in: float, zp_in: int, s_out: float, zp_out: int):
    """reference_ops::HardSwish (int8) with HardSwishPrepare's int16 multipliers: the input at 2^7 times its scale,
    a "relu-ish" factor in [0, 1] (x rescaled so that 3.0 is 2^15, saturating), multiplied without rounding
    (SaturatingDoublingHighMul), then rounded down to the output scale; all arithmetic int16 as TFLite's."""
    hires = F32(F32(1.0 / 128.0) * F32(s_in))
    out_m32, out_exp = quantize_multiplier(float(F32(hires / F32(s_out))))
    relu_m32, relu_exp = quantize_multiplier(float(F32(hires / F32(3.0 / 32768.0))))
    out_m16, relu_m16 = _down_scale_16(out_m32), _down_scale_16(relu_m32)
    if out_exp > 0:
        raise ValueError(f"output multiplier exponent {out_exp} > 0 (TFLite requires <= 0)")

    def f(q: int) -> int:
        x = q - zp_in
        hires_x = x * (1 << 7)
        preshift = srdhm16(hires_x, out_m16)
        reluish = hires_x
        if relu_exp > 0:
            reluish = saturate16(reluish * (1 << (relu_exp - 1)))
        reluish = srdhm16(reluish, relu_m16)
        if relu_exp > 0:
            reluish = saturate16(reluish * 2)
        if relu_exp < 0:
            reluish = rdbpot(reluish, -relu_exp)
        reluish = (reluish + (1 << 15)) >> 1
        product = reluish * preshift
        preshift_output = product >> 15 if product >= 0 else -((-product) >> 15)   # truncating, no rounding
        y = rdbpot(preshift_output, -out_exp) + zp_out
        return min(max(y, -128), 127)
    return f


def _down_scale_16(m32: int) -> int:
    """DownScaleInt32ToInt16Multiplier: ``(m + 2^15) >> 16``, 32767 at the top."""
    return 2**15 - 1 if m32 >= 2**31 - 1 - 2**15 else (m32 + (1 << 15)) >> 16


def table(f, in_bits: int, out_dtype) -> np.ndarray:
    """``f`` on every code of an ``in_bits`` input, the lowest first (the ``lookup`` op's table with ``input_min =
    -2^(in_bits-1)``)."""
    return np.array([f(q) for q in range(-(1 << (in_bits - 1)), 1 << (in_bits - 1))], dtype=out_dtype)
