"""quantize: float PyTorch model + calibration data -> IntModel (the integer-only IR)."""

from .errors import (CaptureError, ConfigError, IntonlyError, ModelFileError, QuantizationError, ToolchainError,
                     UnsupportedOpError)
from .ir import IntModel, Node, TensorInfo

__all__ = ["IntModel", "Node", "TensorInfo", "IntonlyError", "UnsupportedOpError", "CaptureError", "ConfigError",
           "QuantizationError", "ModelFileError", "ToolchainError"]
