"""bench/zoo.py and bench/published_rows.py: the zoo networks have their published sizes, the small ones lower
to an IntModel with the same MAC count and survive the cache, and every published row is well formed.

Scope (the file runs in well under 30 s): MACs and parameters of every zoo network are counted on the torch
module built on the meta device (no weights, no BatchNorm statistics pass: they change neither count);
quantization and the cache are tested on the smallest network, mbv2-w0.3-r64, only. ``python -m bench.zoo``
quantizes all of them and prints the same check on the IntModels.
"""

from pathlib import Path

import numpy as np
import pytest
from bench_modules import bench_module

published_rows = bench_module("published_rows")
zoo = bench_module("zoo")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One torch thread: these networks are small, and on a loaded machine (the suite runs with -n 2) OpenMP
    barriers across threads slow building and quantizing them by 10x or more."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


REQUIRED = ("mbv2-w0.35-r144", "mbv2-w0.3-r64", "mobilenet_v1-1.0-224", "mobilenet_v2-1.0-224", "resnet18-224",
            "resnet50-224")


def test_zoo_has_the_required_networks():
    assert set(REQUIRED) <= set(zoo.ZOO)
    for name, (factory, shape) in zoo.ZOO.items():
        assert callable(factory) and len(shape) == 3, name


@pytest.fixture(scope="module")
def sizes():
    """name -> (torch MACs per sample, parameter count), from modules built and run on the meta device."""
    import torch

    out = {}
    with torch.device("meta"):
        for name, (factory, shape) in zoo.ZOO.items():
            model = factory(bn_batches=0)
            out[name] = (zoo.torch_macs(model, shape), zoo.param_count(model))
    return out


@pytest.mark.parametrize("name", [n for n, p in zoo.PUBLISHED.items() if p.macs is not None])
def test_macs_and_params_match_published_within_2_percent(sizes, name):
    macs, params = sizes[name]
    pub = zoo.PUBLISHED[name]
    assert abs(macs / pub.macs - 1) < 0.02, f"{name}: {macs / 1e6:.2f}M MACs vs published {pub.macs / 1e6:.2f}M"
    assert abs(params / pub.params - 1) < 0.02, f"{name}: {params / 1e6:.3f}M params vs {pub.params / 1e6:.3f}M"


def test_exact_counts_of_known_layouts(sizes):
    # torchvision's mobilenet_v2 / resnet18 / resnet50 parameter counts; MACs of the MCUNet mbv2-w0.35 layout
    assert sizes["mobilenet_v2-1.0-224"][1] == 3_504_872
    assert sizes["resnet18-224"][1] == 11_689_512
    assert sizes["resnet50-224"][1] == sizes["resnet50_v1-224"][1] == 25_557_032
    assert sizes["resnet50_v1-224"][0] < sizes["resnet50-224"][0]  # v1.5 pays for the stride in the 3x3 conv
    assert round(sizes["mbv2-w0.35-r144"][0] / 1e5) == 235  # 23.5M


def test_mobilenet_v2_default_is_the_sim_throughput_network():
    import torch

    mobilenetv2 = bench_module("mobilenetv2")

    # same construction order and RNG use as mobilenetv2.build(seed=0) (small inputs keep the check cheap)
    a, b = zoo.mobilenet_v2(resolution=32, bn_batches=1), mobilenetv2.build(seed=0, calib_batches=1, size=32)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


def test_weights_are_deterministic():
    import torch

    a, b = zoo.build("mbv2-w0.3-r64"), zoo.build("mbv2-w0.3-r64")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    bn = next(m for m in a.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))  # realistic statistics


def test_int_model_macs_and_cache(tmp_path, sizes, capsys):
    name = "mbv2-w0.3-r64"
    m = zoo.int_model(name, cache_dir=tmp_path)
    assert "quantized in" in capsys.readouterr().out
    assert zoo.int_macs(m) == sizes[name][0]
    assert (tmp_path / f"{name}.intonly").exists()
    meta = zoo.cached_meta(name, tmp_path)
    assert meta["fingerprint"] == zoo.fingerprint() and meta["quantize_s"] > 0
    again = zoo.int_model(name, cache_dir=tmp_path)  # from the cache: no second quantization
    assert capsys.readouterr().out == ""
    assert [n.name for n in again.nodes] == [n.name for n in m.nodes]
    assert all(np.array_equal(again.constants[k], v) for k, v in m.constants.items())
    # a cache entry made by other quantizer/model sources is rebuilt
    meta_path = tmp_path / f"{name}.json"
    meta_path.write_text(meta_path.read_text().replace(zoo.fingerprint(), "0" * 64))
    zoo.int_model(name, cache_dir=tmp_path)
    assert "quantized in" in capsys.readouterr().out


# ---- published rows ----------------------------------------------------------------------------------------

def test_published_rows_are_well_formed():
    rows = published_rows.ROWS
    assert rows
    for r in rows:
        assert r.model in zoo.ZOO, r
        assert r.exact_model is None or r.exact_model in zoo.ZOO, r
        assert r.measured_ms > 0 and r.batch >= 1, r
        assert r.clock_mhz is None or r.clock_mhz > 0, r
        assert any(src in r.source for src in (published_rows.TINYENGINE, published_rows.PIXEL2,
                                               published_rows.HAWQ)), r
        assert r.column and r.target, r


def test_published_rows_cover_the_brief():
    by = {(r.model, r.target, r.column): r for r in published_rows.ROWS}
    h743 = [r for r in published_rows.ROWS if r.target == "cortex-m7"]
    assert {r.model for r in h743} == {"mbv2-w0.35-r144", "mbv2-w0.3-r64"}
    assert all(r.clock_mhz == 480 and r.batch == 1 and r.measured_sram_kb for r in h743)
    assert len([r for r in h743 if r.model == "mbv2-w0.3-r64"]) == 4
    assert by[("mbv2-w0.35-r144", "cortex-m7", "TinyEngine @0363956")].measured_ms == 124
    assert by[("mobilenet_v2-1.0-224", "hexagon-hvx", "Fixed point (HVX, NN-API)")].measured_ms == 15.5
    assert by[("resnet50-224", "cortex-a73", "Fixed point (CPU)")].measured_ms == 440
    t4 = {r.model: r for r in published_rows.ROWS if r.target == "nvidia-t4"}
    assert set(t4) == {"resnet18-224", "resnet50-224"} and all(r.batch == 8 for r in t4.values())
    assert t4["resnet50-224"].ms_per_sample == pytest.approx(8.5 / 8)
    assert len(published_rows.OUT_OF_MEMORY) == 2


def test_published_row_targets_are_target_files():
    specs = Path(__file__).resolve().parents[1] / "targets" / "specs"
    for r in published_rows.ROWS:
        assert (specs / f"{r.target}.toml").exists(), r.target
