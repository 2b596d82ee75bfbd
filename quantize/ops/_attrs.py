"""Attribute kinds and ranges, and the attribute groups several ops share (a requant, a clamp, a window).

An int attribute lies in ``[lo, hi]`` (int32 unless stated); a list of ints has ``length`` elements (any number
up to :data:`MAX_RANK` when None), each in ``[lo, hi]``. Ranges are what the kernels and the overflow proofs
(quantize/bounds.py and each op's ``bounds``) assume, so nothing unbounded reaches them.
"""

from __future__ import annotations

from dataclasses import dataclass

INT32_RANGE = (-2**31, 2**31 - 1)
MAX_RANK = 8


@dataclass(frozen=True)
class Attr:
    kind: str                   # "int" or "ints"
    lo: int = INT32_RANGE[0]
    hi: int = INT32_RANGE[1]
    length: int | None = None   # "ints" only: the exact number of elements (None: up to MAX_RANK)

    def problem(self, key: str, value) -> str | None:
        """Why ``value`` is not a valid ``key`` attribute, or None."""
        ok = (isinstance(value, int) and not isinstance(value, bool)) if self.kind == "int" else \
            (isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
        if not ok:
            return f"attribute {key!r} must be {self.kind}, got {value!r}"
        if self.kind == "int":
            return None if self.lo <= value <= self.hi else f"{key}={value} outside [{self.lo}, {self.hi}]"
        if (self.length is not None and len(value) != self.length) or len(value) > MAX_RANK or \
                not all(self.lo <= v <= self.hi for v in value):
            count = f"{self.length} integers" if self.length is not None else f"at most {MAX_RANK} integers"
            return f"{key}={_short(value)} must be {count} in [{self.lo}, {self.hi}]"
        return None


def _short(values: list) -> str:
    return repr(values) if len(values) <= 8 else f"[{', '.join(map(str, values[:8]))}, ...] ({len(values)} values)"


INT = Attr("int")
FLAG = Attr("int", 0, 1)
INTS = Attr("ints")
MULTIPLIER = Attr("int", 0, 2**31 - 1)  # a dyadic requant b / 2^c (hwsim/numerics.py)
SHIFT = Attr("int", 1, 62)
PERM = Attr("ints", 0, MAX_RANK - 1)
AXIS = Attr("int", 0, MAX_RANK - 1)
PAIR = Attr("ints", 1, 2**16, length=2)            # stride, dilation, kernel: (H, W)
PADDING = Attr("ints", 0, 2**16, length=4)         # top, left, bottom, right
INPUT_ZPS = Attr("ints", *INT32_RANGE, length=2)

CLAMP = {"act_min": INT, "act_max": INT}
REQUANT = {"input_zp": INT, "output_zp": INT, **CLAMP}              # zero points and clamp of a requantized op
REQUANT1 = {"multiplier": MULTIPLIER, "shift": SHIFT, "output_zp": INT, **CLAMP}  # one per-tensor requant
WINDOW = {"kernel": PAIR, "stride": PAIR, "padding": PADDING}
# The transformer ops' integer-exp constants (docs/transformer-ops.md): x0 < 0 is divided by, n and q_max are
# shift counts, norm_bits the width of the normalised result.
X0 = Attr("int", -(2**31 - 1), -1)
SHIFT_COUNT = Attr("int", 0, 31)                  # n, erf_shift, norm_shift: a shift of an int32
Q_MAX = Attr("int", 0, 62)
NORM_BITS = Attr("int", 31, 62)
IEXP = {"x0": X0, "n": SHIFT_COUNT, "q_max": Q_MAX, "b_int": INT, "c_int": INT}  # I-BERT i-exp constants
CODE_BITS = Attr("int", 1, 6)
