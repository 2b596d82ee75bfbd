"""Exact integer primitives shared by every hwsim kernel (Numba, no floats).

Rounding modes of the requantization ``R(acc; b, c) ≈ acc * b / 2**c`` (acc an int32 value,
``0 <= b < 2**31``, ``1 <= c <= 62``; the product is formed in int64, where it cannot overflow
since ``|acc * b| < 2**62``):

* ``half_up`` (0):   ``(acc*b + 2**(c-1)) >> c`` — ties toward +inf; TFLite "single rounding".
* ``double`` (1):    ``RDBPOT(SRDHM(sat32(acc * 2**l), b), r)`` with ``l = max(31-c, 0)``, ``r = max(c-31, 0)``;
  SRDHM(x, b) = ``floor((x*b + 2**30) / 2**31)`` (ties toward +inf, = ARM VQRDMULH),
  RDBPOT rounds ties away from zero. This is TFLM / CMSIS-NN / gemmlowp's default.
  ``sat32`` saturates the left-shifted accumulator to int32; TFLM leaves that case undefined.
* ``half_even`` (2): ``acc*b / 2**c`` rounded to nearest, ties to even (what ``torch.round`` gives).
* TFLite 16x8 (3, not a model rounding mode: the requant of conv2d/dense layers with an int64 bias, any model
  mode): ``(acc*rm + 2**(c-17)) >> (c-16)`` with the 16-bit ``rm = b < 0x7FFF0000 ? (b + 2**15) >> 16 : 0x7FFF``,
  for an int64 ``acc`` below 2**47 and ``c >= 24`` (quantize/ops/_weighted.py).

``>>`` is an arithmetic (flooring) shift throughout.
"""

import numpy as np
from numba import njit

from intonly.quantize.names import ROUNDING_IDS
from intonly.quantize.tflite.fixedpoint import rdbpot, srdhm  # gemmlowp's SRDHM and RDBPOT, shared with the importer

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
REQUANT_16X8 = 3   # requant() mode of TFLite's 16x8 layers (conv2d/dense with an int64 bias)


def rounding_id(name: str) -> int:
    return ROUNDING_IDS[name]


@njit(inline="always", cache=True)
def requant(acc, b, c, mode):
    """R(acc; b, c) under rounding ``mode`` (see the module docstring). Returns int64."""
    acc = np.int64(acc)
    b = np.int64(b)
    if mode == 0:
        return (acc * b + (np.int64(1) << (c - 1))) >> c
    if mode == REQUANT_16X8:
        rm = (b + 32768) >> 16 if b < 0x7FFF0000 else np.int64(0x7FFF)
        return (acc * rm + (np.int64(1) << (c - 17))) >> (c - 16)
    if mode == 2:
        p = acc * b
        q = p >> c
        r = p - (q << c)
        half = np.int64(1) << (c - 1)
        if r > half or (r == half and (q & 1) == 1):
            q += 1
        return q
    left = 31 - c if c < 31 else 0
    right = c - 31 if c > 31 else 0
    x = acc << left
    if x > INT32_MAX:
        x = np.int64(INT32_MAX)
    elif x < INT32_MIN:
        x = np.int64(INT32_MIN)
    return rdbpot(srdhm(x, b), right)


@njit(inline="always", cache=True)
def div_round_away(total, count):
    """total / count (count > 0) rounded to nearest, ties away from zero: TFLM's average-pool division,
    ``total > 0 ? (total + count/2) / count : (total - count/2) / count`` with C's truncating division."""
    half = count // 2
    if total > 0:
        return (total + half) // count
    return -((-total + half) // count)


@njit(inline="always", cache=True)
def saturate(y, lo, hi):
    """``(clamp(y, lo, hi), 1 if y lay outside [lo, hi] else 0)``: the clamp and its trace event (branch-free)."""
    return min(max(y, lo), hi), np.int64((y < lo) | (y > hi))


@njit(cache=True)
def isqrt(v):
    """floor(sqrt(v)) exactly, for 0 <= v < 2**63 (integer Newton from 2**ceil(bits(v)/2), which is >= sqrt(v);
    the iterates then decrease strictly until they reach floor(sqrt(v)), where the next one would not decrease).
    Unlike I-ViT's fixed 10 steps from 2**16, this is exact for every v (small v included)."""
    v = np.int64(v)
    if v < 2:
        return v
    bits = 0
    t = v
    while t > 0:
        bits += 1
        t >>= 1
    x = np.int64(1) << ((bits + 1) // 2)
    while True:
        y = (x + v // x) >> 1
        if y >= x:
            return x
        x = y
