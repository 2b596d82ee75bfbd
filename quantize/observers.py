"""Calibration observers: turn the values a float tensor took into a clipping range ``(lo, hi)``.

Each observer keeps the exact running min/max and a bounded random sample of values
(at most ``SAMPLE_PER_BATCH`` per batch, from a fixed-seed generator, so calibration is reproducible).
"""

import math

import numpy as np

from .errors import QuantizationError

SAMPLE_PER_BATCH = 1 << 16


class Observer:
    """``name`` says what produced the values (a module or node, for messages)."""

    def __init__(self, method: str, percentile: float, seed: int = 0, name: str = "a calibrated value"):
        self.method = method
        self.name = name
        self.percentile = percentile
        self.lo = np.inf
        self.hi = -np.inf
        self.samples: list[np.ndarray] = []
        self.rng = np.random.default_rng(seed)
        self.sum_squares = 0.0
        self.count = 0
        self.integral = True  # every value seen so far is an integer (token ids, masks)

    def update(self, values: np.ndarray, first_sample: int = 0) -> None:
        """Observe a batch of values (batch first; ``first_sample`` is the calibration index of its first sample,
        for messages). A NaN or infinite value is a :class:`QuantizationError`: no scale can represent it."""
        flat = np.asarray(values, dtype=np.float32).ravel()
        if flat.size == 0:
            return
        lo, hi = float(flat.min()), float(flat.max())  # NaN propagates through min/max
        if not (math.isfinite(lo) and math.isfinite(hi)):
            self._refuse_non_finite(np.asarray(values, dtype=np.float32), first_sample)
        self.lo = min(self.lo, lo)
        self.hi = max(self.hi, hi)
        self.sum_squares += float(np.dot(flat.astype(np.float64), flat.astype(np.float64)))
        self.count += flat.size
        self.integral = self.integral and bool(np.all(flat == np.rint(flat)))
        if self.method != "minmax":
            if flat.size > SAMPLE_PER_BATCH:
                flat = self.rng.choice(flat, SAMPLE_PER_BATCH, replace=False)
            self.samples.append(flat.copy())

    def _refuse_non_finite(self, values: np.ndarray, first_sample: int):
        bad = ~np.isfinite(values)
        sample = int(np.argmax(bad.reshape(len(values), -1).any(axis=1))) if values.ndim else 0
        raise QuantizationError(f"calibration: {self.name} produced {int(bad.sum()):,} NaN/inf values (first in "
                                f"sample {first_sample + sample}); no quantization scale can represent them (check "
                                f"its weights and the operations it computes)")

    def range(self, bits: int, symmetric: bool) -> tuple[float, float]:
        """The clipping range, always containing 0 (so zero is exactly representable)."""
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        if self.method == "percentile":
            sample = np.concatenate(self.samples)
            if symmetric:
                amax = float(np.percentile(np.abs(sample), self.percentile))
                lo, hi = -amax, amax
            else:
                lo = min(float(np.percentile(sample, 100.0 - self.percentile)), 0.0)
                hi = max(float(np.percentile(sample, self.percentile)), 0.0)
        elif self.method == "mse":
            lo, hi = mse_range(np.concatenate(self.samples), lo, hi, bits, symmetric)
        if symmetric:
            amax = max(abs(lo), abs(hi))
            return -amax, amax
        return lo, hi


def sqnr_db(observer: Observer, bits: int, symmetric: bool) -> float:
    """Signal-to-quantization-noise ratio (dB) of ``bits``-bit quantization over the observer's range:
    ``10 log10(mean(x^2) / (scale^2 / 12))`` (uniform rounding noise, clipping ignored). A tensor with a
    few large outliers (max/rms ~ 70, as a transformer's residual stream) scores low at 8 bits."""
    lo, hi = observer.range(bits, symmetric)
    scale, _ = choose_qparams(lo, hi, bits, symmetric)
    power = observer.sum_squares / max(observer.count, 1)
    return float(10.0 * np.log10(max(power, 1e-30) / (scale * scale / 12.0)))


def fake_quant_error(sample: np.ndarray, lo: float, hi: float, bits: int, symmetric: bool) -> float:
    scale, zp = choose_qparams(lo, hi, bits, symmetric)
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    q = np.clip(np.rint(sample / scale) + zp, qmin, qmax)
    return float(np.mean(((q - zp) * scale - sample) ** 2))


def mse_range(sample, lo, hi, bits, symmetric, steps: int = 64):
    """Shrink the min/max range by factors in [0.2, 1] and keep the one with least quantization MSE."""
    best = (np.inf, lo, hi)
    for alpha in np.linspace(0.2, 1.0, steps):
        err = fake_quant_error(sample, alpha * lo, alpha * hi, bits, symmetric)
        if err < best[0]:
            best = (err, alpha * lo, alpha * hi)
    return best[1], best[2]


def choose_qparams(lo: float, hi: float, bits: int, symmetric: bool) -> tuple[float, int]:
    """``(scale, zero_point)`` for a range containing 0; scale is rounded to float32.

    symmetric: ``scale = max(|lo|, |hi|) / (2^(k-1) - 1)``, zp = 0;
    asymmetric: ``scale = (hi - lo) / (2^k - 1)``, ``zp = qmin - rint(lo / scale)`` clamped to the range.
    A constant-zero tensor gets scale 2**-20 (any positive scale represents it exactly)."""
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if symmetric:
        scale = max(abs(lo), abs(hi)) / qmax
        zp = 0
    else:
        scale = (hi - lo) / (qmax - qmin)
        zp = 0 if scale == 0 else int(np.clip(qmin - np.rint(lo / scale), qmin, qmax))
    scale = float(np.float32(scale))
    if not scale > 0:
        scale, zp = 2.0**-20, 0
    return scale, zp
