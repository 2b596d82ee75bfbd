"""C template families (docs/codegen-families.md): every family's kernels give hwsim's bits, bit for bit.

* x86 (native, AVX2): random single-layer models (conv2d 3x3 / strided-dilated-grouped / 1x1 / depthwise with odd
  channel counts, dense, matmul both layouts; int8; zero points at both ends of the range) and the demo digits CNN
  and tiny ViT, in all three rounding modes; also built without -mavx2 (the generic bodies);
* neon: the same models on AArch64 under qemu-aarch64, with SDOT (cortex-a76) and without (cortex-a53);
* cortex-m-dsp / cortex-m-mve: the digits CNN (and random layers on the M55) under qemu-system-arm on cortex-m4 and
  cortex-m55;
* disassembly: smlad (DSP), vmladav/vmlava (MVE), sdot (NEON), vpdpbusd (x86 -march=icelake-server, compile only:
  this host has no AVX-512) in the kernels of the digits project;
* build_report.json: which ops each family specialised and which fell back to the generic kernels.
"""

import dataclasses
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tool, single_op_model

from intonly.codegen.c import cross
from intonly.codegen.c.emit import emit_c
from intonly.codegen.c.families import FAMILIES
from intonly.codegen.c.toolchain import HOST_CFLAGS, build_host, run_host
from intonly.hwsim import simulate
from intonly import QuantConfig, build_and_run, quantize
from intonly.demos import digits
from intonly.workloads import load_workload
from intonly.quantize.bounds import weighted_bound
from intonly.quantize.ir import IntModel, TensorInfo
from intonly.quantize.lower import quantize as quantize_workload
from intonly.targets import load_target

MODES = ["half_up", "double", "half_even"]
X86_CFLAGS = HOST_CFLAGS + " " + FAMILIES["x86"].cflags
MAC_OPS = {"conv2d", "dense", "matmul"}


def host_has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def require_avx2():
    if not host_has_avx2():
        pytest.skip("this host's CPU has no AVX2: the x86 family's kernels cannot run here")


def require_aarch64():
    require_tool("aarch64-linux-gnu-gcc", "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross")
    require_tool("qemu-aarch64", "apt-get install qemu-user")
    if not Path("/usr/aarch64-linux-gnu/include/stdio.h").is_file():
        require_tool("aarch64-linux-gnu-libc-headers", "apt-get install libc6-dev-arm64-cross")


