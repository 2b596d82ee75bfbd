"""Checks every batch of user data passes before it reaches a model: calibration arrays (:func:`quantize.lower.
quantize`), simulation inputs (:func:`hwsim.executor.simulate`) and ``--data`` files (intonly/workloads.py).

One message format everywhere, ``<where>: <problem>``, as a :class:`~quantize.errors.DataError`: a dtype that is
not numbers, a scalar or an empty batch, and NaN or infinite values, counted, with the first sample holding one.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError


def checked_batch(values, where: str, kinds: str = "iuf", expected: str = "numbers (integers or floats)",
                  dtype=None) -> np.ndarray:
    """``values`` as an array, batch first, with at least one sample, a dtype kind in ``kinds`` (numpy kind
    letters; ``expected`` words them), converted to ``dtype`` if given and then, for floats, every value finite
    (so a float64 value beyond float32's range is refused, not turned into inf)."""
    try:
        arr = np.asarray(values)
    except Exception as exc:  # noqa: BLE001  (whatever the object is, it is not an array of numbers)
        raise DataError(f"{where}: not an array of numbers ({type(exc).__name__}: {exc})") from None
    if arr.dtype.kind not in kinds:
        raise DataError(f"{where}: dtype {arr.dtype}, expected {expected}")
    if arr.ndim == 0:
        raise DataError(f"{where}: a scalar, expected a batch of samples (N first)")
    if len(arr) == 0:
        raise DataError(f"{where}: 0 samples (shape {arr.shape})")
    if dtype is not None:
        with np.errstate(over="ignore"):
            arr = arr.astype(dtype)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            first = int(np.argmax(bad.reshape(len(arr), -1).any(axis=1)))
            raise DataError(f"{where}: {int(bad.sum()):,} NaN/inf values (first in sample {first})")
    return arr
