"""Typed errors shared by every intonly package.

Each error names *what* went wrong and *where* (op, layer/module path, file, field).
The CLI turns any :class:`IntonlyError` into one message on stderr and exit code 2.
"""


class IntonlyError(Exception):
    """Base class of every error intonly raises on bad input."""


class UnsupportedOpError(IntonlyError):
    """The float model contains operations intonly cannot lower.

    ``ops`` lists every offending ``(module_path, op_description)`` pair, not only the first.
    """

    def __init__(self, ops: list[tuple[str, str]]):
        self.ops = list(ops)
        lines = "\n".join(f"  - {path}: {desc}" for path, desc in self.ops)
        super().__init__(f"{len(self.ops)} unsupported op(s) in the model:\n{lines}")


class CaptureError(IntonlyError):
    """torch.fx could not capture the model as a static graph."""


class ConfigError(IntonlyError):
    """A quantization configuration value is impossible (bit width, observer, rounding mode...)."""


class QuantizationError(IntonlyError):
    """Lowering found a layer whose integer form would be wrong (e.g. a provable accumulator overflow)."""


class ModelFileError(IntonlyError):
    """An IntModel file is unreadable, truncated, edited or of an unknown format version."""


class ToolchainError(IntonlyError):
    """A compiler or emulator needed for code generation is missing or failed."""


class DataError(IntonlyError):
    """Input, calibration or label data is unusable: unreadable, the wrong shape or dtype, or not finite."""
