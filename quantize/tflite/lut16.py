"""TensorFlow Lite's int16 lookup tables: the sigmoid table its int16 LOGISTIC and TANH interpolate, and the 513-entry
tables its int16 SOFTMAX interpolates (``LUTPopulate`` / ``LUTLookup``).

Sources (docs/sources.md): TensorFlow Lite ``kernels/internal/common.h`` (``sigmoid_table_uint16``,
``LUTPopulateInt16``, ``LUTLookup``) and ``quantization_util.cc`` (``CheckedLog2``), as vendored by tflite-micro.

The tables are built once, at import, in float32 exactly as TFLite's Prepare builds them: every product, sum and
quotient is a float32 operation (numpy float32 scalars are IEEE single), ``TfLiteRound`` is ``roundf`` (ties away
from zero), and ``std::exp`` / ``std::log`` of a float are taken correctly rounded to float32 (glibc's ``expf``
agrees on every point the SOFTMAX table samples; a microcontroller's libm, and so TFLM's own table there, may differ
in a last bit). The kernels that read the tables are integer only.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba.extending import register_jitable

from .fixedpoint import round_half_away

F32 = np.float32
LUT16_SIZE = 513           # 512 segments of 128 int16 codes, and the end point of the last one

# sigmoid(i / 24) in 0.16 fixed point for i = 0..255, TFLite's ``sigmoid_table_uint16`` (the published constants: they
# are not a plain rounding of the function, so they are carried as data, not recomputed).
SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
], dtype=np.int32)


def expf(v) -> np.float32:
    """``std::exp`` of a float32: the float64 exponential rounded to float32 (correctly rounded here; glibc's
    ``expf``, which the tflite-micro wheel calls, gives the same float on every point the SOFTMAX table samples)."""
    return F32(math.exp(float(v)))


def logf(v) -> np.float32:
    """``std::log`` of a float32, rounded from float64 as :func:`expf`."""
    return F32(math.log(float(v)))


def roundf(v) -> np.float32:
    """``TfLiteRound`` of a float32: to nearest, ties away from zero, as a float32."""
    return F32(round_half_away(v))


def checked_log2(x: float) -> tuple[bool, int]:
    """TFLite's ``CheckedLog2``: ``(is a power of two within 1e-3 in log2, rounded log2)`` of a float32 ``x``,
    computed as ``logf(x) · (1 / logf(2))`` in float32."""
    x_log2 = logf(F32(x)) * (F32(1.0) / logf(F32(2.0)))
    rounded = roundf(x_log2)
    return bool(abs(x_log2 - rounded) < F32(1e-3)), int(rounded)


def lut_populate_int16(input_scale, input_zero_point: int, output_scale, output_zero_point: int,
                       transform) -> np.ndarray:
    """``LUTPopulateInt16<float>``: ``transform`` (float32 -> float32) sampled at the 513 ends of 512 equal segments of
    the int16 input range, each sample less half its segment's midpoint interpolation error, in output codes."""
    input_scale, output_scale = F32(input_scale), F32(output_scale)
    input_min = input_scale * F32(-32768 - input_zero_point)
    input_max = input_scale * F32(32767 - input_zero_point)
    output_min = output_scale * F32(-32768 - output_zero_point)
    output_max = output_scale * F32(32767 - output_zero_point)
    step = (input_max - input_min) / F32(512)
    half_step = step / F32(2)
    scaling_inv = F32(65536) / (output_max - output_min)
    lut = np.empty(LUT16_SIZE, dtype=np.int16)
    for i in range(512):
        val = transform(input_min + F32(i) * step)
        val_midpoint = transform(input_min + F32(i) * step + half_step)
        val_next = transform(input_min + F32(i + 1) * step)
        sample = roundf(val * scaling_inv)
        midpoint_interpolated = roundf((val_next * scaling_inv + roundf(val * scaling_inv)) / F32(2))
        bias = roundf((midpoint_interpolated - roundf(val_midpoint * scaling_inv)) / F32(2))
        lut[i] = min(max(sample - bias, -32768), 32767)
    lut[512] = min(max(roundf(transform(input_max) * scaling_inv), -32768), 32767)
    return lut


@functools.cache
def softmax_exp_lut() -> np.ndarray:
    """The int16 SOFTMAX exp table: ``expf`` over [-10, 0] (input scale 10/65535, zero point 32767) in codes of
    2/65535 (zero point 0). Built once per process; callers copy it."""
    return lut_populate_int16(F32(10.0) / F32(65535), 32767, F32(2.0) / F32(65535), 0, expf)


@functools.cache
def softmax_reciprocal_lut() -> np.ndarray:
    """The int16 SOFTMAX ``1 / (1 + x)`` table over [0, 1) (input scale 1/65535, zero point -32768)."""
    return lut_populate_int16(F32(1.0) / F32(65535), -32768, F32(2.0) / F32(65535), 0,
                              lambda v: F32(1.0) / (F32(1.0) + v))


@register_jitable
def lut_lookup16(value, lut):
    """``LUTLookup`` of an int16 ``value``: segment ``256 + (value >> 7)``, its base plus the slope times the low 7
    bits, ``(slope · offset + 64) >> 7`` (rounded half up). With every entry in [0, 32767] (the validator's bound) the
    slope and the result fit int16 and no wrap-around occurs."""
    index = 256 + (value >> 7)
    base = np.int64(lut[index])
    return base + (((np.int64(lut[index + 1]) - base) * (value & 0x7F) + 64) >> 7)
