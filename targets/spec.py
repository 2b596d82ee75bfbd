"""The in-memory form of a target file (``targets/specs/<name>.toml``): plain frozen dataclasses.

Every number is a :class:`Sourced` value: the number and where it comes from (a research note section, a
datasheet, an instruction table, "derived: <how>" or "fitted to <measurement>"). The loader
(:mod:`targets.loader`) builds these from TOML and refuses a file whose numbers lack a source.

Units: clock in MHz; throughput in operations per clock cycle, sustained (what a good kernel library reaches, not
the datasheet peak unless the source says they coincide); sizes in bytes; bandwidth in bytes per cycle; latency
in cycles; energy in picojoules per operation or per byte; static power in milliwatts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("mcu", "dsp", "cpu", "gpu")
SATURATIONS = ("clamp",)  # requantized outputs saturate to the output type's range; nothing wraps
HOLDS = ("weights", "activations")

# Every sourced number (and a NAME@<clock> override) is finite and either 0 (where 0 is allowed) or within this
# range: wide enough for every real chip (the built-in files span 0.025 .. 8.6e10), narrow enough that no estimate
# overflows to inf or vanishes to 0 (docs/targets.md, "Trust").
VALUE_MIN = 1e-9
VALUE_MAX = 1e15


@dataclass(frozen=True)
class Sourced:
    value: float
    source: str


@dataclass(frozen=True)
class Numerics:
    rounding: str            # requant rounding mode, one of quantize.names.ROUNDING_MODES
    accumulator_bits: int    # width of the MAC accumulator the target's kernels use
    saturation: str          # one of SATURATIONS
    source: str


@dataclass(frozen=True)
class MemoryLevel:
    name: str
    size_bytes: Sourced
    bandwidth_bytes_per_cycle: Sourced   # sustained, at the core clock
    latency_cycles: Sourced              # paid once per layer per level touched
    pj_per_byte: Sourced
    holds: tuple[str, ...]               # what may be placed here: subset of HOLDS
    wait_states: Sourced | None = None   # MCU flash: effective bandwidth = bandwidth / (1 + wait_states)

    @property
    def effective_bandwidth(self) -> float:
        return self.bandwidth_bytes_per_cycle.value / (1 + (self.wait_states.value if self.wait_states else 0))


@dataclass(frozen=True)
class Toolchain:
    codegen_family: str   # C template family (codegen/c/templates/<family>/), "generic" until specialised
    cc: str               # compiler executable, "" where intonly generates no C for the target (GPUs: TVM)
    cflags: str
    emulator: str         # command prefix that runs a built program, "" for native or none


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    kind: str                                  # one of KINDS
    clock_mhz: Sourced
    numerics: Numerics
    throughput: dict[str, Sourced]             # ops per cycle for each of quantize.names.OP_CLASSES
    layer_overhead_cycles: Sourced             # fixed cost per layer (call, loop setup, kernel launch)
    memory: tuple[MemoryLevel, ...]            # fastest first
    pj_per_op: dict[str, Sourced]              # energy per operation for each op class
    static_mw: Sourced                         # static (leakage + always-on) power while the model runs
    toolchain: Toolchain
    file: Path | None = None                   # where it was loaded from
    notes: str = ""
    overrides: tuple[str, ...] = field(default=())  # e.g. ("clock 480 MHz",) from a NAME@480MHz spec

    def with_clock(self, mhz: float) -> "Target":
        """A copy running at ``mhz`` (the ``cortex-m7@480MHz`` form); cycle-based numbers are unchanged. ``mhz``
        must be a finite number within VALUE_MIN .. VALUE_MAX (else :class:`targets.TargetError`)."""
        ok = isinstance(mhz, (int, float)) and not isinstance(mhz, bool)
        try:
            ok = ok and math.isfinite(float(mhz)) and VALUE_MIN <= float(mhz) <= VALUE_MAX
        except OverflowError:   # an int too large for a float
            ok = False
        if not ok:
            from .loader import TargetError, _show
            raise TargetError(f"target {self.name}: clock override {_show(mhz)} MHz must be a finite number between "
                              f"{VALUE_MIN:g} and {VALUE_MAX:g} MHz")
        return dataclasses.replace(self, clock_mhz=Sourced(float(mhz), "user override"),
                                   overrides=self.overrides + (f"clock {mhz:g} MHz",))

    @property
    def label(self) -> str:
        return self.name + (f"@{self.clock_mhz.value:g}MHz" if self.overrides else "")
