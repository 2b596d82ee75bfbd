"""QuantConfig: every user-selectable choice of post-training quantization, validated up front."""

from dataclasses import dataclass

from .errors import ConfigError
from .names import DEFAULT_ROUNDING, ROUNDING_MODES

OBSERVERS = ("minmax", "percentile", "mse")
SOFTMAX_FAMILIES = ("shiftmax", "iexp", "log2")
GELU_FAMILIES = ("shiftgelu", "igelu")


@dataclass(frozen=True)
class QuantConfig:
    """``weight_bits``/``act_bits`` in 2..16 (stored as int8 up to 8 bits, int16 above);
    weights are per-output-channel symmetric in ``[-(2^(k-1)-1), 2^(k-1)-1]``; activations are per tensor,
    ``act_symmetric`` (zero point 0) or asymmetric (full ``[-2^(k-1), 2^(k-1)-1]`` with a zero point).
    ``observer`` picks the calibration range: ``minmax``, ``percentile`` (``percentile`` of |x| / of each
    tail) or ``mse`` (the clipping range minimising quantization MSE on the calibration sample).
    ``rounding`` is the requantization rounding mode written into the model (docs/numerics.md).
    ``bias_correction`` folds the mean output error of each Conv2d/Linear layer's rounded weights on the
    calibration data into its bias (Nagel et al. 2019; quantize/bias_correction.py). With ``wide_weights`` every
    Conv2d/Linear gets the widest weights, from ``weight_bits`` up to 16, that its int32 accumulator proof allows
    at its input's width: with ``act_bits=12`` the accumulator's 30 bits are shared about evenly between weights
    and activations, which minimises the product's rounding error (docs/ptq.md). ``equalize`` applies cross-layer
    equalization to consecutive Conv2d/Linear layers joined by identity/ReLU/LeakyReLU (Nagel et al. 2019;
    quantize/equalization.py); off by default, as measured in docs/ptq.md.

    Transformer choices: ``softmax`` family (``shiftmax`` I-ViT, ``iexp`` I-BERT, ``log2`` FQ-ViT
    log-int-softmax with 4-bit codes), ``gelu`` family (``shiftgelu`` I-ViT, ``igelu`` I-BERT),
    ``softmax_bits`` (16, or 8 where 2^7 >= the sequence length), ``residual_bits`` for every operand
    and result of a residual add (None: ``act_bits``). With ``auto_bits`` every other activation whose
    ``act_bits`` quantization has a calibration SQNR below ``auto_bits_sqnr_db`` gets 16 bits instead; any
    width is then lowered as far as needed for the int32 accumulator proofs of the ops that consume it."""

    weight_bits: int = 8
    act_bits: int = 8
    act_symmetric: bool = False
    observer: str = "minmax"
    percentile: float = 99.99
    rounding: str = DEFAULT_ROUNDING
    softmax: str = "shiftmax"
    gelu: str = "shiftgelu"
    softmax_bits: int = 16
    residual_bits: int | None = None
    auto_bits: bool = False
    auto_bits_sqnr_db: float = 30.0
    bias_correction: bool = True
    wide_weights: bool = False
    equalize: bool = False

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
        if self.softmax not in SOFTMAX_FAMILIES:
            raise ConfigError(f"softmax={self.softmax!r} is not one of {SOFTMAX_FAMILIES}")
        if self.gelu not in GELU_FAMILIES:
            raise ConfigError(f"gelu={self.gelu!r} is not one of {GELU_FAMILIES}")
        if self.softmax_bits not in (8, 16):
            raise ConfigError(f"softmax_bits={self.softmax_bits!r} must be 8 or 16")
        if self.residual_bits is not None and (isinstance(self.residual_bits, bool) or
                                               self.residual_bits not in range(2, 17)):
            raise ConfigError(f"residual_bits={self.residual_bits!r} is outside the supported range 2..16")

    @classmethod
    def transformer(cls, **overrides) -> "QuantConfig":
        """The defaults for transformers: symmetric activations (what Shiftmax/GELU take), an int16 residual
        stream, and automatic 8/16-bit widths from calibration statistics."""
        return cls(**{"act_symmetric": True, "residual_bits": 16, "auto_bits": True, **overrides})
