"""Profiling builds of the generated C (-DINTONLY_PROFILE): one timer per integer node, the same output bits as
the normal build, profile.csv / profile_host / api.profile_c, and node names escaped into C string literals."""

import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn

from intonly.codegen.c.emit import c_string_literal, emit_c
from intonly.codegen.c.toolchain import HOST_CFLAGS, PROFILE_CFLAGS, build_host, profile_host, read_profile, run_host
from intonly import QuantConfig, build_and_run, quantize, simulate
from intonly.api import profile_c
from intonly.quantize.ir import TensorInfo

from conftest import random_ints, single_op_model

HOSTILE = 'a"b\\c*/ d\n'
NASTY_STRINGS = [HOSTILE, "", "plain.name_0", "??/ ??= ??' trigraphs?", "\\", '"', "\\012 then 7: \n7",
                 "tab\there\r\x01\x7f", "ünïcode → 名前", "*/ /* // comment", "%s %d %n", "a\\\nb"]


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        y = self.relu(self.conv1(x))
        y = self.pool(y + self.dw(y))
        return self.fc(torch.flatten(y, 1))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = TinyCNN().eval()
    calib = torch.randn(32, 3, 8, 8).numpy()
    x = torch.randn(5, 3, 8, 8).numpy()
    int_model = quantize(model, calib, QuantConfig())
    return int_model, simulate(int_model, x)


def output_ports(int_model, project):
    return [(int_model.tensors[t].dtype, int_model.tensors[t].shape) for t in project.output_tensors]


def test_profile_has_one_positive_entry_per_integer_node_and_same_bits(tiny, tmp_path, gcc):
    int_model, sim = tiny
    prof = profile_c(int_model, tmp_path / "prof", sim.int_inputs, repeats=3)
    names = [n.name for n in int_model.integer_nodes()]
    assert len(names) >= 5
    assert list(prof) == names
    assert all(v > 0 for v in prof.values()), prof

    project, (plain,) = build_and_run(int_model, tmp_path / "plain", sim.int_inputs)
    (profiled,) = run_host(tmp_path / "prof" / "model", sim.int_inputs, output_ports(int_model, project))
    np.testing.assert_array_equal(profiled, plain)
    np.testing.assert_array_equal(plain, sim.int_outputs[0])

    rows = read_profile(tmp_path / "prof" / "profile.csv")  # the run_host call above: REPEATS defaults to 1
    assert [r[0] for r in rows] == names
    assert all(calls == len(sim.int_inputs[0]) for _, _, calls in rows)


def test_repeats_and_default_build(tiny, tmp_path, gcc):
    int_model, sim = tiny
    project = emit_c(int_model, tmp_path, cflags=PROFILE_CFLAGS)
    exe = build_host(tmp_path, PROFILE_CFLAGS)
    ports = output_ports(int_model, project)
    prof = profile_host(exe, sim.int_inputs, ports, repeats=4)
    rows = read_profile(tmp_path / "profile.csv")
    assert all(calls == 4 * len(sim.int_inputs[0]) for _, _, calls in rows)
    assert prof == {name: ns * 1e-9 / calls for name, ns, calls in rows}
    out = np.fromfile(tmp_path / "output.bin", dtype=int_model.tensors[project.output_tensors[0]].dtype)
    assert out.size == sim.int_outputs[0].size  # outputs are written once, not once per repeat
    bad = subprocess.run([str(exe), str(tmp_path / "input.bin"), str(tmp_path / "o.bin"), "0"], capture_output=True,
                         check=False)
    assert bad.returncode == 2

    # The default build has no timers and keeps the old command line.
    exe = build_host(tmp_path, HOST_CFLAGS)
    symbols = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True).stdout
    assert "model_profile" not in symbols and "clock_gettime" not in symbols
    extra = subprocess.run([str(exe), str(tmp_path / "input.bin"), str(tmp_path / "o.bin"), "2"], capture_output=True,
                           check=False)
    assert extra.returncode == 2


def test_c_string_literal_denotes_the_exact_bytes(tmp_path, gcc):
    """Every literal compiles warning-free under HOST_CFLAGS and the program prints back exactly the UTF-8 bytes."""
    lines = ["#include <stdio.h>", "static const char *const s[] = {"]
    lines += [f"    {c_string_literal(t)}," for t in NASTY_STRINGS]
    lines += ["};", "int main(void)", "{", "    unsigned i;", "    for (i = 0; i < sizeof s / sizeof s[0]; ++i) {",
              "        fputs(s[i], stdout);", "        putchar(0);", "    }", "    return 0;", "}"]
    (tmp_path / "t.c").write_text("\n".join(lines) + "\n")
    subprocess.run([gcc, *HOST_CFLAGS.split(), "-o", "t", "t.c"], cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "t")], capture_output=True, check=True).stdout
    assert out.split(b"\0")[:-1] == [t.encode() for t in NASTY_STRINGS]
    with pytest.raises(ValueError):
        c_string_literal("nul\0byte")
    # a lone surrogate has no UTF-8 form: it is spelled as its escape (what a JSON file may decode to)
    assert c_string_literal("a\ud800b") == '"a\\\\ud800b"'


def test_hostile_node_name_compiles_and_round_trips(tmp_path, gcc):
    rng = np.random.default_rng(0)
    a = TensorInfo("a", "int8", (4, 6), 0.05, 3, 8)
    y = TensorInfo("y", "int8", (4, 6), 0.05, 3, 8)
    model = single_op_model("clamp", [a], y, {"act_min": -50, "act_max": 60})
    model.nodes[1].name = HOSTILE
    model.validate()
    xs = [random_ints(rng, (3, 4, 6), a)]
    expected = simulate(model, xs, quantized=True).int_outputs[0]
    for cflags, sub in ((HOST_CFLAGS, "plain"), (PROFILE_CFLAGS, "prof")):
        project = emit_c(model, tmp_path / sub, cflags=cflags)
        exe = build_host(tmp_path / sub, cflags)
        (out,) = run_host(exe, xs, output_ports(model, project))
        np.testing.assert_array_equal(out, expected)
    prof = profile_host(tmp_path / "prof" / "model", xs, output_ports(model, project), repeats=2)
    assert list(prof) == [HOSTILE] and prof[HOSTILE] > 0
