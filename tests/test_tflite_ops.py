"""Every imported TFLite builtin on random single-op graphs: ``import_tflite`` of a flatbuffer built with
tflite-micro's model editor, then hwsim == the TFLM interpreter on every tensor, and the generated C == hwsim.

The graphs of the five ops the hand-built TFLM oracle test covers come from its generators (other seeds); SOFTMAX
and MAX_POOL_2D have their own here. A failure names the op, the seed and the graph's parameters."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import tflm_builders as tflm
from test_tflm_oracle import MAKERS, loguniform, out_size, random_inputs, window_geometry
from intonly.api import build_and_run
from intonly.hwsim import simulate
from intonly.imported import compare_with_tflm
from intonly.quantize.tflite import import_tflite

GRAPHS = 20
FIRST_SEED = 1000   # the oracle test uses seeds 0..49


def softmax_graph(rng, seed: int):
    """SOFTMAX over rows of 1..40 (up to 3 rows deep), input scales 0.005..2 (beta 1 or random): differences from
    "everything saturates" to "every code counts"."""
    shape = tuple(int(v) for v in rng.integers(1, 4, int(rng.integers(0, 3)))) + (int(rng.integers(1, 41)),)
    in_q = (loguniform(rng, 0.005, 2.0), int(rng.integers(-128, 128)))
    beta = 1.0 if seed % 2 else float(np.float32(rng.uniform(0.2, 3.0)))
    params = dict(seed=seed, shape=shape, in_q=in_q, beta=beta)
    return params, tflm.softmax(shape, in_q, beta), [random_inputs(rng, shape)]


def max_pool_graph(rng, seed: int):
    padding = "SAME" if seed % 2 == 0 else "VALID"
    h, w, kh, kw, stride, _ = window_geometry(rng, 12, False, padding)
    c = int(rng.integers(1, 9))
    q = (loguniform(rng, 0.005, 0.1), int(rng.integers(-128, 128)))
    activation = str(rng.choice(["NONE", "RELU", "RELU6"]))
    oh, ow = out_size(h, kh, stride[0], 1, padding), out_size(w, kw, stride[1], 1, padding)
    params = dict(seed=seed, input=(h, w, c), kernel=(kh, kw), stride=stride, padding=padding, activation=activation,
                  q=q)
    return params, tflm.max_pool2d((h, w, c), q, (oh, ow, c), (kh, kw), stride, padding, activation), \
        [random_inputs(rng, (h, w, c))]


def elementwise_graph(opcode: int, out_q=None, options_type: int = 0, make_options=None, out_ratio=None):
    """A random shape, input quantization (scales 0.002..1, so the interesting region of each function is hit
    at some seeds and saturated at others) and output quantization (``out_q`` when the builtin fixes it; an output
    scale of ``s_in`` times a ratio in ``out_ratio`` when the builtin bounds it)."""
    def make(rng, seed: int):
        shape = tuple(int(v) for v in rng.integers(1, 9, int(rng.integers(1, 4))))
        in_q = (loguniform(rng, 0.002, 1.0), int(rng.integers(-128, 128)))
        q = out_q or (loguniform(rng, 0.002, 1.0) if out_ratio is None else
                      float(np.float32(in_q[0] * loguniform(rng, *out_ratio))), int(rng.integers(-128, 128)))
        options = make_options(rng) if make_options else None
        params = dict(seed=seed, shape=shape, in_q=in_q, out_q=q, options=getattr(options, "__dict__", None))
        # every code once, then random samples
        codes = np.resize(np.arange(-128, 128, dtype=np.int8), (1, *shape))
        inputs = np.concatenate([codes, random_inputs(rng, shape)])
        return params, tflm.elementwise(opcode, shape, in_q, q, options_type, options), [inputs]
    return make


def leaky_relu_options(rng):
    return tflm.tfl.LeakyReluOptionsT(alpha=float(np.float32(rng.choice([0.1, 0.2, 0.01, -0.3, 1.5]))))


def oracle_graph(op: str):
    def make(rng, seed: int):
        case = MAKERS[op](rng, seed)
        return case.params, case.tflite, case.inputs
    return make


OP = tflm.OP
GRAPH_MAKERS = {**{op: oracle_graph(op) for op in MAKERS}, "softmax": softmax_graph, "max_pool2d": max_pool_graph,
                "logistic": elementwise_graph(OP.LOGISTIC, (1 / 256, -128)),
                "tanh": elementwise_graph(OP.TANH, (1 / 128, 0)),
                "relu": elementwise_graph(OP.RELU), "relu6": elementwise_graph(OP.RELU6),
                "leaky_relu": elementwise_graph(OP.LEAKY_RELU, None, tflm.tfl.BuiltinOptions.LeakyReluOptions,
                                                leaky_relu_options),
                "hard_swish": elementwise_graph(OP.HARD_SWISH, out_ratio=(0.05, 4.0)), "quantize": elementwise_graph(OP.QUANTIZE)}


@pytest.mark.parametrize("op", GRAPH_MAKERS)
def test_imported_op_equals_tflm_on_every_tensor_and_c_equals_hwsim(op, tmp_path, gcc):
    op_id = list(GRAPH_MAKERS).index(op)
    graphs = []
    for seed in range(FIRST_SEED, FIRST_SEED + GRAPHS):
        params, data, inputs = GRAPH_MAKERS[op](np.random.default_rng([op_id, seed]), seed)
        path = tmp_path / f"{op}{seed}.tflite"
        path.write_bytes(data)
        imported = import_tflite(path)
        sim = simulate(imported.model, inputs, quantized=True, keep_values=True)
        oracle = compare_with_tflm(path, imported.tensor_names, inputs, sim.values)
        graphs.append((params, imported.model, inputs, sim, oracle))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        c_outs = list(pool.map(lambda k: build_and_run(graphs[k][1], tmp_path / f"c{k}", graphs[k][2])[1][0],
                               range(len(graphs))))
    failures = [f"{params}: TFLM differs in {oracle.mismatched}" for params, *_, oracle in graphs
                if not oracle.bit_exact]
    failures += [f"{g[0]}: C differs in {int(np.count_nonzero(c != g[3].int_outputs[0]))} elements"
                 for g, c in zip(graphs, c_outs) if not np.array_equal(c, g[3].int_outputs[0])]
    assert not failures, f"{len(failures)} of {GRAPHS} {op} graphs:\n" + "\n".join(failures)
    assert all(o.tensors == len(g[2]) + 1 for *g, o in graphs)   # inputs and the output compared
