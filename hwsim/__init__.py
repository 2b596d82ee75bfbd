"""hwsim: bit-accurate Numba execution of an IntModel and per-layer counts of what it did."""

from .executor import LayerTrace, SimResult, simulate

__all__ = ["simulate", "SimResult", "LayerTrace"]
