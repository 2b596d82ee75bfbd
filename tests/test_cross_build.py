"""Real builds and runs on targets (codegen/c/cross.py): the digits CNN cross-compiled for Cortex-M boards under
qemu-system-arm (semihosting) and for AArch64 under qemu-aarch64 gives hwsim's bits under the target's numerics;
``intonly build``; sizes; missing tools, crashes and hangs are one ToolchainError."""

import json
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import require_tool

from intonly.codegen.c import cross
from intonly.codegen.c.emit import emit_c
from intonly import QuantConfig, quantize, simulate
from intonly.api import build_for
from intonly.demos import digits
from intonly.quantize.errors import ToolchainError
from intonly.targets import load_target
from intonly.targets.loader import BUILTIN_DIR

SAMPLES = 8
ARM = (("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"),
       ("qemu-system-arm", "apt-get install qemu-system-arm"))
AARCH64 = (("aarch64-linux-gnu-gcc", "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"),
           ("qemu-aarch64", "apt-get install qemu-user"))
HOST = (("gcc", "apt-get install gcc"),)
TOOLS = {"cortex-m4": ARM, "cortex-m7": ARM, "cortex-m33": ARM, "cortex-m55": ARM, "cortex-a53": AARCH64,
         "x86-64-host": HOST}


def require(target: str) -> None:
    for tool, how in TOOLS[target]:
        require_tool(tool, how + " (or: bash scripts/setup.sh as root)")


@pytest.fixture(scope="module")
def digits_int():
    """The digits CNN quantized as in test_end_to_end (half_up model; targets run it under their own rounding),
    its first test samples, and the saved .intonly file."""
    x_tr, _, x_te, _ = digits.load_split()
    model = quantize(digits.load_model(), x_tr, QuantConfig(rounding="half_up"), name="digits_cnn")
    return model, x_te[:SAMPLES]


@pytest.mark.parametrize("name", ["cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "cortex-a53",
                                  "x86-64-host"])
def test_digits_on_target_is_bit_exact_with_hwsim_under_the_target(digits_int, name, tmp_path):
    require(name)
    model, x = digits_int
    target = load_target(name)
    sim = simulate(model, x, target=target)
    built = build_for(model, target, tmp_path / "c", run_inputs=sim.int_inputs, timeout=60)
    assert built.rounding == target.numerics.rounding
    assert built.outputs[0].shape == sim.int_outputs[0].shape == (SAMPLES, 10)
    np.testing.assert_array_equal(built.outputs[0], sim.int_outputs[0])
    np.testing.assert_array_equal(built.reference[0], sim.int_outputs[0])
    assert built.bit_exact and built.mismatched_elements == 0
    sizes = built.sizes
    assert all(isinstance(v, int) for v in sizes.values())
    assert sizes["flash_bytes"] == sizes["text_bytes"] + sizes["rodata_bytes"] > 0
    assert sizes["ram_bytes"] == sizes["data_bytes"] + sizes["bss_bytes"] > 0
    # the arena array is the planned arena rounded up to int64 words plus one (model.c.j2)
    assert sizes["arena_bytes"] == 8 * ((built.planned_arena_bytes + 7) // 8 + 1)
    assert built.planned_arena_bytes <= built.activation_total_bytes
    # the weights are in the model's read-only data, the arena in its RAM
    weights = sum(a.nbytes for a in model.constants.values())
    assert sizes["model_flash_bytes"] >= weights and sizes["model_ram_bytes"] >= sizes["arena_bytes"]
    if cross.target_kind(target) == "bare-metal":
        assert (built.elf.parent / "model.map").is_file()
        assert sizes["flash_bytes"] < 256 * 1024 and sizes["ram_bytes"] < 64 * 1024


def test_board_chosen_by_the_qemu_machine_of_the_target():
    expect = {"cortex-m4": "mps2-an386", "cortex-m7": "mps2-an500", "cortex-m33": "mps2-an505",
              "cortex-m55": "mps3-an547"}
    for name, machine in expect.items():
        target = load_target(name)
        assert cross.qemu_machine(target) == machine
        assert cross.board_script(target).name == f"{machine}.ld"
    assert set(expect.values()) <= set(cross.boards())
    with pytest.raises(ToolchainError, match=re.escape("target cortex-m0plus: toolchain.emulator '' names no QEMU "
                                                       "-machine")):
        cross.build_plan(".", load_target("cortex-m0plus"))


def test_cli_build_run_writes_build_json(tmp_path):
    require("cortex-m4")
    out = tmp_path / "m4"
    proc = subprocess.run([sys.executable, "-m", "intonly.cli", "build", "--target", "cortex-m4", "--run",
                           "--samples", str(SAMPLES), "--out", str(out)], check=False, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "build.json").read_text())
    assert report["model"] == "digits_cnn" and report["target"] == "cortex-m4" and report["family"] == "cortex-m-dsp"
    assert report["bit_exact"] is True
    assert report["run"]["samples"] == SAMPLES and report["run"]["mismatched_elements"] == 0
    assert report["run"]["command"].split()[0].endswith("qemu-system-arm")
    assert report["compiler"] == "arm-none-eabi-gcc" and "-mcpu=cortex-m4" in report["commands"][-1]
    for key in ("flash_bytes", "ram_bytes", "arena_bytes"):
        assert report["sizes"][key] > 0
    assert report["arena"]["planned_bytes"] <= report["arena"]["activation_total_bytes"]
    assert (out / "c" / report["elf"]).is_file() and (out / "model.intonly").is_file()
    assert not (tmp_path / "m4.partial").exists()


