"""Simulation and per-layer comparison taken a batch at a time (memory bounded for large models) give the results
of one pass: integers identical and trace counts summed; the comparison's float side (PyTorch, whose float32
convolutions round differently for another batch size, and the float64 sums) agrees: SQNR to 1e-6 relative, the
LSB errors to 1e-4 LSB."""

import numpy as np
import pytest

from intonly import compare, quantize, simulate
from intonly.demos import digits
from intonly.quantize.errors import ConfigError


@pytest.fixture(scope="module")
def digits_case():
    x_tr, _, x_te, _ = digits.load_split()
    net = digits.load_model()
    return net, quantize(net, x_tr[:256]), x_te[:45]


def test_simulating_in_batches_gives_the_same_integers_and_trace(digits_case):
    _, model, x = digits_case
    whole = simulate(model, x, keep_values=True)
    parts = simulate(model, x, keep_values=True, batch_size=7)
    for a, b in zip(whole.outputs + whole.int_inputs + whole.int_outputs, parts.outputs + parts.int_inputs +
                    parts.int_outputs):
        np.testing.assert_array_equal(a, b)
    assert whole.values.keys() == parts.values.keys()
    assert all(np.array_equal(whole.values[k], parts.values[k]) for k in whole.values)
    assert parts.trace == whole.trace and whole.trace[1].macs == 45 * model.node_macs(model.nodes[1])
    assert simulate(model, x).values == {}   # without keep_values, tensors are freed after their last reader


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_batch_size_that_is_not_a_positive_integer_is_refused(digits_case, bad):
    _, model, x = digits_case
    with pytest.raises(ConfigError, match=rf"batch_size={bad!r}: must be a positive integer"):
        simulate(model, x, batch_size=bad)


def test_comparing_in_batches_gives_the_same_rows(digits_case):
    net, model, x = digits_case
    one = compare(net, model, x, batch_size=len(x))
    many = compare(net, model, x, batch_size=4)
    assert [(r.node, r.tensor, r.bits) for r in one] == [(r.node, r.tensor, r.bits) for r in many]
    for a, b in zip(one, many):
        assert b.sqnr_db == pytest.approx(a.sqnr_db, rel=1e-6)
        assert b.max_abs_lsb == pytest.approx(a.max_abs_lsb, abs=1e-4)
        assert b.mean_abs_lsb == pytest.approx(a.mean_abs_lsb, abs=1e-4)
