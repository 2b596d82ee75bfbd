"""Hostile and broken inputs: crafted model archives, output paths and signals each end in one typed error (exit
code 2) or a clean stop, nothing is lost and nothing is written outside the output folder (docs/trust.md).

The numbers in the test names are the cases of the reliability issue that found them."""

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intonly import cli
from intonly.demos import digits
from intonly.output import MARKER, OutputError, output_folder, safe_component
from intonly.quantize.bounded_read import Limits, json_depth
from intonly.quantize.errors import ModelFileError
from intonly.quantize.ir import IntModel
from intonly.quantize.lower import quantize


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory):
    x_tr, _, _, _ = digits.load_split()
    return quantize(digits.load_model(), x_tr[:200]).save(tmp_path_factory.mktemp("seed") / "digits.intonly")


def rewrite(src: Path, dst: Path, edit_graph=None, members=None, drop=()) -> Path:
    """A copy of the archive ``src`` with graph.json edited and members replaced, added or dropped."""
    with zipfile.ZipFile(src) as zf:
        content = {n: zf.read(n) for n in zf.namelist() if n not in drop}
    if edit_graph:
        graph = json.loads(content["graph.json"])
        edit_graph(graph)
        content["graph.json"] = json.dumps(graph).encode()
    content.update(members or {})
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in content.items():
            zf.writestr(name, data)
    return dst


def run_cli(argv, capsys) -> tuple[int, str]:
    rc = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.err.strip()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(root.rglob("*"))}


# ---- 1, 2: data loss and writes outside the output folder --------------------------------------------------------

