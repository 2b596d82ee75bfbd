"""IR file format, validation, and the typed errors bad input gets."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn

from intonly.demos import digits
from intonly.quantize.config import QuantConfig
from intonly.quantize.errors import ConfigError, ModelFileError, UnsupportedOpError
from intonly.quantize.ir import IntModel
from intonly.quantize.lower import quantize


@pytest.fixture(scope="module")
def digits_model():
    x_tr, _, _, _ = digits.load_split()
    return quantize(digits.load_model(), x_tr[:200])


def test_save_load_roundtrip_is_exact(digits_model, tmp_path):
    path = digits_model.save(tmp_path / "m.intonly")
    loaded = IntModel.load(path)
    assert [vars(n) for n in loaded.nodes] == [vars(n) for n in digits_model.nodes]
    assert loaded.tensors == digits_model.tensors
    assert loaded.constants.keys() == digits_model.constants.keys()
    for k, v in digits_model.constants.items():
        assert loaded.constants[k].dtype == v.dtype and np.array_equal(loaded.constants[k], v)
    assert [p.name for p in tmp_path.iterdir()] == ["m.intonly"]   # no temporary file left beside it


def test_truncated_file_gives_clear_error(digits_model, tmp_path):
    path = digits_model.save(tmp_path / "m.intonly")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"m\.intonly: not an intonly model archive \(truncated or corrupt"):
        IntModel.load(path)


def _rewrite(path, edit_graph=None, edit_member=None):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if edit_graph:
        graph = json.loads(members["graph.json"])
        edit_graph(graph)
        members["graph.json"] = json.dumps(graph).encode()
    if edit_member:
        edit_member(members)
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)


def test_edited_constant_fails_checksum(digits_model, tmp_path):
    path = digits_model.save(tmp_path / "m.intonly")

    def flip(members):
        name = "constants/0.npy"
        raw = bytearray(members[name])
        raw[-1] ^= 0x01
        members[name] = bytes(raw)

    _rewrite(path, edit_member=flip)
    with pytest.raises(ModelFileError, match=r"constant '.*' \(constants/0\.npy\) fails its checksum"):
        IntModel.load(path)


def test_edited_attribute_names_node_and_field(digits_model, tmp_path):
    path = digits_model.save(tmp_path / "m.intonly")

    def bad_stride(graph):
        conv = next(n for n in graph["nodes"] if n["op"] == "conv2d")
        conv["attrs"]["stride"] = "2"

    _rewrite(path, edit_graph=bad_stride)
    with pytest.raises(ModelFileError, match=r"node 1 'stem\.0' \(conv2d\): attribute 'stride' must be ints, got '2'"):
        IntModel.load(path)


def test_edited_shape_is_caught_by_shape_inference(digits_model, tmp_path):
    path = digits_model.save(tmp_path / "m.intonly")

    def bad_shape(graph):
        graph["tensors"][2]["shape"] = [9, 9, 16]

    _rewrite(path, edit_graph=bad_shape)
    with pytest.raises(ModelFileError, match=r"output 'stem_2' shape \(9, 9, 16\) != inferred \(8, 8, 16\)"):
        IntModel.load(path)


def test_unknown_version_is_refused(digits_model, tmp_path):
    path = digits_model.save(tmp_path / "m.intonly")
    _rewrite(path, edit_graph=lambda g: g.update(version=99))
    with pytest.raises(ModelFileError, match="format version 99 is not supported"):
        IntModel.load(path)


def test_accumulator_overflow_is_refused(digits_model):
    model = IntModel(**{**vars(digits_model), "constants": dict(digits_model.constants)})
    model.constants["fc.weight"] = np.full_like(model.constants["fc.weight"], 127)
    model.constants["fc.bias"] = np.full_like(model.constants["fc.bias"], 2**31 - 1)
    with pytest.raises(ModelFileError, match=r"node 15 'fc' \(dense\): int32 accumulator can overflow"):
        model.validate()


@pytest.mark.parametrize("field,value", [("weight_bits", 1), ("act_bits", 17), ("weight_bits", 0)])
def test_bit_width_outside_2_to_16_is_refused(field, value):
    with pytest.raises(ConfigError, match=rf"^{field}={value} is outside the supported range 2\.\.16$"):
        QuantConfig(**{field: value})


class WithRecurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.body = nn.Sequential(nn.SiLU(), nn.Conv2d(4, 4, 3))
        self.rnn = nn.LSTM(4, 8)   # batch_first=False: the batch is not the first axis
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        x = self.body(self.conv(x))
        seq, _ = self.rnn(torch.roll(x.flatten(2), 1, 2).transpose(1, 2))
        return self.head(torch.sigmoid(seq[:, -1]))


def test_unsupported_ops_are_all_listed_with_module_paths():
    with pytest.raises(UnsupportedOpError) as info:
        quantize(WithRecurrent(), np.zeros((2, 1, 8, 8), np.float32))
    paths = [p for p, _ in info.value.ops]
    assert paths == ["roll", "rnn"]   # the transpose after roll, the sigmoid after the LSTM: consequential, not listed
    line = next(i for i, text in enumerate(open(__file__), 1) if "seq, _ = self.rnn(" in text)
    descs = dict(info.value.ops)
    assert descs["rnn"] == ("LSTM with batch_first=False (the batch must be the first axis: pass batch_first=True) "
                            f"at {__file__}:{line}")
    assert descs["roll"] == f"function torch.roll at {__file__}:{line}"
    assert str(info.value).startswith("2 unsupported op(s) in the model:\n  - roll: function torch.roll")


def test_cli_unsupported_model_exits_2_and_writes_nothing(tmp_path):
    model_file = tmp_path / "net.py"
    model_file.write_text("import torch.nn as nn\n"
                          "class Net(nn.Module):\n"
                          "    def __init__(self):\n"
                          "        super().__init__()\n"
                          "        self.rnn = nn.LSTM(8, 8)\n"
                          "        self.fc = nn.Linear(8, 2)\n"
                          "    def forward(self, x):\n"
                          "        return self.fc(self.rnn(x)[0])\n")
    np.savez(tmp_path / "data.npz", x=np.zeros((4, 3, 8), np.float32))
    out = tmp_path / "out" / "run1"
    proc = subprocess.run([sys.executable, "-m", "intonly.cli", "run", "--model", f"{model_file}:Net", "--data",
                           str(tmp_path / "data.npz"), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: UnsupportedOpError: 1 unsupported op(s) in the model:",
        f"  - rnn: LSTM with batch_first=False (the batch must be the first axis: pass batch_first=True) at "
        f"{model_file}:8"]
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz", "net.py"]


def test_cli_inspect_prints_totals(digits_model, tmp_path):
    path = digits_model.save(tmp_path / "m.intonly")
    proc = subprocess.run([sys.executable, "-m", "intonly.cli", "inspect", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    macs = sum(digits_model.node_macs(n) for n in digits_model.nodes)
    assert macs == 146688
    assert f"17 nodes, 16,014 parameters, {macs:,} MACs per sample" in proc.stdout
    assert "conv2d" in proc.stdout and "dense" in proc.stdout


def test_cli_inspect_bad_file_exits_2(tmp_path):
    bad = tmp_path / "bad.intonly"
    bad.write_bytes(b"not a zip")
    proc = subprocess.run([sys.executable, "-m", "intonly.cli", "inspect", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "ModelFileError" in proc.stderr and "bad.intonly: not an intonly model archive" in proc.stderr


class TanhGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x):
        return self.act(self.fc(x))


def test_tanh_gelu_is_a_table_and_erf_gelu_stays_an_integer_gelu():
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    assert [n.op for n in quantize(TanhGelu(), x).nodes] == ["quantize", "dense", "lookup", "dequantize"]


@pytest.mark.parametrize("field,value,message", [
    ("softmax", "relu", "softmax='relu' is not one of ('shiftmax', 'iexp', 'log2')"),
    ("gelu", "tanh", "gelu='tanh' is not one of ('shiftgelu', 'igelu')"),
    ("softmax_bits", 12, "softmax_bits=12 must be 8 or 16"),
    ("residual_bits", 17, "residual_bits=17 is outside the supported range 2..16"),
])
def test_transformer_options_are_validated(field, value, message):
    with pytest.raises(ConfigError) as info:
        QuantConfig(**{field: value})
    assert str(info.value) == message
