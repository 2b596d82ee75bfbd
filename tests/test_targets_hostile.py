"""Target files as hostile input (docs/targets.md, "Trust"): files that are not regular files or too large, deep
nesting, numbers that are not finite or absurd, clock overrides, a [toolchain] that would run other programs or
touch files outside the project, a compiler that builds nothing, readelf failures, and odd names, strings and
encodings. Each is ONE typed error naming the file and the field; the CLI exits with code 2."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import single_op_model

from intonly.codegen.c import cross
from intonly.cli import main
from intonly.quantize.errors import ToolchainError
from intonly.quantize.ir import TensorInfo
from intonly.targets import TargetError, list_targets, load_file, load_target, parse_clock, parse_document
from intonly.targets import loader
from intonly.targets.loader import BUILTIN_DIR, MAX_FILE_BYTES, MAX_FILES_PER_DIR, MAX_NESTING, MAX_TEXT_CHARS
from intonly.targets.spec import VALUE_MAX, VALUE_MIN

REPO = Path(__file__).resolve().parents[1]
M4 = (BUILTIN_DIR / "cortex-m4.toml").read_text(encoding="utf-8")
CFLAGS_RULE = ("allowed: -O*, -m* (not -mllvm), -f* (not -fplugin*, -fpass-plugin*, -fuse-ld*, "
               "-fcrash-diagnostics*), -D<NAME>[=<number>], -U<NAME>, -W* (not -Wl,/-Wa,/-Wp,), -g*, -std=*, "
               "-pedantic, -w")
QEMU_ALLOWED = ("-machine, -M, -cpu, -m, -smp, -icount, -semihosting-config, -L, -nographic, -semihosting, "
                "-no-reboot, -kernel")
CC_RULE = ("is not a C compiler: its name must match [<prefix>]gcc|clang|cc[-<version>] (e.g. gcc, "
           "arm-none-eabi-gcc, clang-17), alone or as an absolute path without '..'")


def m4_text(name: str = "my-m4", **lines: str) -> str:
    """The built-in cortex-m4.toml renamed to ``name``, each ``key=value`` replacing the (first) line ``key = ...``."""
    text = M4.replace('name = "cortex-m4"', f'name = "{name}"')
    for key, value in lines.items():
        text, n = re.subn(rf"^{key} = .*$", lambda _: f"{key} = {value}", text, count=1, flags=re.MULTILINE)
        assert n == 1, key
    return text


def write(directory: Path, text: str | bytes, name: str = "my-m4") -> Path:
    path = directory / f"{name}.toml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def refused(path: Path, message: str, capsys) -> None:
    """``load_file(path)`` raises exactly ``{path}: {message}``, and ``intonly targets show path`` exits 2 with it."""
    with pytest.raises(TargetError) as err:
        load_file(path)
    assert str(err.value) == f"{path}: {message}"
    assert main(["targets", "show", str(path)]) == 2
    assert capsys.readouterr().err == f"error: TargetError: {path}: {message}\n"


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "intonly.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


# --- 1. what a target file may be ---------------------------------------------------------------------------------

def test_symlink_to_dev_zero_in_a_target_dir_is_refused_quickly(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    (tmp_path / "zero.toml").symlink_to("/dev/zero")
    message = f"{tmp_path / 'zero.toml'}: cannot read target file (it is a character device, not a regular file)"
    proc = cli("targets", "list", "--target-dir", str(tmp_path), timeout=60)   # was: MemoryError after 6.9 GB
    assert (proc.returncode, proc.stderr) == (2, f"error: TargetError: {message}\n")
    with pytest.raises(TargetError) as err:
        list_targets([tmp_path])
    assert str(err.value) == message


def test_fifo_is_refused_without_being_opened(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    os.mkfifo(tmp_path / "pipe.toml")
    proc = cli("targets", "show", str(tmp_path / "pipe.toml"), timeout=30)   # opening it would block for ever
    message = f"{tmp_path / 'pipe.toml'}: cannot read target file (it is a FIFO, not a regular file)"
    assert (proc.returncode, proc.stderr) == (2, f"error: TargetError: {message}\n")


def test_directory_named_like_a_target_file_is_refused(tmp_path, capsys):
    (tmp_path / "board.toml").mkdir()
    refused(tmp_path / "board.toml", "cannot read target file (it is a directory, not a regular file)", capsys)
    assert main(["targets", "list", "--target-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"error: TargetError: {tmp_path / 'board.toml'}: cannot read target file "
                                       "(it is a directory, not a regular file)\n")


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path, capsys):
    text = m4_text()
    text += "#" * (MAX_FILE_BYTES + 1 - len(text.encode())) # a valid file, one byte too long
    path = write(tmp_path, text)
    refused(path, f"target file is {MAX_FILE_BYTES + 1:,} bytes, over the limit of {MAX_FILE_BYTES:,}", capsys)
    assert MAX_FILE_BYTES == 256 * 1024


def test_file_that_grows_past_the_limit_after_the_check_is_refused(tmp_path, monkeypatch):
    """At most MAX_FILE_BYTES + 1 bytes are read, whatever the size check saw (simulated: the check passes)."""
    path = write(tmp_path, m4_text() + "#" * (2 * MAX_FILE_BYTES))
    monkeypatch.setattr(loader, "_check_regular", lambda st, p: None)
    with pytest.raises(TargetError) as err:
        load_file(path)
    assert str(err.value) == f"{path}: target file is over the limit of {MAX_FILE_BYTES:,} bytes (it grew while read)"


def test_target_dir_that_is_a_file_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["targets", "list", "--target-dir", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err == (f"error: TargetError: target directory '{tmp_path / 'file'}' (from "
                                       "--target-dir) is not a directory\n")
    monkeypatch.setenv(loader.ENV_VAR, str(tmp_path / "file"))
    with pytest.raises(TargetError) as err:
        load_target("cortex-m4")
    assert str(err.value) == f"target directory '{tmp_path / 'file'}' (from {loader.ENV_VAR}) is not a directory"


def test_directory_with_too_many_target_files_is_refused(tmp_path):
    for i in range(MAX_FILES_PER_DIR + 1):
        (tmp_path / f"t{i}.toml").touch()
    with pytest.raises(TargetError) as err:
        load_target("cortex-m4", [tmp_path])
    assert str(err.value) == (f"target directory '{tmp_path}' (from --target-dir) holds more than "
                              f"{MAX_FILES_PER_DIR:,} .toml files")


# --- 2. nesting ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, line", [
    ("x = " + "[" * 100_000, 1),                                          # was: RecursionError from tomllib
    ("x = " + "{a = " * 40_000, 1),
    ("a = 1\nx = " + "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1) + "\n", 2),
    ('s = "[[[[[[[[[[[[[[[[[[[[[["\nt = """\n[[[[[[[[[[[[[[[[[[[[\n"""\nx = [' + "[" * MAX_NESTING, 5),
], ids=["100k arrays", "40k inline tables", "17 closed arrays", "brackets in strings do not count"])
def test_deep_nesting_is_one_target_error(tmp_path, text, line, capsys):
    path = write(tmp_path, text)
    refused(path, f"arrays and tables are nested more than {MAX_NESTING} deep (at line {line})", capsys)


def test_long_dotted_key_is_refused_before_parsing(tmp_path, capsys):
    # tomllib's memory grows with the square of a dotted key's length (100,000 parts: tens of GB)
    path = write(tmp_path, "x" + ".a" * 5000 + " = 1\n")
    refused(path, "line 1 has more than 16 dots outside strings (a dotted key that long is refused)", capsys)


def test_recursion_error_from_the_toml_reader_is_a_target_error(tmp_path, monkeypatch):
    path = write(tmp_path, m4_text())

    def deep(_text):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(loader.tomllib, "loads", deep)
    with pytest.raises(TargetError) as err:
        load_file(path)
    assert str(err.value) == f"{path}: not valid TOML: nested too deeply"


# --- 3. numbers ---------------------------------------------------------------------------------------------------

RANGE = f"between {VALUE_MIN:g} and {VALUE_MAX:g}"
NUMBERS = [   # (test id, line key, new value text, message after "{path}: ")
    ("nan clock", "clock_mhz", '{ value = nan, source = "x" }', "field 'clock_mhz': must be a finite number, got nan"),
    ("inf clock", "clock_mhz", '{ value = inf, source = "x" }', "field 'clock_mhz': must be a finite number, got inf"),
    ("nan throughput", "int8_conv", '{ value = nan, source = "x" }',
     "field 'throughput.int8_conv': must be a finite number, got nan"),
    ("-inf energy", "static_mw", '{ value = -inf, source = "x" }',
     "field 'static_mw': must be a finite number, got -inf"),
    ("1e300 throughput", "int8_conv", '{ value = 1e300, source = "x" }',
     f"field 'throughput.int8_conv': must be {RANGE}, got 1e+300"),
    ("tiny clock", "clock_mhz", '{ value = 1e-12, source = "x" }', f"field 'clock_mhz': must be {RANGE}, got 1e-12"),
    ("tiny energy", "static_mw", '{ value = 1e-300, source = "x" }',
     f"field 'static_mw': must be 0 or {RANGE}, got 1e-300"),
    ("huge size", "size_bytes", '{ value = 1e16, source = "x" }',
     f"field 'memory[0].size_bytes': must be {RANGE}, got 1e+16"),
    ("400-digit integer", "clock_mhz", '{ value = ' + "9" * 400 + ', source = "x" }',
     f"field 'clock_mhz': must be {RANGE}, got 999999999999999999...9999999999999999999"),
]


@pytest.mark.parametrize("key, value, message", [n[1:] for n in NUMBERS], ids=[n[0] for n in NUMBERS])
def test_numbers_must_be_finite_and_in_range(tmp_path, key, value, message, capsys):
    refused(write(tmp_path, m4_text(**{key: value})), message, capsys)


def test_every_builtin_number_is_in_range():
    for t in list_targets():
        doc = loader.to_document(t)
        values = [v["value"] for v in _sourced_values(doc)]
        assert values and all(v == 0 or VALUE_MIN <= v <= VALUE_MAX for v in values), t.name


def _sourced_values(doc):
    if isinstance(doc, dict):
        if set(doc) == {"value", "source"}:
            yield doc
        else:
            for v in doc.values():
                yield from _sourced_values(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _sourced_values(v)


def conv_model():
    x = TensorInfo("x", "int8", (8, 8, 4), 0.1, 0, 8)
    y = TensorInfo("y", "int8", (8, 8, 4), 0.1, 0, 8)
    consts = {"weight": np.ones((4, 3, 3, 4), np.int8), "bias": np.zeros(4, np.int32),
              "multiplier": np.full(4, 1 << 30, np.int32), "shift": np.full(4, 35, np.int32)}
    attrs = {"stride": [1, 1], "padding": [1, 1, 1, 1], "dilation": [1, 1], "groups": 1, "input_zp": 0,
             "output_zp": 0, "act_min": -128, "act_max": 127}
    return single_op_model("conv2d", [x], y, attrs, consts)


def test_nan_throughput_makes_estimate_exit_2_and_write_nothing(tmp_path, capsys):
    model = conv_model().save(tmp_path / "conv.intonly")
    path = write(tmp_path, m4_text(int8_conv='{ value = nan, source = "x" }'))
    out = tmp_path / "est"
    assert main(["estimate", str(model), "--target", str(path), "--out", str(out)]) == 2   # was: nan ms, exit 0
    assert capsys.readouterr().err == (f"error: TargetError: {path}: field 'throughput.int8_conv': must be a finite "
                                       "number, got nan\n")
    assert not out.exists() and not (tmp_path / "est.partial").exists()


CLOCK_USAGE = ("write NAME@<number>MHz or NAME@<number>GHz with a number > 0, e.g. cortex-m7@480MHz or "
               "cortex-a76@2.4GHz")


@pytest.mark.parametrize("clock", ["1e400MHz", "infMHz", "nanMHz", "0MHz", "\u0664\u0668\u0660MHz"])
def test_clock_override_that_is_not_a_plain_number_is_refused(clock):
    spec = f"cortex-m4@{clock}"
    with pytest.raises(TargetError) as err:
        load_target(spec)
    assert str(err.value) == f"bad clock {clock!r} in target spec {spec!r}: {CLOCK_USAGE}"


@pytest.mark.parametrize("clock, got", [("9" * 400 + "MHz", "inf"), ("0.0000000001MHz", "1e-10"),
                                        ("2000000000000GHz", "2e+15")])
def test_clock_override_out_of_range_is_refused(clock, got, capsys):
    spec = f"cortex-m4@{clock}"
    shown, shown_spec = loader._show(clock), loader._show(spec)
    message = f"bad clock {shown} in target spec {shown_spec}: must be {RANGE} MHz, got {got} MHz"
    with pytest.raises(TargetError) as err:
        parse_clock(clock, spec)
    assert str(err.value) == message
    assert main(["targets", "show", spec]) == 2
    assert capsys.readouterr().err == f"error: TargetError: {message}\n"


@pytest.mark.parametrize("mhz, shown", [(float("nan"), "nan"), (float("inf"), "inf"), (0, "0"), (-5.0, "-5.0"),
                                        (True, "True"), (10**400, "100000000000000000...0000000000000000000"),
                                        ("480", "'480'")], ids=["nan", "inf", "0", "-5", "True", "10**400", "str"])
def test_with_clock_refuses_what_parse_clock_would(mhz, shown):
    with pytest.raises(TargetError) as err:
        load_target("cortex-m4").with_clock(mhz)
    assert str(err.value) == (f"target cortex-m4: clock override {shown} MHz must be a finite number {RANGE} MHz")


# --- 4. the toolchain -----------------------------------------------------------------------------------------------

def not_a_flag(word: str) -> str:
    return f"field 'toolchain.cflags': {word!r} is not an allowed compiler flag ({CFLAGS_RULE})"


TOOLCHAINS = [   # (test id, key, TOML value, message after "{path}: ")
    ("cc /bin/true", "cc", '"/bin/true"', f"field 'toolchain.cc': '/bin/true' {CC_RULE}"),
    ("cc sh", "cc", '"sh"', f"field 'toolchain.cc': 'sh' {CC_RULE}"),
    ("cc relative path", "cc", '"bin/gcc"', f"field 'toolchain.cc': 'bin/gcc' {CC_RULE}"),
    ("cc with ..", "cc", '"/usr/../tmp/gcc"', f"field 'toolchain.cc': '/usr/../tmp/gcc' {CC_RULE}"),
    ("cc with words", "cc", '"gcc -wrapper sh"', f"field 'toolchain.cc': 'gcc -wrapper sh' {CC_RULE}"),
    ("cflags -fplugin", "cflags", '"-O2 -fplugin=evil.so"', not_a_flag("-fplugin=evil.so")),
    ("cflags -Wl,", "cflags", '"-O2 -Wl,-T,evil.ld"', not_a_flag("-Wl,-T,evil.ld")),
    ("cflags -include", "cflags", '"-include x.h"', not_a_flag("-include")),
    ("cflags -o", "cflags", '"-o evil"', not_a_flag("-o")),
    ("cflags -B", "cflags", '"-Bbin"', not_a_flag("-Bbin")),
    ("cflags --specs", "cflags", '"--specs=evil.specs"', not_a_flag("--specs=evil.specs")),
    ("cflags -specs", "cflags", '"-specs=evil.specs"', not_a_flag("-specs=evil.specs")),
    ("cflags -l", "cflags", '"-lm"', not_a_flag("-lm")),
    ("cflags input file", "cflags", '"evil.c"', not_a_flag("evil.c")),
    ("cflags -x", "cflags", '"-x c"', not_a_flag("-x")),
    ("cflags -save-temps", "cflags", '"-save-temps"', not_a_flag("-save-temps")),
    ("cflags -I", "cflags", '"-Iinclude"', not_a_flag("-Iinclude")),
    ("cflags -wrapper", "cflags", '"-wrapper"', not_a_flag("-wrapper")),
    ("cflags -fuse-ld", "cflags", '"-fuse-ld=evil"', not_a_flag("-fuse-ld=evil")),
    ("cflags -D with code", "cflags", '"-Dmain=evil"', not_a_flag("-Dmain=evil")),
    ("cflags response file", "cflags", '"@flags.txt"',
     f"field 'toolchain.cflags': '@flags.txt' is a response file (a word starting with '@') ({CFLAGS_RULE})"),
    ("cflags path", "cflags", '"-fprofile-generate=/tmp/x"',
     f"field 'toolchain.cflags': '-fprofile-generate=/tmp/x' names a path ('/' is not allowed) ({CFLAGS_RULE})"),
    ("cflags ..", "cflags", '"-fprofile-dir=.."',
     f"field 'toolchain.cflags': '-fprofile-dir=..' names a path ('..' is not allowed) ({CFLAGS_RULE})"),
    ("cflags quote", "cflags", "'-O2 \"-g'",
     "field 'toolchain.cflags': cannot be split into words (No closing quotation)"),
    ("cflags odd character", "cflags", "'-DX=1;rm'",
     f"field 'toolchain.cflags': '-DX=1;rm' has a character other than A-Z a-z 0-9 _ = . , + : - ({CFLAGS_RULE})"),
    ("emulator sh", "emulator", '"sh -c evil"',
     "field 'toolchain.emulator': 'sh' is not a QEMU emulator: the first word must be qemu-<arch> or "
     "qemu-system-<arch>, alone or as an absolute path without '..'"),
    ("emulator qemu-img", "emulator", '"qemu-img convert"',
     "field 'toolchain.emulator': 'qemu-img' is not a QEMU emulator: the first word must be qemu-<arch> or "
     "qemu-system-<arch>, alone or as an absolute path without '..'"),
    *[(f"emulator {opt}", "emulator", f'"qemu-system-arm -machine mps2-an386 {opt} x -kernel"',
       f"field 'toolchain.emulator': '{opt}' is not an allowed QEMU option (allowed: {QEMU_ALLOWED})")
      for opt in ("-monitor", "-serial", "-chardev", "-drive", "-D", "-d", "-plugin", "-trace", "-pidfile",
                  "-daemonize", "-netdev", "-qmp", "-device", "-append")],
    ("emulator -machine sub-option", "emulator", '"qemu-system-arm -machine mps2-an386,dumpdtb=/tmp/x -kernel"',
     "field 'toolchain.emulator': 'mps2-an386,dumpdtb=/tmp/x' is not an allowed argument of -machine (it must be "
     "a machine name, without ',' sub-options)"),
    ("emulator -kernel FILE", "emulator", '"qemu-system-arm -machine mps2-an386 -kernel /tmp/evil.elf"',
     "field 'toolchain.emulator': '-kernel' must be the last word (intonly appends the program to run)"),
    ("emulator semihosting chardev", "emulator",
     '"qemu-system-arm -machine mps2-an386 -semihosting-config enable=on,chardev=c0 -kernel"',
     "field 'toolchain.emulator': 'enable=on,chardev=c0' is not an allowed argument of -semihosting-config (it must "
     "be comma-separated enable=on|off, target=native|gdb|auto, userspace=on|off)"),
    ("emulator -L ..", "emulator", '"qemu-aarch64 -L /usr/../etc"',
     "field 'toolchain.emulator': '/usr/../etc' is not an allowed argument of -L (it must be an absolute path "
     "without '..')"),
    ("emulator missing argument", "emulator", '"qemu-system-arm -machine"',
     "field 'toolchain.emulator': '-machine' needs an argument"),
    ("codegen family path", "codegen_family", '"../../../tmp/templates"',
     "field 'toolchain.codegen_family': '../../../tmp/templates' is not valid: 1 to 64 of a-z, 0-9, '_' and '-', "
     "starting with a letter or digit"),
]


@pytest.mark.parametrize("key, value, message", [t[1:] for t in TOOLCHAINS], ids=[t[0] for t in TOOLCHAINS])
def test_toolchain_that_could_run_other_programs_is_refused(tmp_path, key, value, message, capsys):
    refused(write(tmp_path, m4_text(**{key: value})), message, capsys)


@pytest.mark.parametrize("key, value", [
    ("cc", '"clang-17"'), ("cc", '"/usr/bin/gcc"'), ("cc", '"x86_64-linux-gnu-gcc-12"'), ("cc", '""'),
    ("cflags", '"-std=gnu11 -O3 -g3 -Wall -Werror=format -Wno-unused -DNDEBUG -DARM_MATH_CM4=1 -UFOO -pedantic '
               '-w -fno-strict-aliasing -march=armv8.2-a+dotprod"'),
    ("emulator", '"qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max"'),
    ("emulator", '"/usr/bin/qemu-system-arm -M mps2-an386 -m 16M -icount shift=0,align=off -nographic '
                 '-semihosting-config enable=on,target=native"'),
    ("emulator", '""'),
])
def test_ordinary_toolchains_load(tmp_path, key, value):
    assert load_file(write(tmp_path, m4_text(**{key: value}))).toolchain.__dict__[key] == value.strip('"')


@pytest.fixture
def fake_compiler(tmp_path):
    """A target 'fake-host' whose cc is a script (absolute path, named like a compiler) that exits 0; ``body`` is
    its shell code."""
    def make(body: str):
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        cc = bin_dir / "fake-gcc"
        cc.write_text(f"#!/bin/sh\n{body}\nexit 0\n")
        cc.chmod(cc.stat().st_mode | stat.S_IXUSR)
        targets = tmp_path / "targets"
        targets.mkdir(exist_ok=True)
        text = m4_text("fake-host", cc=f'"{cc}"', emulator='""', codegen_family='"generic"',
                       cflags='"-O2"')
        write(targets, text, "fake-host")
        project = tmp_path / "project"
        project.mkdir(exist_ok=True)
        return load_target("fake-host", [targets]), project, str(cc)
    return make


def test_compiler_that_writes_nothing_is_one_toolchain_error(fake_compiler):
    target, project, cc = fake_compiler(":")
    stale = project / "build-fake-host" / "model.elf"   # an earlier build's ELF must not pass for this one's
    stale.parent.mkdir()
    stale.write_bytes(b"\x7fELF" + bytes(60))
    with pytest.raises(ToolchainError) as err:
        cross.build_for_target(project, target)
    assert str(err.value) == (f"target fake-host: the C compiler {cc!r} exited with 0 but wrote no executable "
                              f"{stale}")


def test_compiler_that_writes_a_non_elf_is_one_toolchain_error(fake_compiler):
    # writes "not an ELF" to the file after -o
    target, project, cc = fake_compiler('while [ $# -gt 0 ]; do [ "$1" = -o ] && echo "not an ELF" > "$2"; shift; done')
    elf = project / "build-fake-host" / "model.elf"
    with pytest.raises(ToolchainError) as err:
        cross.build_for_target(project, target)
    assert str(err.value) == (f"target fake-host: the C compiler {cc!r} exited with 0 but {elf} is not an ELF file "
                              "(it does not start with the ELF magic 7f 45 4c 46)")


def test_readelf_on_a_missing_file_is_one_toolchain_error(tmp_path):
    target = load_target("x86-64-host")
    with pytest.raises(ToolchainError) as err:
        cross.elf_sizes(tmp_path / "nope.elf", target)
    assert str(err.value) == f"target x86-64-host: cannot read the sizes of {tmp_path / 'nope.elf'}: no such file"


def test_readelf_that_fails_is_one_toolchain_error(tmp_path):
    readelf = cross.find_tool("readelf", load_target("x86-64-host"), "readelf")
    bad = tmp_path / "model.elf"
    bad.write_bytes(b"not an ELF file at all")
    with pytest.raises(ToolchainError) as err:                 # was: subprocess.CalledProcessError
        cross.elf_sizes(bad, load_target("x86-64-host"))
    prefix = f"target x86-64-host: {readelf} -S -W {bad} exited with "
    assert re.fullmatch(re.escape(prefix) + r"[1-9][0-9]*:\nreadelf: Error: .+", str(err.value), flags=re.DOTALL)


def test_readelf_that_cannot_start_is_one_toolchain_error(tmp_path, monkeypatch):
    elf = tmp_path / "model.elf"
    elf.write_bytes(b"\x7fELF")
    monkeypatch.setattr(cross, "_readelf", lambda target: str(tmp_path / "gone" / "readelf"))
    with pytest.raises(ToolchainError) as err:
        cross.elf_sizes(elf, load_target("x86-64-host"))
    assert str(err.value) == (f"target x86-64-host: cannot run {tmp_path / 'gone' / 'readelf'} -S -W {elf} "
                              "(No such file or directory)")


# --- 5. names, strings, encodings -----------------------------------------------------------------------------------

NAME_RULE = "1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit"


def test_name_that_is_not_a_valid_file_stem_is_refused(tmp_path, capsys):
    path = write(tmp_path, m4_text("My-M4"), "My-M4")
    refused(path, f"field 'name': 'My-M4' is not valid: {NAME_RULE}", capsys)


def test_at_sign_in_a_file_name_is_read_as_a_path_and_refused(tmp_path, capsys):
    path = write(tmp_path, m4_text("a@b"), "a@b")
    with pytest.raises(TargetError) as err:
        load_target(str(path))     # was: "unknown target '<dir>/a'" (the '@b.toml' read as a clock)
    assert str(err.value) == f"{path}: field 'name': 'a@b' is not valid: {NAME_RULE}"
    assert main(["targets", "list", "--target-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: TargetError: {path}: field 'name': 'a@b' is not valid: {NAME_RULE}\n"


def test_huge_string_is_refused(tmp_path, capsys):
    path = write(tmp_path, m4_text(description='"' + "x" * (MAX_TEXT_CHARS + 1) + '"'))
    refused(path, f"field 'description': is {MAX_TEXT_CHARS + 1:,} characters long, over the limit of "
                  f"{MAX_TEXT_CHARS:,}", capsys)


@pytest.mark.parametrize("key, value, message", [
    ("description", r'"\u001b[2J\u001b[31mcleared"',
     "field 'description': contains the control character U+001B at position 0"),
    ("int8_conv", r'{ value = 1, source = "datasheet \u202e1.0 table" }',
     "field 'throughput.int8_conv.source': contains the control character U+202E at position 10"),
], ids=["terminal escape", "bidi override"])
def test_control_characters_in_strings_are_refused(tmp_path, key, value, message, capsys):
    refused(write(tmp_path, m4_text(**{key: value})), message, capsys)


def test_byte_order_mark_is_refused(tmp_path, capsys):
    path = write(tmp_path, b"\xef\xbb\xbf" + m4_text().encode())
    refused(path, "starts with a byte-order mark; save the file as UTF-8 without one", capsys)


def test_non_utf8_file_is_refused(tmp_path, capsys):
    text = m4_text(description='"caf\xe9 board"')
    path = write(tmp_path, text.encode("latin-1"))
    refused(path, f"not UTF-8 text (invalid continuation byte at byte {text.index(chr(0xe9)):,})", capsys)


def test_integer_over_pythons_digit_limit_is_refused(tmp_path, capsys):
    path = write(tmp_path, m4_text(clock_mhz="{ value = " + "9" * 5000 + ', source = "x" }'))
    refused(path, "not valid TOML: a number has more than 4300 digits", capsys)   # was: ValueError


def test_too_many_memory_levels_are_refused(tmp_path, capsys):
    level = M4[M4.index("[[memory]]"):M4.index("[[memory]]", M4.index("[[memory]]") + 1)]
    level = re.sub(r'^name = ".*"$', 'name = "lvl{}"', level, flags=re.MULTILINE)
    text = m4_text() + "".join(level.replace("{}", str(i)) for i in range(17))
    refused(write(tmp_path, text), "field 'memory': has 20 tables, over the limit of 16", capsys)


def test_unknown_key_with_control_characters_is_shown_escaped(tmp_path, capsys):
    path = write(tmp_path, m4_text().replace("[numerics]\n", '[numerics]\n"\\u001b[2J" = 1\n'))
    refused(path, "field 'numerics.'\\x1b[2J'' is not a known field", capsys)


def test_document_that_is_not_a_table_is_refused(tmp_path):
    with pytest.raises(TargetError) as err:
        parse_document([1, 2], tmp_path / "x.toml")
    assert str(err.value) == f"{tmp_path / 'x.toml'}: must be a table of fields, got [1, 2]"


def test_every_builtin_target_passes_the_hostile_input_checks():
    targets = list_targets()
    assert len(targets) == 14
    for t in targets:
        loader.check_toolchain(t.toolchain)
        assert t.file.stat().st_size <= MAX_FILE_BYTES


def test_a_file_of_many_small_tables_is_parsed_and_refused_by_its_first_unknown_field(tmp_path):
    """The worst shapes that pass the pre-parse checks (many short keys, inline tables) reach the schema check."""
    lines = "".join(f"k{i} = {{ a = [[1, 2], [3]], b = 'x' }}\n" for i in range(4000))
    path = write(tmp_path, lines)
    with pytest.raises(TargetError) as err:
        load_file(path)
    assert str(err.value) == f"{path}: field 'k0' is not a known field"
