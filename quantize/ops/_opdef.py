"""The record each op module fills in (:class:`OpDef`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ._attrs import Attr

# The executors an op can have, each registered by a file named after the op: hwsim/ops/<op>.py and
# codegen/c/ops/<op>.py. An op lacking one says why in OpDef.declines.
EXECUTORS = ("hwsim", "c")


def _no_macs(model, node) -> int:
    return 0


def _no_bounds(model, node, producers) -> list:
    return []


def _no_relations(attrs: dict) -> list[str]:
    return []


@dataclass(frozen=True)
class OpDef:
    """Everything the IR knows about one op.

    ``shape(attrs, in_shapes, param_shapes)`` returns the per-sample output shape or raises ValueError;
    ``macs(model, node)`` the multiply-accumulates of one sample; ``bounds(model, node, producers)`` every
    fixed-width intermediate with its proven worst case (:class:`intonly.quantize.bounds.Bound`);
    ``relations(attrs)`` problems between attributes that their ranges do not cover."""

    name: str
    summary: str                                  # one line: what it computes
    definition: str                               # docs/<file>.md#<anchor>: its exact integer definition
    n_inputs: int | None                          # None: one or more (concat)
    attrs: dict[str, Attr]
    shape: Callable
    params: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role -> allowed dtypes
    integer: bool = True                          # False only for the graph-boundary ops quantize/dequantize
    macs: Callable = _no_macs
    bounds: Callable = _no_bounds
    relations: Callable = _no_relations
    # Output element i depends on input element i only, in the same order: a kernel could write its output over a
    # dying input (memory.inplace_candidates; the generated kernels do not).
    elementwise: bool = False
    input_zp_of: int = 0                          # which input the ``input_zp`` attribute belongs to
    copies_param: str | None = None               # a param whose values are copied to the output (range-checked)
    # output: linear probabilities at scale 2^-(bits-1) whose row sum is below 2^(bits-1) (a softmax)
    probabilities: bool = False
    declines: dict[str, str] = field(default_factory=dict)  # executor -> why it has no kernel for this op
