"""Target files: the built-in specs, the validator's messages, the search path, clock overrides and the CLI."""

import dataclasses
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from intonly.cli import main
from intonly.targets import (OP_CLASSES, Sourced, Target, TargetError, list_targets, load_file, load_target, parse_clock,
                     parse_document)
from intonly.targets.loader import BUILTIN_DIR, ENV_VAR

BUILTIN = ["cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "cortex-a53", "cortex-a73",
           "cortex-a76", "hexagon-hvx", "x86-64-vnni", "x86-64-host", "nvidia-t4", "nvidia-rtx2080ti", "nvidia-h100"]
TABLE = '{ value = <number>, source = "<where the number comes from>" }'


def _sourced(obj, where=""):
    """Every (field path, Sourced) inside a target's dataclasses, dicts and tuples."""
    if isinstance(obj, Sourced):
        yield where, obj
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _sourced(getattr(obj, f.name), f"{where}.{f.name}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _sourced(v, f"{where}.{k}")
    elif isinstance(obj, tuple):
        for i, v in enumerate(obj):
            yield from _sourced(v, f"{where}[{i}]")


# --- the built-in targets ------------------------------------------------------------------------------------------

def test_every_builtin_target_loads_with_every_number_sourced():
    targets = list_targets()
    assert sorted(t.name for t in targets) == sorted(BUILTIN)
    assert [t.kind for t in targets] == sorted((t.kind for t in targets), key=["mcu", "dsp", "cpu", "gpu"].index)
    for t in targets:
        assert t.file == BUILTIN_DIR / f"{t.name}.toml"
        assert set(t.throughput) == set(t.pj_per_op) == set(OP_CLASSES)
        numbers = list(_sourced(t))
        assert len(numbers) == 3 + 2 * len(OP_CLASSES) + 4 * len(t.memory) + sum(m.wait_states is not None
                                                                                 for m in t.memory)
        for where, s in numbers:
            assert s.source.strip(), f"{t.name}{where} has no source"
            assert s.source.split(":")[0] not in ("", "TODO"), f"{t.name}{where}"
        assert t.numerics.source.strip() and t.numerics.accumulator_bits == 32 and t.numerics.saturation == "clamp"


def test_builtin_numerics_and_key_numbers():
    by_name = {t.name: t for t in list_targets()}
    for name, t in by_name.items():
        expected = "half_up" if t.kind == "gpu" or name.startswith("x86-64") else "double"
        assert t.numerics.rounding == expected, name
    t4 = by_name["nvidia-t4"]
    assert t4.clock_mhz.value == 1590
    # 130 INT8 TOPS at 1590 MHz, times the efficiency fitted to HAWQ-V3's ResNet18 row (bench/estimate_validation.py)
    conv = t4.throughput["int8_conv"]
    efficiency = float(re.search(r"40881 x efficiency ([0-9.]+)", conv.source).group(1))
    assert "fitted to the HAWQ-V3 T4 ResNet18 W8A8 row" in conv.source and 0.01 < efficiency < 1
    assert conv.value == pytest.approx(130e12 / 2 / 1590e6 * efficiency, rel=1e-3)
    assert by_name["nvidia-h100"].throughput["int8_conv"].value * 1980e6 * 2 == pytest.approx(1978.9e12, rel=1e-3)
    assert by_name["cortex-m0plus"].clock_mhz.value == 32 and by_name["cortex-m55"].clock_mhz.value == 400
    assert by_name["cortex-m0plus"].toolchain.emulator == ""             # no QEMU machine models an M0+
    assert "mps2-an386" in by_name["cortex-m4"].toolchain.emulator
    assert "mps3-an547" in by_name["cortex-m55"].toolchain.emulator
    assert by_name["cortex-a76"].toolchain.cflags.startswith("-mcpu=cortex-a76")
    assert all(by_name[n].toolchain.cc == "" for n in ("hexagon-hvx", "nvidia-t4", "nvidia-rtx2080ti", "nvidia-h100"))
    flash = by_name["cortex-m7"].memory[-1]
    assert flash.holds == ("weights",) and flash.effective_bandwidth == pytest.approx(
        flash.bandwidth_bytes_per_cycle.value / (1 + flash.wait_states.value))


def test_list_targets_is_served_from_the_cache_quickly():
    list_targets()
    start = time.perf_counter()
    again = list_targets()
    assert time.perf_counter() - start < 0.2
    assert again[0] is list_targets()[0]


# --- clock overrides -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, mhz", [("480MHz", 480.0), ("0.48GHz", 480.0), ("1.2GHz", 1200.0), ("216mhz", 216.0),
                                       ("2.4 GHz", 2400.0)])
