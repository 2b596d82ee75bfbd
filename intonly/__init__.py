"""intonly: integer-only neural-network deployment.

    from intonly import quantize, simulate, compare, estimate, compare_targets, emit_c, build_and_run, QuantConfig
"""

from .api import (LayerCompare, QuantConfig, TargetDiff, build_and_run, compare, compare_targets, emit_c, estimate,
                  quantize, simulate)
from intonly.quantize.ir import IntModel

__all__ = ["quantize", "simulate", "compare", "estimate", "compare_targets", "emit_c", "build_and_run",
           "QuantConfig", "IntModel", "LayerCompare", "TargetDiff"]
