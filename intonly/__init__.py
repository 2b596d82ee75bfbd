"""intonly: integer-only neural-network deployment.

    from intonly import (QuantConfig, IntModel, quantize, simulate, compare, estimate, compare_targets, emit_c,
                         build_and_run, profile_c, build_for, load_target)

Everything :mod:`intonly.api` exports, and :func:`load_target` (``simulate(m, x, target=load_target("cortex-m7"))``).
"""

from intonly.targets import load_target

from .api import (IntModel, LayerCompare, QuantConfig, TargetBuild, TargetDiff, build_and_run, build_for, compare,
                  compare_targets, emit_c, estimate, profile_c, quantize, simulate)

__all__ = ["quantize", "simulate", "compare", "estimate", "compare_targets", "emit_c", "build_and_run", "profile_c",
           "build_for", "load_target", "QuantConfig", "IntModel", "LayerCompare", "TargetDiff", "TargetBuild"]