def test_parse_clock(text, mhz):
    assert parse_clock(text, f"x@{text}") == mhz


@pytest.mark.parametrize("spec", ["cortex-m7@480kHz", "cortex-m7@fast", "cortex-m7@0MHz", "cortex-m7@",
                                  "cortex-m7@-5MHz"])
def test_bad_clock_suffix_is_refused(spec):
    bad = spec.partition("@")[2]
    with pytest.raises(TargetError) as err:
        load_target(spec)
    assert str(err.value) == (f"bad clock {bad!r} in target spec {spec!r}: write NAME@<number>MHz or NAME@<number>GHz "
                              "with a number > 0, e.g. cortex-m7@480MHz or cortex-a76@2.4GHz")


def test_clock_override_keeps_cycle_numbers():
    base, fast = load_target("cortex-a76"), load_target("cortex-a76@1.2GHz")
    assert fast.clock_mhz == Sourced(1200.0, "user override") and fast.overrides == ("clock 1200 MHz",)
    assert fast.label == "cortex-a76@1200MHz" and base.label == "cortex-a76"
    assert fast.throughput == base.throughput and fast.memory == base.memory
    assert load_target(f"{BUILTIN_DIR / 'cortex-m4.toml'}@100MHz").clock_mhz.value == 100


def test_unknown_target_lists_the_known_ones():
    with pytest.raises(TargetError) as err:
        load_target("foo")
    assert str(err.value) == (f"unknown target 'foo'; known: {', '.join(sorted(BUILTIN))} "
                              f"(add your own with --target-dir or {ENV_VAR})")


# --- the validator -------------------------------------------------------------------------------------------------

def _nth(pattern, repl, n=0):
    """A mutation: replace only the n-th match of ``pattern``."""
    def mutate(text):
        m = list(re.finditer(pattern, text, flags=re.MULTILINE))[n]
        return text[:m.start()] + m.expand(repl) + text[m.end():]
    return mutate


def _all(pattern, repl):
    return lambda text: re.sub(pattern, repl, text, flags=re.MULTILINE)


