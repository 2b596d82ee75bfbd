"""Dyadic multipliers: real scale ratios turned into an int32 multiplier ``b`` and a right shift ``c``.

``real ≈ b / 2**c`` with ``2**30 <= b < 2**31`` (or ``b = 0`` for ratios below 2**-31... treated as zero).
The construction is TFLM's ``QuantizeMultiplier``: ``(q, e) = frexp(real)``,
``b = round_half_away(q * 2**31)``, renormalised to ``2**30`` with ``e + 1`` if it rounds up to ``2**31``,
and ``c = 31 - e``. Scales are float32 values promoted to float64 before any arithmetic,
as TFLM does (``kernel_util.cc``), so the same float32 scales give the same ``(b, c)`` everywhere.
"""

import math

import numpy as np

from .errors import QuantizationError

MIN_SHIFT, MAX_SHIFT = 1, 62


def f64(x) -> float:
    """The float64 value of a float32 scale (rounded to float32 first)."""
    return float(np.float32(x))


def frexp_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier`` core for ``real > 0``: ``(b, e)`` with ``real ≈ b / 2^31 · 2^e`` and
    ``2^30 <= b < 2^31`` (``b = round_half_away(frexp mantissa · 2^31)``, renormalized when it rounds to 2^31)."""
    q, e = math.frexp(real)
    b = int(q * 2**31 + 0.5)  # q > 0: +0.5 then floor is round-half-away-from-zero
    if b == 2**31:
        b, e = 2**30, e + 1
    return b, e


def quantize_multiplier(real: float, where: str = "") -> tuple[int, int]:
    """Return ``(b, c)`` for a real multiplier in ``[0, 2**30)``.

    ``c`` is kept in 1..62 so that every rounding mode can apply it: ratios too small for
    ``c <= 62`` become ``(0, 31)`` (output = zero point, as TFLM's ``(0, 0)``), ratios of
    ``2**30`` or more are rejected (no layer of a sane model needs them).
    """
    if not math.isfinite(real) or real < 0:
        raise QuantizationError(f"{where}: multiplier {real!r} is not a finite non-negative number")
    if real == 0.0:
        return 0, 31
    b, e = frexp_multiplier(real)
    c = 31 - e
    if c > MAX_SHIFT:
        return 0, 31
    if c < MIN_SHIFT:
        raise QuantizationError(f"{where}: multiplier {real!r} is too large for a dyadic requant (>= 2^30)")
    return b, c


def quantize_multipliers(reals, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r), where) for r in np.asarray(reals, dtype=np.float64).ravel()]
    return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32))


def add_multipliers(scale_a: float, scale_b: float, scale_out: float, left_shift: int, where: str = ""):
    """TFLM ADD parameters: both inputs go to a common scale ``2*max(s_a, s_b) / 2**left_shift``.

    Returns ``(multipliers[3], shifts[3])`` for input a, input b and the output, as
    ``tflite::PrepareGeneralSubtractOrAdd`` computes them (float32 scales, float64 arithmetic).
    """
    twice_max = 2.0 * max(f64(scale_a), f64(scale_b))
    reals = [f64(scale_a) / twice_max, f64(scale_b) / twice_max, twice_max / ((1 << left_shift) * f64(scale_out))]
    pairs = [quantize_multiplier(r, where) for r in reals]
    return [p[0] for p in pairs], [p[1] for p in pairs]
