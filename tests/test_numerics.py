"""The requant rounding modes and the dyadic multiplier against independent big-integer references."""

import math
import subprocess
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from intonly.hwsim.numerics import div_round_away, isqrt, requant, rounding_id
from intonly.quantize.dyadic import quantize_multiplier
from intonly.quantize.errors import QuantizationError

INT32 = st.integers(-(2**31), 2**31 - 1)
MULT = st.one_of(st.just(2**30), st.integers(2**30, 2**31 - 1), st.integers(0, 2**31 - 1))


def trunc_div(a: int, b: int) -> int:
    """C's integer division (toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def gemmlowp_srdhm(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return trunc_div(ab + nudge, 1 << 31)


def gemmlowp_rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if (x & mask) > threshold else 0)


def reference(mode: str, acc: int, b: int, c: int) -> int:
    if mode == "half_up":
        return (acc * b + (1 << (c - 1))) // (1 << c)
    if mode == "half_even":
        return round(Fraction(acc * b, 1 << c))
    shift = 31 - c  # TFLM's signed shift: left if positive
    x = acc * (1 << max(shift, 0))
    x = max(-(2**31), min(2**31 - 1, x))
    return gemmlowp_rdbpot(gemmlowp_srdhm(x, b), max(-shift, 0))


@pytest.mark.parametrize("mode", ["half_up", "double", "half_even"])
@settings(max_examples=1000, deadline=None)
@given(acc=INT32, b=MULT, c=st.integers(1, 62))
@example(acc=-128, b=2**30, c=31)   # exact tie: -64 - 0.5... = -0.5 * 128
@example(acc=3, b=2**30, c=31)      # 1.5 -> ties
@example(acc=-3, b=2**30, c=31)     # -1.5
@example(acc=-(2**31), b=2**31 - 1, c=1)
@example(acc=2**31 - 1, b=2**31 - 1, c=62)
def test_requant_matches_big_integer_reference(mode, acc, b, c):
    assert requant(acc, b, c, rounding_id(mode)) == reference(mode, acc, b, c)


@pytest.mark.parametrize("acc,expected", [
    (12, {"half_up": 2, "double": 2, "half_even": 2}),      # +1.5
    (20, {"half_up": 3, "double": 3, "half_even": 2}),      # +2.5
    (-12, {"half_up": -1, "double": -2, "half_even": -2}),  # -1.5
    (-20, {"half_up": -2, "double": -3, "half_even": -2}),  # -2.5
    (-4, {"half_up": 0, "double": -1, "half_even": 0}),     # -0.5
])
def test_tie_directions_are_the_documented_ones(acc, expected):
    """acc * 2^30 / 2^33 = acc / 8: half_up ties toward +inf, double (RDBPOT stage) away from zero, half_even to even."""
    assert {m: int(requant(acc, 2**30, 33, rounding_id(m))) for m in expected} == expected


@given(total=st.integers(-(2**20), 2**20), count=st.integers(1, 400))
@settings(max_examples=2000, deadline=None)
def test_avgpool_division_rounds_half_away_from_zero_like_tflm(total, count):
    tflm = trunc_div(total + count // 2, count) if total > 0 else trunc_div(total - count // 2, count)
    assert div_round_away(total, count) == tflm


@given(real=st.floats(min_value=2**-40, max_value=2**20, allow_nan=False))
@settings(max_examples=2000, deadline=None)
def test_quantize_multiplier_is_tflm_quantize_multiplier(real):
    b, c = quantize_multiplier(real)

    q, e = math.frexp(real)
    m = int(Fraction(q) * 2**31 + Fraction(1, 2))  # round half away from zero (q > 0)
    if m == 2**31:
        m, e = 2**30, e + 1
    if e < -31:  # TFLM: shift < -31 -> multiplier 0
        assert (b, c) == (0, 31)
        return
    assert (b, c) == (m, 31 - e)
    assert 2**30 <= b < 2**31
    assert abs(b / 2**c - real) <= real * 2**-30


def test_quantize_multiplier_edges():
    assert quantize_multiplier(0.0) == (0, 31)
    assert quantize_multiplier(2.0**-80) == (0, 31)             # below 2^-31 * 2^-31: output is the zero point
    assert quantize_multiplier(1 - 2.0**-40) == (2**30, 30)      # rounds up to 2^31: renormalised
    assert quantize_multiplier(0.5) == (2**30, 31)
    with pytest.raises(QuantizationError, match="too large for a dyadic requant"):
        quantize_multiplier(2.0**31)
    with pytest.raises(QuantizationError, match="not a finite non-negative number"):
        quantize_multiplier(float("nan"), "layer1")


ISQRT_EDGES = [0, 1, 2, 3, 4, 15, 16, 17, 2**31 - 1, 2**32, 2**62, 2**63 - 1, (2**31 - 1) ** 2, (2**31 - 1) ** 2 - 1,
               (3037000499) ** 2, 3037000499**2 - 1]


@pytest.fixture(scope="module")
def c_isqrt(tmp_path_factory, gcc):
    """The C runtime's intonly_isqrt, compiled into a filter: one decimal value per line in, its root out."""
    from intonly.codegen.c.emit import environment

    work = tmp_path_factory.mktemp("isqrt")
    (work / "intonly_runtime.h").write_text(environment("generic").get_template("runtime.h.j2").render(rounding="double"))
    (work / "main.c").write_text('#include <stdio.h>\n#include "intonly_runtime.h"\n'
                                 'int main(void) { long long v; while (scanf("%lld", &v) == 1) '
                                 'printf("%lld\\n", (long long)intonly_isqrt(v)); return 0; }\n')
    subprocess.run([gcc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(work / "isqrt"),
                    str(work / "main.c")], check=True)
    return lambda values: [int(line) for line in subprocess.run(
        [str(work / "isqrt")], input="\n".join(map(str, values)), capture_output=True, text=True,
        check=True).stdout.split()]


def test_isqrt_is_exact_everywhere_hwsim_and_c(c_isqrt):
    rng = np.random.default_rng(5)
    values = ISQRT_EDGES + list(range(0, 5000)) + [int(v) for v in rng.integers(0, 2**63 - 1, size=3000)]
    squares = [int(r) ** 2 + d for r in rng.integers(1, 3037000499, size=1000) for d in (-1, 0, 1)]
    values += [v for v in squares if 0 <= v < 2**63]
    expected = [math.isqrt(v) for v in values]
    assert [int(isqrt(v)) for v in values] == expected
    assert c_isqrt(values) == expected


def test_ivit_fixed_iteration_sqrt_is_wrong_for_small_v():
    """I-ViT runs exactly 10 Newton steps from 2**16: for small V it has not converged (research b.4)."""
    def ivit(v):
        k = 2**16
        for _ in range(10):
            k = (k + v // k) // 2
        return k
    wrong = [v for v in range(1, 2000) if ivit(v) != math.isqrt(v)]
    assert wrong and wrong[0] == 1 and all(isqrt(v) == math.isqrt(v) for v in wrong)