@pytest.fixture
def fake_target_dir(tmp_path):
    """A target directory with 'fake-m4': cortex-m4 with a compiler that does not exist."""
    d = tmp_path / "targets"
    d.mkdir()
    text = (BUILTIN_DIR / "cortex-m4.toml").read_text(encoding="utf-8")
    text = text.replace('name = "cortex-m4"', 'name = "fake-m4"').replace('cc = "arm-none-eabi-gcc"',
                                                                          'cc = "no-such-gcc"')
    (d / "fake-m4.toml").write_text(text, encoding="utf-8")
    return d


MISSING_FAKE = ("target fake-m4: C compiler 'no-such-gcc' not found on PATH; install it or put it on PATH "
                "(intonly knows no Debian package for it)")


def test_missing_compiler_is_one_toolchain_error(digits_int, fake_target_dir, tmp_path):
    model, _ = digits_int
    emit_c(model, tmp_path / "c")
    with pytest.raises(ToolchainError) as err:
        cross.build_for_target(tmp_path / "c", load_target("fake-m4", [fake_target_dir]))
    assert str(err.value) == MISSING_FAKE
    # the CLI: exit 2, the message on stderr, no output folder left behind
    model.save(tmp_path / "digits.intonly")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "intonly.cli", "build", str(tmp_path / "digits.intonly"),
                           "--target", "fake-m4", "--target-dir", str(fake_target_dir), "--out", str(out)],
                          check=False, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: ToolchainError: {MISSING_FAKE}"
    assert not out.exists() and not (tmp_path / "out.partial").exists()


def test_missing_cross_compiler_and_emulator_name_their_debian_package(digits_int, tmp_path, monkeypatch):
    require("cortex-m4")
    model, _ = digits_int
    target = load_target("cortex-m4")
    project = emit_c(model, tmp_path / "c")
    elf = cross.build_for_target(project.directory, target)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ToolchainError) as err:
        cross.build_for_target(project.directory, target)
    assert str(err.value) == ("target cortex-m4: C compiler 'arm-none-eabi-gcc' not found on PATH; install it "
                              "(Debian: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi, or bash "
                              "scripts/setup.sh as root)")
    with pytest.raises(ToolchainError) as err:
        cross.run_on_target(elf, target, [np.zeros((1, 8, 8, 1), np.int8)], [("int8", (10,))])
    assert str(err.value) == ("target cortex-m4: emulator 'qemu-system-arm' not found on PATH; install it "
                              "(Debian: apt-get install qemu-system-arm, or bash scripts/setup.sh as root)")


def _broken_project(model, directory, body: str):
    """The digits project with main.c replaced by ``body`` (a whole C program)."""
    project = emit_c(model, directory)
    (directory / "main.c").write_text(body)
    return project


HANG = "int main(int argc, char **argv)\n{\n    (void)argc;\n    (void)argv;\n    for (;;) {\n    }\n}\n"
FAULT = ("int main(int argc, char **argv)\n{\n    (void)argc;\n    (void)argv;\n"
         "    return (int)*(volatile unsigned *)0xF0000000u; /* unmapped on mps2-an386: BusFault */\n}\n")
EXIT3 = ("#include <stdio.h>\nint main(int argc, char **argv)\n{\n    fprintf(stderr, \"bad usage: %d\\n\", argc);\n"
         "    (void)argv;\n    return 3;\n}\n")


def test_hang_is_killed_by_the_timeout(digits_int, tmp_path):
    require("cortex-m4")
    model, _ = digits_int
    target = load_target("cortex-m4")
    _broken_project(model, tmp_path, HANG)
    elf = cross.build_for_target(tmp_path, target)
    t0 = time.perf_counter()
    with pytest.raises(ToolchainError) as err:
        cross.run_on_target(elf, target, [np.zeros((1, 8, 8, 1), np.int8)], [("int8", (10,))], timeout=2)
    assert time.perf_counter() - t0 < 15
    message = str(err.value)
    assert message.startswith("target cortex-m4: ") and "qemu-system-arm -machine mps2-an386" in message
    assert "did not finish within 2 s and was killed" in message


@pytest.mark.parametrize("body, status, stderr", [(FAULT, 1, "intonly board: fault exception"),
                                                  (EXIT3, 3, "bad usage: 3")])
def test_crash_or_nonzero_exit_is_one_toolchain_error(digits_int, tmp_path, body, status, stderr):
    require("cortex-m4")
    model, _ = digits_int
    target = load_target("cortex-m4")
    _broken_project(model, tmp_path, body)
    elf = cross.build_for_target(tmp_path, target)
    with pytest.raises(ToolchainError) as err:
        cross.run_on_target(elf, target, [np.zeros((1, 8, 8, 1), np.int8)], [("int8", (10,))], timeout=30)
    message = str(err.value)
    assert message.startswith("target cortex-m4: ") and "arg=model.elf,arg=input.bin,arg=output.bin" in message
    assert f"exited with {status}: " in message and stderr in message


def test_compile_error_names_the_target_and_the_command(digits_int, tmp_path):
    require("cortex-m4")
    model, _ = digits_int
    _broken_project(model, tmp_path, "int main(void) { int unused; return 0; }\n")
    with pytest.raises(ToolchainError) as err:
        cross.build_for_target(tmp_path, load_target("cortex-m4"))
    message = str(err.value)
    assert message.startswith("target cortex-m4: arm-none-eabi-gcc failed in ")
    assert "-Werror" in message and "unused variable" in message


def test_build_for_without_inputs_only_builds(digits_int, tmp_path):
    require("cortex-a53")
    model, _ = digits_int
    built = build_for(model, "cortex-a53", tmp_path / "c")
    assert built.outputs is None and built.bit_exact is None and built.as_dict()["run"] is None
    assert built.elf.is_file() and "-static" in built.commands[-1]
    assert shutil.which("aarch64-linux-gnu-readelf") and built.sizes["arena_bytes"] > 0