def test_1_model_name_cannot_climb_out_of_the_default_output_folder(digits_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("x")
    rewrite(digits_file, tmp_path / "evil.intonly", lambda g: g.update(name="../../victim"))
    rc, _ = run_cli(["estimate", "evil.intonly", "--target", "cortex-m4"], capsys)
    assert rc == 0
    rc, err = run_cli(["build", "evil.intonly", "--target", "x86-64-host"], capsys)
    assert rc == 0, err
    assert (tmp_path / "victim" / "keep.txt").read_text() == "x"
    assert sorted(p.name for p in (tmp_path / "victim").iterdir()) == ["keep.txt"]
    assert (tmp_path / "out" / "estimate" / "victim" / "estimate.json").is_file()
    assert (tmp_path / "out" / "build" / "victim" / "x86-64-host" / "build.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.intonly", "out", "victim"]


def test_1_names_become_one_safe_path_component():
    assert safe_component("../../victim") == "victim"
    assert safe_component("/etc/passwd") == "etc_passwd"
    assert safe_component("..") == "model" and safe_component("") == "model" and safe_component(".x") == "x"
    assert safe_component("cortex-m7@480MHz") == "cortex-m7@480MHz"
    assert safe_component("a/../b") == "a_.._b"
    assert len(safe_component("x" * 500)) == 80


def net_files(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "net.py").write_text("import torch.nn as nn\n"
                                   "class Net(nn.Module):\n"
                                   "    def __init__(self):\n"
                                   "        super().__init__()\n"
                                   "        self.fc = nn.Linear(4, 3)\n"
                                   "    def forward(self, x):\n"
                                   "        return self.fc(x)\n")
    rng = np.random.default_rng(0)
    np.savez(folder / "ok.npz", x=rng.normal(size=(16, 4)).astype(np.float32), y=rng.integers(0, 3, 16))


def test_2_out_parent_of_the_working_directory_is_refused_and_nothing_is_deleted(tmp_path, monkeypatch, capsys):
    proj = tmp_path / "proj"
    net_files(proj)
    before = tree(proj)
    monkeypatch.chdir(proj)
    rc, err = run_cli(["run", "--model", "net.py:Net", "--data", "ok.npz", "--out", "../proj"], capsys)
    assert rc == 2
    assert err == ("error: OutputError: --out '../proj' is the working directory or one of its parents; intonly "
                   "writes results into a folder of their own (e.g. --out results)")
    assert tree(proj) == before


def test_2_out_dot_is_refused(tmp_path, monkeypatch, capsys):
    net_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    rc, err = run_cli(["run", "--model", "net.py:Net", "--data", "ok.npz", "--out", "."], capsys)
    assert rc == 2
    assert err == ("error: OutputError: --out '.' is the working directory or one of its parents; intonly writes "
                   "results into a folder of their own (e.g. --out results)")


def test_2_out_reaching_the_working_directory_through_a_link_is_refused(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / MARKER).write_text("{}")        # even a folder intonly made is not replaced while it is the cwd
    (tmp_path / "alias").symlink_to(tmp_path)
    monkeypatch.chdir(work)
    out = tmp_path / "alias" / "work"
    rc, err = run_cli(["estimate", "digits", "--target", "cortex-m4", "--out", out], capsys)
    assert (rc, err) == (2, f"error: OutputError: --out '{out}' is the working directory or one of its parents; "
                            "intonly writes results into a folder of their own (e.g. --out results)")
    assert sorted(p.name for p in work.iterdir()) == [MARKER]


def test_2_out_onto_a_folder_intonly_did_not_make_is_refused(digits_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "notes.txt").write_text("mine")
    rc, err = run_cli(["estimate", digits_file, "--target", "cortex-m4", "--out", "proj"], capsys)
    assert rc == 2
    assert err == (f"error: OutputError: --out 'proj' exists and was not made by intonly (no {MARKER} file in it); "
                   "intonly only replaces its own output folders: choose another --out or remove the folder "
                   "yourself")
    assert tree(tmp_path / "proj") == {"notes.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def test_2_out_that_is_an_input_or_holds_one_is_refused(digits_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "models" / "m.intonly"
    local.parent.mkdir()
    local.write_bytes(digits_file.read_bytes())
    for out in ("models/m.intonly", "models"):
        rc, err = run_cli(["estimate", "models/m.intonly", "--target", "cortex-m4", "--out", out], capsys)
        assert rc == 2
        assert err == (f"error: OutputError: --out '{out}' would replace the input 'models/m.intonly'; choose another "
                       "output folder")
    assert local.read_bytes() == digits_file.read_bytes()


def test_2_intonly_replaces_its_own_folder_and_an_empty_one(digits_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    for out in ("empty", "fresh", "fresh"):   # an empty folder, a new one, then its own folder again
        rc, err = run_cli(["estimate", digits_file, "--target", "cortex-m4", "--out", out], capsys)
        assert rc == 0, err
        assert sorted(p.name for p in (tmp_path / out).iterdir()) == [MARKER, "estimate.html", "estimate.json",
                                                                       "estimate.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "fresh"]   # no staging or old folder left


def test_2_a_demo_name_is_not_an_input_path(tmp_path, monkeypatch, capsys):
    """``--out digits`` beside the demo ``digits``: the demo reads no file, so nothing is "replaced"."""
    monkeypatch.chdir(tmp_path)
    rc, err = run_cli(["estimate", "digits", "--target", "cortex-m4", "--out", "digits"], capsys)
    assert rc == 0, err
    assert (tmp_path / "digits" / "estimate.json").is_file()


def test_2_unwritable_out_fails_before_any_work(tmp_path, monkeypatch, capsys):
    """The model file would leave a mark if it were imported: --out is refused before the model is loaded."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text("open('imported', 'w').write('x')\n")
    np.savez(tmp_path / "ok.npz", x=np.zeros((4, 4), np.float32))
    (tmp_path / "afile").write_text("")
    rc, err = run_cli(["run", "--model", "net.py:Net", "--data", "ok.npz", "--out", "afile/results"], capsys)
    assert rc == 2
    assert err == "error: OutputError: --out 'afile/results': 'afile' is not a folder"
    assert not (tmp_path / "imported").exists()


def test_2_symlinked_out_and_json_onto_a_folder_are_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OutputError, match=re.escape(f"--out '{tmp_path / 'link'}' is a symbolic link; name the real "
                                                    "folder")):
        with output_folder(tmp_path / "link"):
            pass
    from intonly.output import write_file
    with pytest.raises(OutputError, match=re.escape(f"--json '{tmp_path / 'real'}' is a folder or a symbolic link")):
        write_file(tmp_path / "real", "{}")


def test_2_a_failing_command_leaves_no_staging_folder_and_no_new_parents(tmp_path):
    out = tmp_path / "a" / "b" / "results"
    with pytest.raises(RuntimeError):
        with output_folder(out) as stage:
            (stage / "half.json").write_text("{")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# ---- 3: signals -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig,code,delay", [(signal.SIGTERM, 143, 0.5), (signal.SIGINT, 130, 0.5),
                                            (signal.SIGTERM, 143, 4.0), (signal.SIGINT, 130, 4.0)])
def test_3_a_killed_run_leaves_no_partial_folder(tmp_path, sig, code, delay):
    proc = subprocess.Popen([sys.executable, "-m", "intonly.cli", "run", "--out", "results"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".results.*.partial")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(delay)   # early: while modules import; later: while it quantizes, simulates or compiles
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == (f"intonly: stopped by {signal.Signals(sig).name}; no output folder was "
                                            "written or changed")
    assert list(tmp_path.iterdir()) == []


def test_3_a_signal_during_the_final_renames_waits_until_they_are_done(tmp_path, monkeypatch):
    """Between moving the old folder aside and the new one in, SIGTERM is held back: the new results end up in
    place (the old ones gone), never only in a hidden .old folder."""
    from intonly import output
    out = tmp_path / "results"
    with output_folder(out) as stage:
        (stage / "old.json").write_text("{}")
    real_replace, calls = os.replace, []

    def replace_then_signal(src, dst):
        calls.append(dst)
        real_replace(src, dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)   # after the first rename, before the second

    monkeypatch.setattr(output.os, "replace", replace_then_signal)
    with pytest.raises(output.Terminated):
        with output.StopSignals():
            with output_folder(out) as stage:
                (stage / "new.json").write_text("{}")
    assert len(calls) == 2 and output.StopSignals.published == [out.resolve()]
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "new.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


# ---- 4, 5: resource exhaustion ----------------------------------------------------------------------------------

def npy_of(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_4_a_declared_1gib_constant_is_refused_before_it_is_read(digits_file, tmp_path, capsys, monkeypatch):
    data = npy_of(np.zeros(2**30, np.int8))
    digest = hashlib.sha256(data).hexdigest()

    def huge(graph):
        graph["constants"]["huge"] = {"file": "constants/huge.npy", "dtype": "int8", "shape": [2**30],
                                      "sha256": digest}
    path = rewrite(digits_file, tmp_path / "huge.intonly", huge, {"constants/huge.npy": data})
    del data
    assert path.stat().st_size < 2**21
    declared = 2**30 + sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in IntModel.load(digits_file).constants.values())
    message = (f"{path}: graph.json: the constants' declared size in bytes is {declared:,}, over the limit of "
               "536,870,912 (raise the limit with INTONLY_MAX_CONSTANT_BYTES=<n> if the file is trusted)")
    from intonly.quantize import ir_file
    read = []
    real_read_member = ir_file.read_member
    monkeypatch.setattr(ir_file, "read_member", lambda zf, name, *a: read.append(name) or real_read_member(zf, name, *a))
    with pytest.raises(ModelFileError) as info:
        IntModel.load(path)
    assert str(info.value) == message
    assert read == ["graph.json"]   # refused from the declaration: no constant was read, let alone decompressed
    monkeypatch.undo()
    for command in (["inspect", path], ["build", path, "--target", "cortex-m4", "--out", tmp_path / "b"]):
        rc, err = run_cli(command, capsys)
        assert (rc, err) == (2, f"error: ModelFileError: {message}")
    assert not (tmp_path / "b").exists()


def test_4_a_member_larger_than_its_declared_shape_is_refused_unread(digits_file, tmp_path):
    with zipfile.ZipFile(digits_file) as zf:
        member = json.loads(zf.read("graph.json"))["constants"]["fc.bias"]["file"]
    payload = npy_of(np.zeros(10**6, np.int32))
    path = rewrite(digits_file, tmp_path / "m.intonly", members={member: payload})
    with pytest.raises(ModelFileError) as info:
        IntModel.load(path)
    assert str(info.value) == (f"{path}: constant 'fc.bias' ({member}) is {len(payload):,} bytes, but graph.json "
                               "declares int32[10] (40 bytes of data)")


def test_4_limits_can_be_raised_by_the_environment(monkeypatch):
    monkeypatch.setenv("INTONLY_MAX_CONSTANT_BYTES", "4294967296")
    monkeypatch.setenv("INTONLY_MAX_NODES", "7")
    limits = Limits.from_env()
    assert limits.constant_bytes == 2**32 and limits.nodes == 7 and limits.tensors == Limits().tensors
    monkeypatch.setenv("INTONLY_MAX_NODES", "-3")
    from intonly.quantize.errors import ConfigError
    with pytest.raises(ConfigError, match=re.escape("environment variable INTONLY_MAX_NODES='-3': must be a "
                                                    "positive integer")):
        Limits.from_env()


def test_5_node_count_over_the_limit_is_refused(digits_file, tmp_path, monkeypatch):
    monkeypatch.setenv("INTONLY_MAX_NODES", "10")
    with pytest.raises(ModelFileError) as info:
        IntModel.load(digits_file)
    assert str(info.value) == (f"{digits_file}: graph.json: the number of nodes is 17, over the limit of 10 (raise "
                               "the limit with INTONLY_MAX_NODES=<n> if the file is trusted)")


def chain_model(n: int) -> IntModel:
    from intonly.quantize.ir import Node, TensorInfo
    t = {"x": TensorInfo("x", "float32", (4,)), "q0": TensorInfo("q0", "int8", (4,), 0.1)}
    nodes = [Node("quant", "quantize", ["x"], ["q0"], {"perm": [], "form": 0})]
    for i in range(n):
        t[f"q{i + 1}"] = TensorInfo(f"q{i + 1}", "int8", (4,), 0.1)
        nodes.append(Node(f"c{i}", "clamp", [f"q{i}"], [f"q{i + 1}"], {"act_min": -100, "act_max": 100}))
    t["y"] = TensorInfo("y", "float32", (4,))
    nodes.append(Node("deq", "dequantize", [f"q{n}"], ["y"], {"perm": []}))
    return IntModel("chain", "half_up", ["x"], ["y"], t, nodes, {})


def test_5_a_20000_node_chain_is_inspected_and_estimated(tmp_path, monkeypatch, capsys):
    path = chain_model(20000).save(tmp_path / "chain.intonly")
    monkeypatch.chdir(tmp_path)
    rc, err = run_cli(["inspect", path], capsys)
    assert rc == 0, err
    rc, err = run_cli(["estimate", path, "--target", "cortex-m4", "--out", "est"], capsys)
    assert rc == 0, err
    report = json.loads((tmp_path / "est" / "estimate.json").read_text())
    assert len(report["estimates"][0]["layers"]) == 20002


# ---- 7, 8, 11: malformed archives and metadata ------------------------------------------------------------------

def compressed_offset(path: Path, member: str | None) -> int:
    """The middle of a member's compressed bytes (``None``: the largest constant)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member) if member else max((i for i in zf.infolist() if i.filename.startswith("constants/")),
                                                     key=lambda i: i.compress_size)
    return info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2, info.filename


@pytest.mark.parametrize("member", ["graph.json", None])
def test_7_a_flipped_byte_in_a_compressed_member_is_one_typed_error(digits_file, tmp_path, member, capsys):
    raw = bytearray(digits_file.read_bytes())
    at, name = compressed_offset(digits_file, member)
    raw[at] ^= 0x5A
    path = tmp_path / "flip.intonly"
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError) as info:
        IntModel.load(path)
    assert str(info.value).startswith(f"{path}: {name} is damaged and cannot be read (")
    for command in (["inspect", path], ["estimate", path, "--target", "cortex-m4", "--out", tmp_path / "e"],
                    ["build", path, "--target", "cortex-m4", "--out", tmp_path / "b"]):
        rc, err = run_cli(command, capsys)
        assert (rc, err) == (2, f"error: ModelFileError: {info.value}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flip.intonly"]


def test_7_an_unsupported_zip_version_is_one_typed_error(digits_file, tmp_path):
    """Found by bench/input_fuzz.py: a flipped byte in a central-directory "version needed" field made zipfile raise
    NotImplementedError while opening the archive."""
    raw = bytearray(digits_file.read_bytes())
    at = raw.rfind(b"PK\x01\x02")
    raw[at + 6] = 193          # version needed to extract: 19.3
    path = tmp_path / "v.intonly"
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError) as info:
        IntModel.load(path)
    assert str(info.value) == f"{path}: not an intonly model archive (truncated or corrupt: zip file version 19.3)"


def test_7_deeply_nested_graph_json_is_refused_without_recursion(digits_file, tmp_path):
    path = tmp_path / "deep.intonly"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("graph.json", "[" * 100000 + "]" * 100000)
    with pytest.raises(ModelFileError) as info:
        IntModel.load(path)
    assert str(info.value) == (f"{path}: graph.json: nests arrays/objects 100,000 deep, over the limit of 32 (raise the "
                               "limit with INTONLY_MAX_JSON_DEPTH=<n> if the file is trusted)")
    assert json_depth(b'{"a": "[[[[", "b": [[1], {"c": "\\"]]"}]}') == 3


def npy_header_case(digits_file, tmp_path, header: bytes, body: bytes, graph_edit=None):
    with zipfile.ZipFile(digits_file) as zf:
        graph = json.loads(zf.read("graph.json"))
    name = "fc.bias"
    member = graph["constants"][name]["file"]
    data = header + body

    def edit(g):
        g["constants"][name]["sha256"] = hashlib.sha256(data).hexdigest()
        if graph_edit:
            graph_edit(g["constants"][name])
    return rewrite(digits_file, tmp_path / "npy.intonly", edit, {member: data}), f"constant '{name}' ({member})"


def npy_header(text: str) -> bytes:
    raw = text.encode("latin1")
    raw += b" " * (63 - (10 + len(raw)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw


@pytest.mark.parametrize("header,body,message", [
    ("{'descr': '<i4', 'fortran_order': False, 'shape': (99999999999,), }", b"\0" * 40,
     ".npy data is 40 bytes, its header (int32[99999999999]) declares 399,999,999,996"),
    ("{'descr': '|O', 'fortran_order': False, 'shape': (10,), }", b"\0" * 40,
     ".npy dtype '|O' is not a plain number type (one of int8, int16, int32, int64, uint8, uint16, uint32, float16, float32, "
     "float64, bool)"),
    ("{'descr': '<i4', 'fortran_order': False, 'shape': (10,), }", b"\0" * 36,
     ".npy data is 36 bytes, its header (int32[10]) declares 40"),   # truncated
    ("{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (10,), }", b"\0" * 40,
     ".npy header is not a literal dictionary"),
])
def test_7_npy_headers_are_checked_before_data(digits_file, tmp_path, header, body, message):
    path, at = npy_header_case(digits_file, tmp_path, npy_header(header), body)
    with pytest.raises(ModelFileError) as info:
        IntModel.load(path)
    assert str(info.value) == f"{path}: {at}: {message}"


def test_7_a_pickle_in_place_of_an_array_is_refused(digits_file, tmp_path):
    import pickle
    payload = pickle.dumps(np.zeros(10, np.int32))
    path, at = npy_header_case(digits_file, tmp_path, b"", payload)
    with pytest.raises(ModelFileError) as info:
        IntModel.load(path)
    assert str(info.value) == f"{path}: {at}: not a .npy array (bad magic)"


def edit_case(digits_file, tmp_path, edit) -> str:
    path = rewrite(digits_file, tmp_path / "m.intonly", edit)
    with pytest.raises(ModelFileError) as info:
        IntModel.load(path)
    return str(info.value).removeprefix(f"{path}: ")


def tensor(graph, name):
    return next(t for t in graph["tensors"] if t["name"] == name)


def conv(graph):
    return next(n for n in graph["nodes"] if n["op"] == "conv2d")


def test_8_zero_stride_is_refused_before_shape_inference(digits_file, tmp_path):
    assert edit_case(digits_file, tmp_path, lambda g: conv(g)["attrs"].update(stride=[0, 0])) == \
        "node 1 'stem.0' (conv2d): stride=[0, 0] must be 2 integers in [1, 65536]"


@pytest.mark.parametrize("edit,message", [
    (lambda g: tensor(g, "stem_2").update(scale=float("nan")),
     "tensor 'stem_2': scale nan is not a finite number > 0 (as float32)"),
    (lambda g: tensor(g, "stem_2").update(scale=-0.5), "tensor 'stem_2': scale -0.5 is not a finite number > 0 (as float32)"),
    (lambda g: tensor(g, "stem_2").update(scale=0), "tensor 'stem_2': scale 0 is not a finite number > 0 (as float32)"),
    (lambda g: tensor(g, "stem_2").update(scale=1e-50), "tensor 'stem_2': scale 1e-50 is not a finite number > 0 (as float32)"),
    (lambda g: tensor(g, "stem_2").update(zero_point=300), "tensor 'stem_2': zero_point 300 is outside the 8-bit range "
                                                          "[-128, 127]"),
    (lambda g: tensor(g, "stem_2").update(layout="NHWC"),
     "tensor 'stem_2': layout 'NHWC' is not one of 'HWC', 'LC', 'CHW', ''"),
    (lambda g: tensor(g, "stem_2").update(encoding="mu-law"), "tensor 'stem_2': encoding 'mu-law' is not one of "
                                                              "'linear', 'log2'"),
    (lambda g: g["tensors"].append(dict(g["tensors"][3])), "graph.json: tensors[{n}]: name '{t3}' is used by tensors[3] too"),
    (lambda g: g.update(outputs=[]), "the graph has no outputs"),
    (lambda g: next(n for n in g["nodes"] if n["op"] == "avgpool")["attrs"].update(count_include_pad=7),
     "node {pool} 'smooth' (avgpool): count_include_pad=7 outside [0, 1]"),
    (lambda g: g["nodes"][2].update(name=g["nodes"][1]["name"]), "node 2 'stem.0' ({op2}): name is used by node 1 too"),
    (lambda g: conv(g)["attrs"].update(input_zp=1000), "node 1 'stem.0' (conv2d): input_zp=1000 outside the 8-bit range "
                                                       "[-128, 127] of tensor 'x_q'"),
    (lambda g: conv(g)["attrs"].update(groups=10**40), "node 1 'stem.0' (conv2d): groups=10000000000000000000000000000000000000000 "
                                                       "outside [1, 65536]"),
    (lambda g: g.update(extra=1), "graph.json: field 'extra': is not a field of format version 1"),
    (lambda g: tensor(g, "stem_2").update(shape=[2**20, 2**20]),
     "graph.json: tensors[2] ('stem_2').shape: the number of elements is 1,099,511,627,776, over the limit of 268,435,456 "
     "(raise the limit with INTONLY_MAX_TENSOR_ELEMENTS=<n> if the file is trusted)"),
])
def test_11_metadata_is_validated(digits_file, tmp_path, edit, message):
    with zipfile.ZipFile(digits_file) as zf:
        graph = json.loads(zf.read("graph.json"))
    pool = next(i for i, n in enumerate(graph["nodes"]) if n["op"] == "avgpool")
    message = message.format(n=len(graph["tensors"]), t3=graph["tensors"][3]["name"], op2=graph["nodes"][2]["op"],
                             pool=pool)
    assert edit_case(digits_file, tmp_path, edit) == message


def test_11_unused_constant_is_refused(digits_file, tmp_path):
    data = npy_of(np.zeros(3, np.int32))

    def extra(graph):
        graph["constants"]["orphan"] = {"file": "constants/orphan.npy", "dtype": "int32", "shape": [3],
                                        "sha256": hashlib.sha256(data).hexdigest()}
    path = rewrite(digits_file, tmp_path / "m.intonly", extra, {"constants/orphan.npy": data})
    with pytest.raises(ModelFileError) as info:
        IntModel.load(path)
    assert str(info.value) == f"{path}: constant 'orphan' is not used by any node"


def test_11_archive_members_graph_json_does_not_list_are_refused(digits_file, tmp_path):
    path = rewrite(digits_file, tmp_path / "m.intonly", members={"../evil.txt": b"x"})
    with pytest.raises(ModelFileError) as info:
        IntModel.load(path)
    assert str(info.value) == f"{path}: the archive holds '../evil.txt', which graph.json does not list"


def test_a_model_file_that_is_not_a_regular_file_is_refused_without_reading(tmp_path):
    fifo = tmp_path / "pipe.intonly"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match=re.escape(f"{fifo}: the intonly model archive is a FIFO, not a regular file")):
        IntModel.load(fifo)
    with pytest.raises(ModelFileError, match=re.escape(f"{tmp_path}: the intonly model archive is a directory, not a regular file")):
        IntModel.load(tmp_path)


# ---- 10: CLI arguments ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_10_build_timeout_must_be_positive_and_finite(value, tmp_path, capsys):
    rc, err = run_cli(["build", "--target", "cortex-m4", "--timeout", value, "--out", tmp_path / "b"], capsys)
    shown = {"-1": "-1", "0": "0", "nan": "nan", "inf": "inf"}[value]
    assert (rc, err) == (2, f"error: ConfigError: --timeout must be a number of seconds > 0, got {shown}")
    assert list(tmp_path.iterdir()) == []


# ---- overflow proofs stay exact and cheap for any attribute a file can hold -------------------------------------

@settings(max_examples=300, deadline=None)
@given(x0=st.integers(-400, -1), b=st.integers(-1000, 1000), c=st.integers(-2**31, 2**31 - 1))
def test_iexp_polynomial_bound_equals_enumeration(x0, b, c):
    from intonly.quantize.bounds import iexp_poly_max
    assert iexp_poly_max(x0, b, c) == max(abs((r + b) * r + c) for r in range(x0 + 1, 1))


def test_an_extreme_iexp_x0_is_bounded_in_closed_form(tmp_path):
    """x0 = -(2^31 - 1) once made the validator enumerate 2^31 values (16 GB); now it is refused by its bound."""
    from conftest import single_op_model
    from intonly.quantize.ir import TensorInfo
    x = TensorInfo("x", "int16", (8,), 0.01, 0, 16)
    y = TensorInfo("y", "int16", (8,), 2.0**-15, 0, 16)
    attrs = {"x0": -(2**31 - 1), "n": 0, "q_max": 1, "b_int": 5, "c_int": 7, "norm_bits": 31, "masked": 0}
    peak = (2**31 - 2) ** 2 - 5 * (2**31 - 2) + 7    # r = x0 + 1 = -(2^31 - 2)
    with pytest.raises(ModelFileError, match=re.escape(f"node 1 'op' (iexp_softmax): exp before shift can overflow "
                                                       f"(|value| <= {peak} > 2147483647)")):
        single_op_model("iexp_softmax", [x], y, attrs)
