"""intonly: integer-only neural-network deployment.

    from intonly import quantize, simulate, compare, emit_c, build_and_run, QuantConfig
"""

from .api import LayerCompare, QuantConfig, build_and_run, compare, emit_c, quantize, simulate
from quantize.ir import IntModel

__all__ = ["quantize", "simulate", "compare", "emit_c", "build_and_run", "QuantConfig", "IntModel", "LayerCompare"]
