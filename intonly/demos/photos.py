"""Photo inputs for the ImageNet demos, built from the photographs scikit-image ships (``skimage.data``; no download):
square crops at random scale and position, mirrored half the time, resized to the model's input with anti-aliasing
(:func:`crops`). The grayscale ones are repeated to three channels. Deterministic for a seed; calibration and
evaluation use different seeds, so no crop is in both."""

from __future__ import annotations

import numpy as np

COLOR_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
                "colorwheel", "logo")
GRAY_PHOTOS = ("camera", "coins", "brick", "grass", "gravel", "moon", "clock", "cell", "page", "text")
CALIBRATION_SEED, EVALUATION_SEED = 1, 2


def photos() -> list[np.ndarray]:
    """Every photo as an (H, W, 3) uint8 RGB array: the color ones, both views of the stereo motorcycle, and the
    grayscale ones repeated to three channels."""
    import skimage.data as data

    out = [getattr(data, name)()[..., :3] for name in COLOR_PHOTOS]
    left, right, _ = data.stereo_motorcycle()
    out += [left, right]
    out += [np.repeat(getattr(data, name)()[..., None], 3, axis=2) for name in GRAY_PHOTOS]
    return [np.ascontiguousarray(p, dtype=np.uint8) for p in out]


def crops(n: int, seed: int, size: int) -> np.ndarray:
    """``n`` RGB crops as float32 (N, 3, size, size) in [0, 255]: a random photo, a square of 35-100 % of its short
    side at a random place, mirrored with probability 1/2, resized to ``size`` (skimage ``resize``, anti-aliased)."""
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    pictures = photos()
    out = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        picture = pictures[rng.integers(len(pictures))]
        h, w, _ = picture.shape
        side = int(min(h, w) * rng.uniform(0.35, 1.0))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = picture[top:top + side, left:left + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = resize(crop, (size, size), anti_aliasing=True, preserve_range=True).transpose(2, 0, 1)
    return out