BAD_FILES = [   # (test id, mutation of cortex-m7.toml, message after "{path}: ")
    ("missing field",
     _all(r"^rounding = .*\n", ""),
     "field 'numerics.rounding' is missing"),
    ("negative bandwidth",
     _nth(r"^bandwidth_bytes_per_cycle = \{ value = [-0-9.e]+", "bandwidth_bytes_per_cycle = { value = -4", 1),
     "field 'memory[1].bandwidth_bytes_per_cycle': must be > 0, got -4.0"),
    ("negative latency",
     _nth(r"^latency_cycles = \{ value = [-0-9.e]+", "latency_cycles = { value = -1", 0),
     "field 'memory[0].latency_cycles': must be >= 0, got -1.0"),
    ("zero clock",
     _all(r"^clock_mhz = \{ value = [-0-9.e]+", "clock_mhz = { value = 0"),
     "field 'clock_mhz': must be > 0, got 0.0"),
    ("unknown rounding",
     _all(r"^rounding = .*", 'rounding = "half_down"'),
     "field 'numerics.rounding': 'half_down' is not one of double, half_even, half_up"),
    ("unknown kind",
     _all(r"^kind = .*", 'kind = "fpga"'),
     "field 'kind': 'fpga' is not one of cpu, dsp, gpu, mcu"),
    ("unknown saturation",
     _all(r"^saturation = .*", 'saturation = "wrap"'),
     "field 'numerics.saturation': 'wrap' is not one of clamp"),
    ("unknown holds entry",
     _nth(r"^holds = \[", 'holds = ["bias", ', 0),
     "field 'memory[0].holds': 'bias' is not one of activations, weights"),
    ("accumulator width",
     _all(r"^accumulator_bits = .*", "accumulator_bits = 24"),
     "field 'numerics.accumulator_bits': 24 is not one of 16, 32, 64"),
    ("unknown field",
     _nth(r"^int8_conv = ", "int8_convv = ", 0),
     "field 'throughput.int8_convv' is not a known field"),
    ("number without source",
     _nth(r"^int8_conv = .*", "int8_conv = 0.9", 0),
     f"field 'throughput.int8_conv': must be a table {TABLE}"),
    ("empty source",
     _nth(r'^(int8_conv = \{ value = [-0-9.e]+, source = )".*"', r'\1""', 0),
     f"field 'throughput.int8_conv': must be a table {TABLE}"),
    ("value is text",
     _nth(r"^(exp = \{ value = )[-0-9.e]+", r'\1"fast"', 0),
     f"field 'throughput.exp': must be a table {TABLE}"),
    ("schema 2",
     _all(r"^schema = 1", "schema = 2"),
     "field 'schema': version 2 is not supported (this intonly reads schema 1)"),
    ("name is not the file name",
     _all(r'^name = "cortex-m7"', 'name = "cortex-m8"'),
     "field 'name': 'cortex-m8' must equal the file name 'cortex-m7'"),
    ("no level holds weights",
     _all(r"^holds = .*", 'holds = ["activations"]'),
     "field 'memory': no level holds 'weights'"),
    ("duplicate level",
     _nth(r'^name = "axi_sram"', 'name = "dtcm"', 0),
     "field 'memory[1].name': 'dtcm' is used by memory[0] too"),
]


@pytest.fixture
def bad_file(tmp_path):
    """Write a mutated copy of the built-in cortex-m7.toml; return its path."""
    def write(mutate):
        path = tmp_path / "cortex-m7.toml"
        text = (BUILTIN_DIR / "cortex-m7.toml").read_text(encoding="utf-8")
        changed = mutate(text)
        assert changed != text, "the mutation did not apply"
        path.write_text(changed, encoding="utf-8")
        return path
    return write


