"""QuantConfig: every user-selectable choice of post-training quantization, validated up front."""

from dataclasses import dataclass

from .errors import ConfigError
from .ops import ROUNDING_MODES

OBSERVERS = ("minmax", "percentile", "mse")


@dataclass(frozen=True)
class QuantConfig:
    """``weight_bits``/``act_bits`` in 2..16 (stored as int8 up to 8 bits, int16 above);
    weights are per-output-channel symmetric in ``[-(2^(k-1)-1), 2^(k-1)-1]``; activations are per tensor,
    ``act_symmetric`` (zero point 0) or asymmetric (full ``[-2^(k-1), 2^(k-1)-1]`` with a zero point).
    ``observer`` picks the calibration range: ``minmax``, ``percentile`` (``percentile`` of |x| / of each
    tail) or ``mse`` (the clipping range minimising quantization MSE on the calibration sample).
    ``rounding`` is the requantization rounding mode written into the model (DESIGN §3)."""

    weight_bits: int = 8
    act_bits: int = 8
    act_symmetric: bool = False
    observer: str = "minmax"
    percentile: float = 99.99
    rounding: str = "half_up"

    def __post_init__(self):
        for name in ("weight_bits", "act_bits"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 2 <= value <= 16:
                raise ConfigError(f"{name}={value!r} is outside the supported range 2..16")
        if self.observer not in OBSERVERS:
            raise ConfigError(f"observer={self.observer!r} is not one of {OBSERVERS}")
        if not 50.0 < self.percentile <= 100.0:
            raise ConfigError(f"percentile={self.percentile!r} must lie in (50, 100]")
        if self.rounding not in ROUNDING_MODES:
            raise ConfigError(f"rounding={self.rounding!r} is not one of {ROUNDING_MODES}")