def require_cortex_m():
    require_tool("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    require_tool("qemu-system-arm", "apt-get install qemu-system-arm")


# ---- models ------------------------------------------------------------------------------------------------------

def act(name, shape, zp, bits=8):
    return TensorInfo(name, "int8" if bits <= 8 else "int16", tuple(shape), 0.05, zp, bits)


def requant_pairs(rng, n, magnitude):
    """Per-channel (b, c) scaling accumulators of ~``magnitude`` to ~127 (some saturate, some land mid-range)."""
    b = rng.integers(1 << 30, 1 << 31, size=n)
    c = 31 + round(math.log2(max(magnitude, 1) / 127)) + rng.integers(-1, 2, size=n)
    return b.astype(np.int32), np.clip(c, 1, 62).astype(np.int32)


def conv_layer(rng, h, w, cin, oc, k, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, zp_in=0,
               zp_out=0, out_bits=8, in_bits=8):
    kh, kw = k
    x = act("x", (h, w, cin), zp_in, in_bits)
    weight = rng.integers(-127, 128, size=(oc, kh, kw, cin // groups)).astype(np.int8)
    oh = (h + padding[0] + padding[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + padding[1] + padding[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = act("y", (oh, ow, oc), zp_out, out_bits)
    lo, hi = y.qrange()
    mult, shift = requant_pairs(rng, oc, float(np.abs(weight).sum() / oc) * 64)
    attrs = {"stride": list(stride), "padding": list(padding), "dilation": list(dilation), "groups": groups,
             "input_zp": zp_in, "output_zp": zp_out, "act_min": lo, "act_max": hi}
    consts = {"weight": weight, "bias": rng.integers(-5000, 5000, size=oc).astype(np.int32), "multiplier": mult,
              "shift": shift}
    model = single_op_model("conv2d", [x], y, attrs, consts)
    assert weighted_bound(model, model.nodes[1]) < 2**31
    return model


def dense_layer(rng, shape, n, zp_in, zp_out=0, out_bits=8):
    k = shape[-1]
    x = act("x", shape, zp_in)
    y = act("y", tuple(shape[:-1]) + (n,), zp_out, out_bits)
    weight = rng.integers(-127, 128, size=(n, k)).astype(np.int8)
    mult, shift = requant_pairs(rng, n, float(np.abs(weight).sum() / n) * 64)
    lo, hi = y.qrange()
    consts = {"weight": weight, "bias": rng.integers(-2**16, 2**16, size=n).astype(np.int32), "multiplier": mult,
              "shift": shift}
    return single_op_model("dense", [x], y, {"input_zp": zp_in, "output_zp": zp_out, "act_min": lo, "act_max": hi},
                           consts)


def matmul_layer(rng, lead, m, k, n, transpose_b, zpa, zpb, out_bits=8):
    a = act("a", lead + (m, k), zpa)
    b = act("b", lead + ((n, k) if transpose_b else (k, n)), zpb)
    y = act("y", lead + (m, n), 3, out_bits)
    mult, shift = requant_pairs(rng, 1, k * 128 * 128 / 8)
    lo, hi = y.qrange()
    attrs = {"input_zps": [zpa, zpb], "transpose_b": transpose_b, "multiplier": int(mult[0]), "shift": int(shift[0]),
             "output_zp": 3, "act_min": lo, "act_max": hi}
    return single_op_model("matmul", [a, b], y, attrs)


def random_layers():
    """(name, model) for every case the SIMD loop nests distinguish."""
    rng = np.random.default_rng(20240605)
    return [
        ("conv3x3_c19_oc13", conv_layer(rng, 9, 7, 19, 13, (3, 3), padding=(1, 1, 1, 1), zp_in=-128, zp_out=-128)),
        ("conv3x3_s2_d2_g3", conv_layer(rng, 9, 8, 15, 9, (3, 3), stride=(2, 2), padding=(2, 1, 0, 2),
                                        dilation=(2, 2), groups=3, zp_in=37, zp_out=5, out_bits=16)),
        ("conv1x1_c37_oc21", conv_layer(rng, 5, 6, 37, 21, (1, 1), zp_in=127, zp_out=-3)),
        ("conv1x1_s2_pad1", conv_layer(rng, 5, 6, 24, 8, (1, 1), stride=(2, 2), padding=(1, 1, 1, 1), zp_in=-60)),
        ("stem3x3_s2_c3_oc37", conv_layer(rng, 11, 10, 3, 37, (3, 3), stride=(2, 2), padding=(0, 0, 1, 1), zp_in=-128,
                                          zp_out=7, out_bits=16)),
        ("conv3x3_g2_ocg8", conv_layer(rng, 6, 5, 8, 16, (3, 3), padding=(1, 1, 1, 1), groups=2, zp_in=127, zp_out=-20)),
        ("dw3x3_c19", conv_layer(rng, 7, 9, 19, 19, (3, 3), padding=(1, 1, 1, 1), groups=19, zp_in=-5, zp_out=-128)),
        ("dw5x5_d2_c24", conv_layer(rng, 8, 8, 24, 24, (5, 5), padding=(4, 4, 4, 4), dilation=(2, 2), groups=24,
                                    zp_in=100)),
        ("dw3x3_s2_c16", conv_layer(rng, 9, 11, 16, 16, (3, 3), stride=(2, 2), padding=(0, 0, 1, 1), groups=16,
                                    zp_in=-128, zp_out=3, out_bits=16)),
        ("dw_mult2_c6", conv_layer(rng, 6, 6, 6, 12, (3, 3), padding=(1, 1, 1, 1), groups=6, zp_in=-128)),
        ("dw9x9_c9", conv_layer(rng, 10, 10, 9, 9, (9, 9), padding=(4, 4, 4, 4), groups=9, zp_in=11)),
        ("conv_patch_over_4096", conv_layer(rng, 3, 3, 520, 5, (3, 3), padding=(1, 1, 1, 1), zp_in=-128)),
        ("conv_in16", conv_layer(rng, 5, 5, 7, 6, (3, 3), zp_in=300, in_bits=12)),
        ("dense_k203_n13", dense_layer(rng, (203,), 13, -128, zp_out=-10)),
        ("dense_rows3_k50", dense_layer(rng, (3, 50), 6, 90, out_bits=16)),
        ("dense_k7_n3", dense_layer(rng, (7,), 3, 0)),
        ("matmul_bt_k33", matmul_layer(rng, (2,), 5, 33, 11, 1, -128, 77)),
        ("matmul_b_k19_n70", matmul_layer(rng, (3,), 7, 19, 70, 0, 45, -128, out_bits=16)),
        ("matmul_b_k1_n9", matmul_layer(rng, (), 4, 1, 9, 0, 0, 127)),
        # zero points outside int8 are refused by the IR validator (docs/trust.md); the SIMD kernels still hand an
        # in_zp outside int8 to their generic loop, for callers of the C functions that bypass the IR
    ]


def layer_inputs(model, batch=3, seed=0):
    """Random integers in each input's range, with the first sample at the type minimum and the second at the
    maximum (the extremes of x - zp)."""
    rng = np.random.default_rng(seed)
    out = []
    for name in [n.outputs[0] for n in model.nodes if n.op == "quantize"]:
        info = model.tensors[name]
        lo, hi = info.qrange()
        x = rng.integers(lo, hi + 1, size=(batch,) + info.shape).astype(info.dtype)
        x[0] = lo
        x[1] = hi
        out.append(x)
    return out


def merge_models(named):
    """One IntModel holding every (name, single-layer model) side by side (names prefixed): one C build runs all
    the layers (their kernels are shared per signature, their shapes and constants are runtime arguments)."""
    tensors, nodes, constants, inputs, outputs = {}, [], {}, [], []
    for prefix, model in named:
        ren = {t: f"{prefix}/{t}" for t in model.tensors}
        for t, info in model.tensors.items():
            tensors[ren[t]] = dataclasses.replace(info, name=ren[t])
        for node in model.nodes:
            nodes.append(dataclasses.replace(node, name=f"{prefix}/{node.name}", inputs=[ren[t] for t in node.inputs],
                                             outputs=[ren[t] for t in node.outputs],
                                             params={r: f"{prefix}/{c}" for r, c in node.params.items()}))
        constants.update({f"{prefix}/{c}": v for c, v in model.constants.items()})
        inputs += [ren[t] for t in model.inputs]
        outputs += [ren[t] for t in model.outputs]
    merged = IntModel("layers", "half_up", inputs, outputs, tensors, nodes, constants)
    merged.validate()
    return merged


@pytest.fixture(scope="module")
def layers():
    """The random layers as one model, and their integer inputs (3 samples each)."""
    named = random_layers()
    model = merge_models(named)
    inputs = [x for i, (_, layer) in enumerate(named) for x in layer_inputs(layer, seed=i)]
    return model, inputs, named


@pytest.fixture(scope="module")
def demos():
    x_tr, _, x_te, _ = digits.load_split()
    cnn = quantize(digits.load_model(), x_tr, QuantConfig())
    work = load_workload("vit")
    vit = quantize_workload(work.model, work.calib, work.config, name=work.name)
    return {"digits": (cnn, x_te), "vit": (vit, [a[:48] for a in work.x])}


def ports(model, project):
    return [(model.tensors[t].dtype, model.tensors[t].shape) for t in project.output_tensors]


def run_family_host(model, inputs, mode, family, out, cflags=X86_CFLAGS, quantized=True):
    """Emit ``model`` in ``family``, build it on the host with ``cflags``, run it; returns (project, hwsim, C)."""
    sim = simulate(model, inputs, rounding=mode, quantized=quantized)
    project, c_outs = build_and_run(model, out, sim.int_inputs, rounding=mode, cflags=cflags, family=family)
    return project, sim.int_outputs, c_outs


def run_family_target(model, inputs, mode, family, target_name, out, quantized=True, timeout=120):
    target = load_target(target_name)
    sim = simulate(model, inputs, rounding=mode, quantized=quantized)
    project = emit_c(model, out, family=family, rounding=mode)
    elf = cross.build_for_target(out, target)
    return project, sim.int_outputs, cross.run_on_target(elf, target, sim.int_inputs, ports(model, project),
                                                         timeout=timeout)


def assert_bits_equal(c_outs, sim_outs, what):
    assert len(c_outs) == len(sim_outs)
    for c, s in zip(c_outs, sim_outs):
        assert c.shape == s.shape and c.dtype == s.dtype, what
        np.testing.assert_array_equal(c, s, err_msg=what)


def mnemonics(disassembly: str) -> set[str]:
    """The instruction mnemonics of an objdump -d listing (``addr:<TAB>bytes<TAB>mnemonic<TAB>operands``)."""
    return {line.split("\t")[2].split()[0] for line in disassembly.splitlines()
            if line.count("\t") >= 2 and line.split("\t")[2].strip()}


def has(disassembly: str, instruction: str) -> bool:
    """Whether the listing has a mnemonic starting with ``instruction`` (vmlavat.s8 has vmlava)."""
    return any(m.startswith(instruction) for m in mnemonics(disassembly))


def specialised_fns(project):
    return {k["fn"] for k in project.kernels if k["source"] == project.family}


# ---- x86, native -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_x86_random_layers_equal_hwsim(layers, mode, tmp_path, gcc):
    require_avx2()
    model, inputs, named = layers
    project, sim, c_outs = run_family_host(model, inputs, mode, "x86", tmp_path / "layers")
    for (name, _), c, s in zip(named, c_outs, sim):
        assert_bits_equal([c], [s], f"x86 {name} {mode}")
    for k in project.kernels:
        int8_in = k["dtypes"][:2] == ["int8", "int8"]
        assert k["source"] == ("x86" if int8_in else "generic"), k
        assert (k["guard"] == "defined(__AVX2__)") == int8_in
    assert {k["fn"] for k in project.kernels} == {
        "intonly_conv2d_s8_s8_s8", "intonly_conv2d_s8_s8_s16", "intonly_conv2d_s16_s8_s8", "intonly_dense_s8_s8_s8",
        "intonly_dense_s8_s8_s16", "intonly_matmul_s8_s8_s8", "intonly_matmul_s8_s8_s16"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("demo", ["digits", "vit"])
def test_x86_demos_equal_hwsim(demos, demo, mode, tmp_path, gcc):
    require_avx2()
    model, x = demos[demo]
    project, sim, c_outs = run_family_host(model, x, mode, "x86", tmp_path / demo, quantized=False)
    assert_bits_equal(c_outs, sim, f"x86 {demo} {mode}")
    assert len(c_outs[0]) == len(x if demo == "digits" else x[0])
    assert {"intonly_conv2d_s8_s8_s8", "intonly_dense_s8_s8_s8"} <= specialised_fns(project)


def test_x86_family_without_avx2_flags_compiles_the_generic_bodies(demos, layers, tmp_path, gcc):
    model, x = demos["digits"]
    _, sim, c_outs = run_family_host(model, x[:64], "double", "x86", tmp_path / "digits", cflags=HOST_CFLAGS,
                                     quantized=False)
    assert_bits_equal(c_outs, sim, "x86 family, no -mavx2")
    objdump = require_tool("objdump", "apt-get install binutils")
    text = subprocess.run([objdump, "-d", str(tmp_path / "digits" / "model")], capture_output=True, text=True,
                          check=True).stdout
    assert not has(text, "vpmaddwd") and not has(text, "vpmulld")


def test_x86_kernels_use_avx2_and_vnni_instructions(demos, tmp_path, gcc):
    """AVX2 build: vpmaddwd (the int16 pair products); -march=icelake-server: vpdpbusd (AVX-512 VNNI). Compile only:
    this host cannot run AVX-512."""
    objdump = require_tool("objdump", "apt-get install binutils")
    for demo in ("digits", "vit"):
        model, _ = demos[demo]
        out = tmp_path / demo
        emit_c(model, out, family="x86")
        found = {}
        for flags in ("-mavx2 -mfma", "-march=icelake-server"):
            obj = out / f"kernels{len(found)}.o"
            subprocess.run([gcc, *HOST_CFLAGS.split(), *flags.split(), "-c", "kernels.c", "-o", obj.name], cwd=out,
                           check=True, capture_output=True, text=True)
            found[flags] = subprocess.run([objdump, "-d", str(obj)], capture_output=True, text=True, check=True).stdout
        assert has(found["-mavx2 -mfma"], "vpmaddwd") and not has(found["-mavx2 -mfma"], "vpdpbusd")
        assert has(found["-march=icelake-server"], "vpdpbusd")


REQUANT_HARNESS = r"""
#include <stdio.h>
#include "intonly_runtime.h"
#include "helpers.h"
/* per line: bits zp lo hi, then 8 x (acc b c); prints the 8 outputs of intonly_simd_requant_int<bits> */
int main(void)
{
    int bits;
    long zp, lo, hi;
    while (scanf("%d %ld %ld %ld", &bits, &zp, &lo, &hi) == 4) {
        int32_t acc[8], mult[8], shift[8];
        int8_t y8[8];
        int16_t y16[8];
        for (int i = 0; i < 8; ++i) {
            long a, b, c;
            if (scanf("%ld %ld %ld", &a, &b, &c) != 3) {
                return 1;
            }
            acc[i] = (int32_t)a;
            mult[i] = (int32_t)b;
            shift[i] = (int32_t)c;
        }
        if (bits == 8) {
            intonly_simd_requant_int8(y8, acc, mult, shift, 8, (int32_t)zp, (int32_t)lo, (int32_t)hi);
        } else {
            intonly_simd_requant_int16(y16, acc, mult, shift, 8, (int32_t)zp, (int32_t)lo, (int32_t)hi);
        }
        for (int i = 0; i < 8; ++i) {
            printf("%d ", bits == 8 ? (int)y8[i] : (int)y16[i]);
        }
        printf("\n");
    }
    return 0;
}
"""


def requant_cases(rng, n_lines=3000):
    """(bits, zp, lo, hi, [(acc, b, c)] * 8) lines: every shift 1..62, accumulators and multipliers at their
    extremes, exact ties of a * b / 2^c for each shift, random values; output ranges of int8 and int16, narrowed
    ones, zero points at both ends."""
    acc_edges = [-(2**31), 2**31 - 1, 0, 1, -1, 2**15, -(2**15)]
    mult_edges = [0, 1, 2**30, 2**31 - 1]
    lanes = []
    for c in range(1, 63):
        for a in acc_edges:
            for b in mult_edges:
                lanes.append((a, b, c))
        for _ in range(40):  # a * 2^30 = 2^(c-1) mod 2^c: a tie (a = k 2^(c-30) + 2^(c-31) for c >= 31)
            if 31 <= c <= 61:
                k = int(rng.integers(-(2**(61 - c)), 2**(61 - c)))
                a = k * 2**(c - 30) + 2**(c - 31)
            else:
                a = int(rng.integers(-(2**31), 2**31))
            if -(2**31) <= a < 2**31:
                lanes.append((a, 2**30, c))
    while len(lanes) < 8 * n_lines:
        lanes.append((int(rng.integers(-(2**31), 2**31)), int(rng.integers(0, 2**31)), int(rng.integers(1, 63))))
    lanes = [lanes[i] for i in rng.permutation(len(lanes))]
    ranges = [(8, -128, 127), (8, -128, -128), (8, 0, 6), (8, 127, 127), (16, -32768, 32767), (16, -100, 3000)]
    lines = []
    for i in range(0, len(lanes) - 7, 8):
        bits, lo, hi = ranges[(i // 8) % len(ranges)]
        zp = [-128, 127, 0, int(rng.integers(-128, 128))][(i // 8) % 4]
        lines.append((bits, zp, lo, hi, lanes[i:i + 8]))
    return lines


@pytest.mark.parametrize("mode", MODES)
def test_x86_vector_requant_equals_hwsim_on_edges_and_ties(mode, tmp_path, gcc):
    """intonly_simd_requant_int8/16 (8 lanes in int64 arithmetic, no 64-bit arithmetic shift in AVX2) give
    clamp(R(acc; b, c) + zp, lo, hi) of hwsim for every shift 1..62, accumulators and multipliers at their ends,
    exact ties, and 24 000 random lanes."""
    require_avx2()
    from intonly.codegen.c.emit import environment
    from intonly.hwsim.numerics import requant, rounding_id

    env = environment("x86")
    (tmp_path / "intonly_runtime.h").write_text(env.get_template("runtime.h.j2").render(rounding=mode))
    (tmp_path / "helpers.h").write_text(env.get_template("_helpers.c.j2").render(rounding=mode))
    (tmp_path / "main.c").write_text(REQUANT_HARNESS)
    subprocess.run([gcc, *X86_CFLAGS.split(), "-o", "requant", "main.c"], cwd=tmp_path, check=True)
    lines = requant_cases(np.random.default_rng(11))
    text = "\n".join(f"{bits} {zp} {lo} {hi} " + " ".join(f"{a} {b} {c}" for a, b, c in lanes)
                     for bits, zp, lo, hi, lanes in lines)
    got = subprocess.run([str(tmp_path / "requant")], input=text, capture_output=True, text=True, check=True).stdout
    got = [[int(v) for v in line.split()] for line in got.splitlines()]
    mid = rounding_id(mode)
    want = [[min(max(int(requant(a, b, c, mid)) + zp, lo), hi) for a, b, c in lanes]
            for _, zp, lo, hi, lanes in lines]
    assert len(got) == len(want) == len(lines)
    bad = [(line, g, w) for line, g, w in zip(lines, got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(lines)} lines differ, first: {bad[0]}"


# Scalar C for the AVX-512 intrinsics the VNNI path calls, from Intel's pseudo-code, so the VNNI path's logic (the
# x + 128 / sum-of-weights correction, the tail masks, the reductions) runs on this AVX2-only host. Included after
# immintrin.h, whose guard then makes the kernels' own #include a no-op; the macros rename the types and calls.
VNNI_EMULATION = r"""
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
typedef union { int8_t b[64]; int32_t d[16]; } emu512;
typedef uint64_t emumask64;
#define __m512i emu512
#define __mmask64 emumask64
static inline emu512 emu_set1_epi8(char c) { emu512 v; memset(v.b, c, 64); return v; }
static inline emu512 emu_setzero(void) { emu512 v; memset(&v, 0, sizeof v); return v; }
static inline emu512 emu_maskz_loadu_epi8(emumask64 m, const void *p)
{
    emu512 v;
    for (int i = 0; i < 64; ++i) v.b[i] = (m >> i & 1) ? ((const int8_t *)p)[i] : 0;
    return v;
}
static inline emu512 emu_xor(emu512 a, emu512 b) { for (int i = 0; i < 64; ++i) a.b[i] ^= b.b[i]; return a; }
static inline emu512 emu_dpbusd(emu512 s, emu512 a, emu512 b)
{
    for (int j = 0; j < 16; ++j) {
        uint32_t t = (uint32_t)s.d[j];
        for (int k = 0; k < 4; ++k) t += (uint32_t)((int32_t)(uint8_t)a.b[4 * j + k] * (int32_t)b.b[4 * j + k]);
        memcpy(&s.d[j], &t, 4);
    }
    return s;
}
static inline __m256i emu_lo256(emu512 v) { return _mm256_loadu_si256((const __m256i *)v.d); }
static inline __m256i emu_hi256(emu512 v, int k) { return _mm256_loadu_si256((const __m256i *)(v.d + 8 * k)); }
#define _mm512_set1_epi8 emu_set1_epi8
#define _mm512_setzero_si512 emu_setzero
#define _mm512_maskz_loadu_epi8 emu_maskz_loadu_epi8
#define _mm512_xor_si512 emu_xor
#define _mm512_dpbusd_epi32 emu_dpbusd
#define _mm512_castsi512_si256 emu_lo256
#define _mm512_extracti64x4_epi64 emu_hi256
"""
VNNI_GUARD = "#if defined(__AVX512VNNI__) && defined(__AVX512BW__)"


def test_x86_vnni_path_equals_hwsim_with_emulated_intrinsics(demos, layers, tmp_path, gcc):
    """The VNNI dot products (compile-only on real hardware here) run with the AVX-512 intrinsics emulated in C:
    the digits CNN and the random layers give hwsim's bits."""
    require_avx2()
    for name, (model, inputs, quantized) in {"digits": (demos["digits"][0], demos["digits"][1][:100], False),
                                             "layers": (layers[0], layers[1], True)}.items():
        out = tmp_path / name
        sim = simulate(model, inputs, rounding="half_even", quantized=quantized)
        project = emit_c(model, out, family="x86", rounding="half_even")
        kernels = (out / "kernels.c").read_text()
        assert VNNI_GUARD in kernels
        (out / "kernels.c").write_text(kernels.replace(VNNI_GUARD, "#if 1 /* AVX-512 emulated */"))
        (out / "vnni_emulation.h").write_text(VNNI_EMULATION)
        exe = build_host(out, X86_CFLAGS + " -include vnni_emulation.h")
        assert_bits_equal(run_host(exe, sim.int_inputs, ports(model, project)), sim.int_outputs, f"VNNI {name}")


# ---- neon, qemu-aarch64 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target_name", ["cortex-a76", "cortex-a53"])  # SDOT / vmlal_s16 paths
def test_neon_digits_and_layers_equal_hwsim(demos, layers, target_name, tmp_path):
    require_aarch64()
    model, x = demos["digits"]
    for mode in MODES:
        project, sim, c_outs = run_family_target(model, x, mode, "neon", target_name, tmp_path / f"digits_{mode}",
                                                 quantized=False)
        assert_bits_equal(c_outs, sim, f"neon {target_name} digits {mode}")
        assert {"intonly_conv2d_s8_s8_s8", "intonly_dense_s8_s8_s8"} <= specialised_fns(project)
    model, inputs, named = layers
    _, sim, c_outs = run_family_target(model, inputs, "half_even", "neon", target_name, tmp_path / "layers")
    for (name, _), c, s in zip(named, c_outs, sim):
        assert_bits_equal([c], [s], f"neon {target_name} {name}")


def test_neon_vit_equal_hwsim(demos, tmp_path):
    require_aarch64()
    model, x = demos["vit"]
    _, sim, c_outs = run_family_target(model, [a[:16] for a in x], "double", "neon", "cortex-a76", tmp_path / "vit",
                                       quantized=False)
    assert_bits_equal(c_outs, sim, "neon cortex-a76 vit")


def test_neon_kernels_use_sdot_with_dotprod(demos, tmp_path):
    require_aarch64()
    objdump = require_tool("aarch64-linux-gnu-objdump", "apt-get install binutils-aarch64-linux-gnu")
    out = tmp_path / "digits"
    emit_c(demos["digits"][0], out, family="neon")
    text = {}
    for march in ("armv8.2-a+dotprod", "armv8-a"):
        subprocess.run(["aarch64-linux-gnu-gcc", *HOST_CFLAGS.split(), f"-march={march}", "-c", "kernels.c", "-o",
                        f"{march}.o"], cwd=out, check=True, capture_output=True, text=True)
        text[march] = subprocess.run([objdump, "-d", str(out / f"{march}.o")], capture_output=True, text=True,
                                     check=True).stdout
    assert has(text["armv8.2-a+dotprod"], "sdot")
    assert not has(text["armv8-a"], "sdot") and has(text["armv8-a"], "smlal")


# ---- Cortex-M: disassembly and qemu-system-arm -------------------------------------------------------------------

def compile_cortex_m(project_dir: Path, cpu_flags: str) -> dict[str, str]:
    """Compile every .c of the project with arm-none-eabi-gcc -c; the disassembly of each object."""
    cc = require_tool("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi")
    objdump = require_tool("arm-none-eabi-objdump", "apt-get install binutils-arm-none-eabi")
    text = {}
    for src in ("kernels.c", "model.c", "weights.c"):
        obj = project_dir / (Path(src).stem + ".o")
        subprocess.run([cc, *cpu_flags.split(), *HOST_CFLAGS.split(), "-c", src, "-o", obj.name], cwd=project_dir,
                       check=True, capture_output=True, text=True)
        # -m armv8.1-m.main: objdump decodes MVE (Helium) instructions only when told the architecture
        text[src] = subprocess.run([objdump, "-d", "-m", "armv8.1-m.main", str(obj)], capture_output=True, text=True,
                                   check=True).stdout
    return text


def function_text(disassembly: str, fn: str) -> str:
    """The disassembly of one function (from its label to the next)."""
    start = disassembly.index(f"<{fn}>:")
    nxt = disassembly.find(">:\n", start + len(fn) + 3)
    return disassembly[start:disassembly.rfind("\n\n", start, nxt) if nxt > 0 else len(disassembly)]


@pytest.mark.parametrize("family,cpu,instructions", [
    ("cortex-m-dsp", "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16", ("smlad", "sxtab16")),
    ("cortex-m-dsp", "-mcpu=cortex-m7 -mthumb", ("smlad", "sxtab16")),
    ("cortex-m-mve", "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard", ("vmlava", "vaddva", "vctp.8")),
])
def test_cortex_m_kernels_use_dsp_and_mve_instructions(demos, family, cpu, instructions, tmp_path):
    out = tmp_path / family
    project = emit_c(demos["digits"][0], out, family=family)
    text = compile_cortex_m(out, cpu)["kernels.c"]
    for fn in ("intonly_conv2d_s8_s8_s8", "intonly_dense_s8_s8_s8"):
        body = function_text(text, fn)
        for ins in instructions:
            assert has(body, ins), (family, fn, ins)
    assert {"intonly_conv2d_s8_s8_s8", "intonly_dense_s8_s8_s8"} <= specialised_fns(project)


def test_cortex_m0plus_compiles_the_generic_bodies(demos, tmp_path):
    out = tmp_path / "m0"
    emit_c(demos["digits"][0], out, family="cortex-m-dsp")
    text = compile_cortex_m(out, "-mcpu=cortex-m0plus -mthumb")["kernels.c"]
    assert not has(text, "smlad") and not has(text, "sxtab16")


@pytest.mark.parametrize("family,target_name", [("cortex-m-dsp", "cortex-m4"), ("cortex-m-mve", "cortex-m55")])
def test_cortex_m_digits_equal_hwsim_under_qemu(demos, family, target_name, tmp_path):
    require_cortex_m()
    model, x = demos["digits"]
    for mode in MODES:
        project, sim, c_outs = run_family_target(model, x[:200], mode, family, target_name,
                                                 tmp_path / f"digits_{mode}", quantized=False)
        assert_bits_equal(c_outs, sim, f"{family} {target_name} digits {mode}")
        assert {"intonly_conv2d_s8_s8_s8", "intonly_dense_s8_s8_s8"} <= specialised_fns(project)


@pytest.mark.parametrize("family,target_name", [("cortex-m-dsp", "cortex-m4"), ("cortex-m-mve", "cortex-m55")])
def test_cortex_m_layers_and_vit_equal_hwsim_under_qemu(demos, layers, family, target_name, tmp_path):
    require_cortex_m()
    model, inputs, named = layers
    _, sim, c_outs = run_family_target(model, inputs, "half_up", family, target_name, tmp_path / "layers")
    for (name, _), c, s in zip(named, c_outs, sim):
        assert_bits_equal([c], [s], f"{family} {target_name} {name}")
    model, x = demos["vit"]
    _, sim, c_outs = run_family_target(model, [a[:4] for a in x], "double", family, target_name, tmp_path / "vit",
                                       quantized=False)
    assert_bits_equal(c_outs, sim, f"{family} {target_name} vit")


# ---- build report --------------------------------------------------------------------------------------------------

def test_build_report_lists_specialised_ops_and_fallbacks(demos, tmp_path):
    model, _ = demos["digits"]
    project = emit_c(model, tmp_path / "x86", family="x86")
    report = json.loads((tmp_path / "x86" / "build_report.json").read_text())
    assert report["family"] == project.family == "x86"
    assert report["guard"] == "defined(__AVX2__)" and report["family_cflags"] == "-mavx2 -mfma"
    assert report["specialised_ops"] == ["conv2d", "dense"]
    assert report["fallback_ops"] == ["add", "avgpool", "copy", "maxpool", "requantize", "transpose"]
    assert report["kernels"] == project.kernels
    assert [k["fn"] for k in report["kernels"]] == project.functions
    by_fn = {k["fn"]: k for k in report["kernels"]}
    assert by_fn["intonly_conv2d_s8_s8_s8"] == {"fn": "intonly_conv2d_s8_s8_s8", "op": "conv2d",
                                                "dtypes": ["int8", "int8", "int8"], "source": "x86",
                                                "guard": "defined(__AVX2__)"}
    assert by_fn["intonly_maxpool_s8"]["source"] == "generic" and by_fn["intonly_maxpool_s8"]["guard"] is None

    # the ViT: int8 x int8 matmul and dense specialised; int16-activation dense/matmul fall back to generic
    vit = emit_c(demos["vit"][0], tmp_path / "vit", family="neon")
    sources = {k["fn"]: k["source"] for k in vit.kernels}
    assert sources["intonly_matmul_s8_s8_s16"] == sources["intonly_dense_s8_s8_s8"] == "neon"
    assert sources["intonly_matmul_s16_s8_s8"] == sources["intonly_dense_s16_s8_s16"] == "generic"
    assert sources["intonly_layernorm_s16_s8"] == sources["intonly_shiftmax_s16_s16"] == "generic"
    vit_report = json.loads((tmp_path / "vit" / "build_report.json").read_text())
    assert {"conv2d", "dense", "matmul"} <= set(vit_report["specialised_ops"])
    assert {"dense", "matmul", "layernorm", "shiftmax", "shiftgelu", "add"} <= set(vit_report["fallback_ops"])

    generic = emit_c(model, tmp_path / "generic")
    assert {k["source"] for k in generic.kernels} == {"generic"}
    assert json.loads((tmp_path / "generic" / "build_report.json").read_text())["specialised_ops"] == []


def test_every_family_renders_the_same_kernel_set_and_generic_is_unchanged(demos, tmp_path):
    """Families change kernel bodies only: the same functions, model.c, weights and runtime in every family; a
    family template that declines (int16 activations) renders exactly the generic kernel."""
    model, _ = demos["vit"]
    ref = emit_c(model, tmp_path / "generic")
    ref_sources = {p.name: p.read_text() for p in ref.directory.iterdir() if p.suffix in (".c", ".h")}
    for family in FAMILIES:
        project = emit_c(model, tmp_path / family, family=family)
        assert project.functions == ref.functions
        for name in ("model.c", "weights.c", "intonly_runtime.h", "kernels.h", "main.c"):
            assert (project.directory / name).read_text() == ref_sources[name], (family, name)
        kernels_c = (project.directory / "kernels.c").read_text()
        for k in project.kernels:
            if k["op"] in MAC_OPS and k["source"] == "generic":  # the generic function, verbatim
                start = kernels_c.index(f"void {k['fn']}(")
                assert kernels_c[start:].startswith(generic_body(ref, k["fn"])), (family, k["fn"])
        assert {k["op"] for k in project.kernels if k["source"] != "generic"} <= MAC_OPS


def generic_body(project, fn):
    text = (project.directory / "kernels.c").read_text()
    start = text.index(f"void {fn}(")
    end = text.find("\n}\n", start)
    return text[start:end + 3]