@pytest.mark.parametrize("mutate, message", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_file_gives_one_error_naming_file_and_field(bad_file, mutate, message, capsys):
    path = bad_file(mutate)
    with pytest.raises(TargetError) as err:
        load_file(path)
    assert str(err.value) == f"{path}: {message}"
    assert main(["targets", "show", str(path)]) == 2
    assert capsys.readouterr().err == f"error: TargetError: {path}: {message}\n"


def test_broken_toml_names_file_line_and_column(bad_file, capsys):
    path = bad_file(_all(r"^\[toolchain\]", "[toolchain"))
    pattern = "^" + re.escape(f"{path}: not valid TOML: ") + r".*\(at line \d+, column \d+\)"
    with pytest.raises(TargetError, match=pattern):
        load_file(path)
    assert main(["targets", "show", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: TargetError: {path}: not valid TOML: ")


def test_missing_file_is_a_target_error(tmp_path):
    with pytest.raises(TargetError, match=re.escape(f"{tmp_path / 'nope.toml'}: cannot read target file")):
        load_target(str(tmp_path / "nope.toml"))


# --- third-party targets -------------------------------------------------------------------------------------------

@pytest.fixture
def npu_dir(tmp_path):
    """A directory holding one third-party target, 'my-npu' (the Cortex-M4 file renamed)."""
    d = tmp_path / "vendor"
    d.mkdir()
    text = (BUILTIN_DIR / "cortex-m4.toml").read_text(encoding="utf-8")
    (d / "my-npu.toml").write_text(text.replace('name = "cortex-m4"', 'name = "my-npu"'), encoding="utf-8")
    return d


def test_target_dir_adds_a_third_party_target(npu_dir, capsys):
    assert load_target("my-npu", extra_dirs=[npu_dir]).file == npu_dir / "my-npu.toml"
    assert "my-npu" in [t.name for t in list_targets([npu_dir])]
    assert main(["targets", "list", "--target-dir", str(npu_dir)]) == 0
    out = capsys.readouterr().out
    assert "my-npu" in out and all(name in out for name in BUILTIN)
    assert main(["targets", "show", "my-npu@100MHz", "--target-dir", str(npu_dir)]) == 0
    assert "clock 100 MHz" in capsys.readouterr().out


def test_environment_path_adds_a_third_party_target(npu_dir, monkeypatch):
    monkeypatch.setenv(ENV_VAR, f"{npu_dir}")
    assert load_target("my-npu").description == load_target("cortex-m4").description
    assert "my-npu" in [t.name for t in list_targets()]


def test_entry_point_adds_a_third_party_target(npu_dir, monkeypatch):
    class EntryPoint:
        name, value = "vendor", "vendor_pkg:target_dir"

        def load(self):
            return lambda: npu_dir

    monkeypatch.setattr("intonly.targets.loader.importlib.metadata.entry_points",
                        lambda group: [EntryPoint()] if group == "intonly.targets" else [])
    assert load_target("my-npu").file == npu_dir / "my-npu.toml"


def test_name_collision_is_refused_naming_both_files(tmp_path, capsys):
    shutil.copy(BUILTIN_DIR / "cortex-m7.toml", tmp_path / "cortex-m7.toml")
    message = f"target 'cortex-m7' is defined twice: {BUILTIN_DIR / 'cortex-m7.toml'} and {tmp_path / 'cortex-m7.toml'}"
    with pytest.raises(TargetError) as err:
        list_targets([tmp_path])
    assert str(err.value) == message
    assert main(["targets", "list", "--target-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: TargetError: {message}\n"


def test_the_builtin_directory_given_again_is_not_a_collision():
    assert len(list_targets([BUILTIN_DIR])) == len(BUILTIN)


def test_missing_target_dir_is_refused(tmp_path):
    with pytest.raises(TargetError) as err:
        list_targets([tmp_path / "nope"])
    assert str(err.value) == f"target directory '{tmp_path / 'nope'}' (from --target-dir) does not exist"


# --- the CLI -------------------------------------------------------------------------------------------------------

def test_cli_list_shows_every_builtin_target(capsys):
    assert main(["targets", "list"]) == 0
    out = capsys.readouterr().out
    for name in BUILTIN:
        assert name in out
    row = next(line for line in out.splitlines() if " nvidia-t4 " in line)
    t4 = load_target("nvidia-t4")
    assert "1590" in row and "half_up" in row and f"{round(t4.throughput['int8_conv'].value):,}" in row and "gddr6 16 GiB" in row


def test_cli_show_prints_the_clock_override_and_sources(capsys):
    assert main(["targets", "show", "cortex-m7@480MHz"]) == 0
    out = capsys.readouterr().out
    assert "cortex-m7@480MHz" in out and "clock 480 MHz" in out and "user override" in out
    assert re.search(r"clock_mhz\s+│ 480\s+│ MHz", out)
    assert "throughput.int8_conv" in out and "memory[2].wait_states" in out


def test_cli_show_json_round_trips(capsys):
    assert main(["targets", "show", "cortex-m7", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc.pop("overrides") == []
    path = Path(doc.pop("file"))
    assert doc["throughput"]["int8_conv"].keys() == {"value", "source"}
    assert parse_document(doc, path) == load_target("cortex-m7")

    assert main(["targets", "show", "cortex-m7@216MHz", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["clock_mhz"] == {"value": 216.0, "source": "user override"} and doc["overrides"] == ["clock 216 MHz"]


def test_target_is_a_plain_dataclass():
    t = load_target("nvidia-t4")
    assert isinstance(t, Target) and dataclasses.replace(t, notes="x").notes == "x"
