"""Weight quantization shared by every weighted layer."""

import numpy as np

from .ir import storage_dtype


def quantize_weight(w: np.ndarray, bits: int, min_scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric: ``s[c] = max|W_c| / (2^(k-1)-1)`` (1.0 for an all-zero channel), raised to
    ``min_scale[c]`` where that is larger, in float32; ``q = clamp(rint(W / s), -(2^(k-1)-1), 2^(k-1)-1)`` with
    rint = round half to even. Returns ``(q, s)``."""
    qmax = (1 << (bits - 1)) - 1
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(amax > 0, amax / qmax, 1.0)
    if min_scale is not None:
        scale = np.maximum(scale, min_scale)
    scale = scale.astype(np.float32)
    broadcast = scale.reshape((-1,) + (1,) * (w.ndim - 1)).astype(np.float64)
    return np.clip(np.rint(w / broadcast), -qmax, qmax).astype(storage_dtype(bits)), scale
