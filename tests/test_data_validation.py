"""Bad models and bad data given to ``intonly run --model FILE.py:NAME --data FILE.npz``, to ``quantize`` and to
``simulate``: each gets one typed error naming the file, the array or input, and expected vs given."""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn

from intonly.hwsim.executor import simulate
from intonly.cli import main
from intonly.workloads import load_workload
from intonly.quantize.errors import ConfigError, DataError, QuantizationError
from intonly.quantize.lower import quantize
from intonly.quantize.observers import Observer

NET = '''
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 8 * 8, 4)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


class NeedsArgs(nn.Module):
    def __init__(self, width):
        super().__init__()


def broken():
    raise ValueError("no weights here")


def not_a_model():
    return 42


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 4)

    def forward(self, x):
        y = self.fc(torch.flatten(x, 1))
        return y, y


class Shape(nn.Module):
    def forward(self, x):
        return x.shape


NAME = "just a string"
INSTANCE = Net()
'''

RNG = np.random.default_rng(0)
X = RNG.random((6, 1, 8, 8)).astype(np.float32)


@pytest.fixture
def net(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(NET)
    return path


def npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def cli_error(capsys, *argv) -> str:
    """The one stderr line of a CLI run that must exit with code 2."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _net_class():
    """The class NET defines, for the tests that call the API directly."""
    namespace = {}
    exec(NET, namespace)
    return namespace["Net"]


Small = _net_class()


@pytest.fixture(scope="module")
def small_int_model():
    torch.manual_seed(0)
    return quantize(Small(), X)


# ---- --model FILE.py:NAME ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,message", [
    ("NAME", "--model {f}:NAME is a str, not an nn.Module class or a zero-argument factory"),
    ("NeedsArgs", "--model {f}:NeedsArgs: calling NeedsArgs() failed: TypeError: NeedsArgs.__init__() missing 1 "
                  "required positional argument: 'width' (expected an nn.Module class or factory that takes no "
                  "arguments)"),
    ("broken", "--model {f}:broken: calling broken() failed: ValueError: no weights here (expected an nn.Module "
               "class or factory that takes no arguments)"),
    ("not_a_model", "--model {f}:not_a_model: not_a_model() returned int, not a torch.nn.Module"),
    ("Missing", "--model {f}:Missing: {f} defines no 'Missing'"),
    ("fails_import", "--model {g}:Net: importing {g} failed: SystemExit: 3"),
])
def test_model_name_that_is_not_a_module_factory(net, tmp_path, capsys, name, message):
    data = npz(tmp_path, x=X)
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(3)\n")
    model = f"{exits}:Net" if name == "fails_import" else f"{net}:{name}"
    line = cli_error(capsys, "run", "--model", model, "--data", str(data), "--out", str(tmp_path / "o"))
    assert line == "error: ConfigError: " + message.format(f=net, g=exits)
    assert not (tmp_path / "o").exists()


def test_model_spec_that_is_not_a_python_file(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    text = tmp_path / "net.txt"
    text.write_text("x = 1\n")
    data = npz(tmp_path, x=X)
    cases = {
        "digitz": "--model 'digitz': expected one of digits, vit, minilm, efficientnet-lite0 or FILE.py:NAME (the "
                  "Python file, a colon, and the nn.Module class or factory it defines)",
        f"{folder}:Net": f"--model '{folder}:Net': {folder} is a directory, not a Python file",
        f"{text}:Net": f"--model '{text}:Net': {text} is not a Python file (expected a name ending in .py)",
        f"{tmp_path}/gone.py:Net": f"--model '{tmp_path}/gone.py:Net': {tmp_path}/gone.py: no such file",
        f"{text}:": f"--model '{text}:': '' after the colon is not a Python name (expected FILE.py:NAME)",
    }
    for spec, message in cases.items():
        with pytest.raises(ConfigError) as info:
            load_workload(spec, str(data))
        assert str(info.value) == message


def test_forward_returning_a_non_tensor_is_refused(net, tmp_path):
    with pytest.raises(ConfigError) as info:
        load_workload(f"{net}:Shape", str(npz(tmp_path, x=X)))
    assert str(info.value) == (f"--model {net}:Shape: forward returned Size of int, expected a tensor (or a tuple "
                               f"of tensors, the first one scored)")


def test_forward_returning_a_tuple_scores_its_first_output(net, tmp_path):
    from intonly.workloads import float_outputs

    work = load_workload(f"{net}:Pair", str(npz(tmp_path, x=X)))
    assert float_outputs(work.model, work.x).shape == (6, 4)


def test_module_instance_is_accepted(net, tmp_path):
    work = load_workload(f"{net}:INSTANCE", str(npz(tmp_path, x=X)))
    assert isinstance(work.model, nn.Module) and work.calib[0].shape == (6, 1, 8, 8)


def test_data_with_a_bundled_demo_is_refused(tmp_path, capsys):
    data = npz(tmp_path, x=X)
    line = cli_error(capsys, "run", "--model", "digits", "--data", str(data), "--out", str(tmp_path / "o"))
    assert line == (f"error: ConfigError: --data is for FILE.py:NAME models; the bundled demo 'digits' brings its "
                    f"own data (--data {data})")


# ---- --data FILE.npz: shapes, dtypes, labels -----------------------------------------------------------------

def test_wrong_per_sample_shape_is_one_data_error(net, tmp_path, capsys):
    data = npz(tmp_path, x=RNG.random((5, 3, 8, 8)).astype(np.float32))
    line = cli_error(capsys, "run", "--model", f"{net}:Net", "--data", str(data), "--out", str(tmp_path / "o"))
    assert line == (f"error: DataError: --data {data}: the model fails on one sample of array 'x' (per-sample shape "
                    f"(3, 8, 8)): RuntimeError: Given groups=1, weight of size [2, 1, 3, 3], expected input[1, 3, 8, "
                    f"8] to have 1 channels, but got 3 channels instead")


def test_flat_samples_for_an_image_model_are_one_data_error(net, tmp_path):
    data = npz(tmp_path, x=RNG.random((5, 64)).astype(np.float32))
    with pytest.raises(DataError) as info:
        load_workload(f"{net}:Net", str(data))
    assert str(info.value).startswith(f"--data {data}: the model fails on one sample of array 'x' (per-sample shape "
                                      f"(64,)): RuntimeError: ")


def data_case(tmp_path, case):
    """(path, expected message after '--data PATH: ') for one bad .npz."""
    x = X
    arrays, message = {
        "calib_shape": ({"x": x, "x_calib": RNG.random((4, 3, 8, 8)).astype(np.float32)},
                        "array 'x_calib' has per-sample shape (3, 8, 8), expected x's (1, 8, 8)"),
        "y_length": ({"x": x, "y": np.zeros(5, np.int64)},
                     "array 'y' has shape (5,), expected (6,): one integer label per sample of 'x'"),
        "y_rank": ({"x": x, "y": np.zeros((6, 1), np.int64)},
                   "array 'y' has shape (6, 1), expected (6,): one integer label per sample of 'x'"),
        "y_float": ({"x": x, "y": np.zeros(6, np.float32)},
                    "array 'y' has dtype float32, expected integer class labels"),
        "y_range": ({"x": x, "y": np.array([0, 1, 2, 3, 4, 0])},
                    "array 'y' holds label 4 (sample 4), outside [0, 4) for the model's 4 outputs"),
        "y_negative": ({"x": x, "y": np.array([0, 1, -1, 3, 2, 0])},
                       "array 'y' holds label -1 (sample 2), outside [0, 4) for the model's 4 outputs"),
        "empty": ({"x": np.zeros((0, 1, 8, 8), np.float32)}, "array 'x': 0 samples (shape (0, 1, 8, 8))"),
        "bool": ({"x": np.zeros((6, 1, 8, 8), bool)},
                 "array 'x': dtype bool, expected numbers (integers or floats)"),
        "complex": ({"x": x.astype(np.complex64)},
                    "array 'x': .npy dtype '<c8' is not a plain number type (one of int8, int16, int32, int64, uint8, uint16, "
                    "uint32, float16, float32, float64, bool)"),
        "strings": ({"x": np.array(["a", "b"])},
                    "array 'x': .npy dtype '<U1' is not a plain number type (one of int8, int16, int32, int64, uint8, uint16, "
                    "uint32, float16, float32, float64, bool)"),
        "no_x": ({"images": x}, "unexpected array 'images' (expected x, optional y and x_calib)"),
        "only_y": ({"y": np.zeros(6, np.int64)},
                   "has no array 'x' (arrays found: 'y'; expected x, optional y and x_calib)"),
    }[case]
    return npz(tmp_path, **arrays), message


@pytest.mark.parametrize("case", ["calib_shape", "y_length", "y_rank", "y_float", "y_range", "y_negative", "empty",
                                  "bool", "complex", "strings", "no_x", "only_y"])
def test_bad_arrays_are_one_data_error(net, tmp_path, capsys, case):
    data, message = data_case(tmp_path, case)
    line = cli_error(capsys, "run", "--model", f"{net}:Net", "--data", str(data), "--out", str(tmp_path / "o"))
    assert line == f"error: DataError: --data {data}: {message}"
    assert not (tmp_path / "o").exists()


def test_labels_need_a_vector_of_class_scores(net, tmp_path):
    data = npz(tmp_path, x=X, y=np.zeros(6, np.int64))
    src = net.read_text() + "\n\nclass Map(nn.Module):\n    def forward(self, x):\n        return x * 1.0\n"
    net.write_text(src)
    with pytest.raises(DataError) as info:
        load_workload(f"{net}:Map", str(data))
    assert str(info.value) == (f"--data {data}: array 'y' holds class labels, but the model's output per sample has "
                               f"shape (1, 8, 8), not a vector of class scores")


# ---- NaN / inf ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["x", "x_calib"])
def test_non_finite_data_is_refused_with_count_and_first_sample(net, tmp_path, capsys, key):
    bad = X.copy()
    bad[4, 0, 1, 1] = np.nan
    bad[5, 0, 2, 2] = np.inf
    bad[4, 0, 3, 3] = -np.inf
    arrays = {"x": X, key: bad}
    data = npz(tmp_path, **arrays)
    line = cli_error(capsys, "run", "--model", f"{net}:Net", "--data", str(data), "--out", str(tmp_path / "o"))
    assert line == f"error: DataError: --data {data}: array '{key}': 3 NaN/inf values (first in sample 4)"


def test_quantize_api_refuses_non_finite_calibration():
    bad = np.tile(X, (2, 1, 1, 1))
    bad[5, 0, 0, 0] = np.nan
    bad[7, 0, 4, 4] = np.inf
    bad[9, 0, 1, 0] = np.nan
    with pytest.raises(DataError) as info:
        quantize(Small(), bad)
    assert str(info.value) == "calibration input 0: 3 NaN/inf values (first in sample 5)"


def test_float64_values_beyond_float32_are_refused_not_turned_into_inf():
    big = np.tile(X, (2, 1, 1, 1)).astype(np.float64)
    big[3, 0, 2, 2] = 1e300
    with pytest.raises(DataError) as info:
        quantize(Small(), big)
    assert str(info.value) == "calibration input 0: 1 NaN/inf values (first in sample 3)"


@pytest.mark.parametrize("data,message", [
    (np.zeros((0, 1, 8, 8), np.float32), "calibration input 0: 0 samples (shape (0, 1, 8, 8))"),
    (np.float32(1.0), "calibration input 0: a scalar, expected a batch of samples (N first)"),
    (np.zeros((2, 1, 8, 8), bool), "calibration input 0: dtype bool, expected numbers (integers or floats)"),
    (np.zeros((2, 1, 8, 8), np.complex64),
     "calibration input 0: dtype complex64, expected numbers (integers or floats)"),
    ([X, X], "calibration data: the model takes 1 input(s) (x), got 2 array(s)"),
])
def test_quantize_api_refuses_unusable_calibration(data, message):
    with pytest.raises(DataError) as info:
        quantize(Small(), data)
    assert str(info.value) == message


def test_quantize_api_wrong_shape_is_one_data_error():
    with pytest.raises(DataError) as info:
        quantize(Small(), RNG.random((4, 1, 6, 6)).astype(np.float32))
    assert str(info.value) == ("calibration data: the model fails on sample 0 (per-sample shape (1, 6, 6)): "
                               "RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x72 and 128x4)")


class InfWeight(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 4))
        with torch.no_grad():
            self.body[2].weight[1, 3] = float("inf")

    def forward(self, x):
        return self.body(torch.flatten(x, 1))


class ZeroVarianceNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(64, eps=0.0)
        self.fc = nn.Linear(64, 4)

    def forward(self, x):
        return self.fc(self.norm(torch.flatten(x, 1)))


def test_model_producing_nan_from_finite_data_names_the_module():
    torch.manual_seed(0)
    with pytest.raises(QuantizationError) as info:
        quantize(InfWeight(), X)
    line = next(i for i, text in enumerate(open(__file__), 1) if "return self.body(torch.flatten(x, 1))" in text)
    assert str(info.value) == (f"calibration: module 'body.2' (torch.nn.modules.linear.Linear at {__file__}:{line}) "
                               f"produced 6 NaN/inf values (first in sample 0); no quantization scale can represent "
                               f"them (check its weights and the operations it computes)")


def test_non_finite_value_in_a_later_batch_names_its_sample():
    calib = RNG.random((70, 1, 8, 8)).astype(np.float32)
    calib[66] = 0.25  # a constant sample: LayerNorm without eps divides 0 by 0
    with pytest.raises(QuantizationError) as info:
        quantize(ZeroVarianceNorm(), calib)
    assert str(info.value).startswith("calibration: module 'norm' (torch.nn.modules.normalization.LayerNorm at ")
    assert "produced 64 NaN/inf values (first in sample 66); no quantization scale" in str(info.value)


def test_observer_refuses_nan():
    obs = Observer("minmax", 99.9, name="module 'fc'")
    obs.update(np.ones((3, 2), np.float32))
    with pytest.raises(QuantizationError) as info:
        obs.update(np.array([[1.0, 2.0], [np.nan, 0.0]], np.float32), first_sample=3)
    assert str(info.value).startswith("calibration: module 'fc' produced 1 NaN/inf values (first in sample 4)")
    assert obs.range(8, False) == (0.0, 1.0)  # the refused batch left no trace


def test_non_finite_model_output_through_the_cli(tmp_path, capsys):
    path = tmp_path / "inf.py"
    path.write_text("import torch\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(64, 4)\n"
                    "        with torch.no_grad():\n            self.fc.weight.fill_(float('inf'))\n\n"
                    "    def forward(self, x):\n        return self.fc(torch.flatten(x, 1))\n")
    data = npz(tmp_path, x=X)
    line = cli_error(capsys, "run", "--model", f"{path}:Net", "--data", str(data), "--out", str(tmp_path / "o"))
    assert line == (f"error: QuantizationError: calibration: module 'fc' (torch.nn.modules.linear.Linear at "
                    f"{path}:13) produced 24 NaN/inf values (first in sample 0); no quantization scale can "
                    f"represent them (check its weights and the operations it computes)")


# ---- the .npz file itself ---------------------------------------------------------------------------------------

def npy_member(shape_text: str, payload: bytes = b"") -> bytes:
    header = ("{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % shape_text).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def test_huge_declared_array_is_refused_before_allocation(net, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("INTONLY_MAX_DATA_BYTES", raising=False)
    data = tmp_path / "huge.npz"
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("x.npy", npy_member("(99999999999,)"))
    line = cli_error(capsys, "run", "--model", f"{net}:Net", "--data", str(data), "--out", str(tmp_path / "o"))
    assert line == (f"error: DataError: --data {data}: array 'x' declares float32[99999999999] = "
                    f"399,999,999,996 bytes, over what is left of the limit of 2,147,483,648 for all arrays (raise the limit with "
                    f"INTONLY_MAX_DATA_BYTES=<n> if the file is trusted)")


def test_pickled_object_array_is_refused(net, tmp_path):
    data = tmp_path / "obj.npz"
    np.savez(data, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError) as info:
        load_workload(f"{net}:Net", str(data))
    assert str(info.value) == (f"--data {data}: array 'x': .npy dtype '|O' is not a plain number type (one of int8, int16, "
                               f"int32, int64, uint8, uint16, uint32, float16, float32, float64, bool)")


def test_truncated_and_bit_flipped_files_are_one_data_error(net, tmp_path):
    good = npz(tmp_path, "good.npz", x=X)
    raw = good.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError) as info:
        load_workload(f"{net}:Net", str(cut))
    assert str(info.value).startswith(f"--data {cut}: not an .npz file (truncated or corrupt: ")
    flipped = tmp_path / "flipped.npz"
    with zipfile.ZipFile(good) as zf:
        offset = zf.getinfo("x.npy").header_offset + 30 + len("x.npy") + 200  # inside the stored array data
    damaged = bytearray(raw)
    damaged[offset] ^= 0x10
    flipped.write_bytes(bytes(damaged))
    with pytest.raises(DataError) as info:
        load_workload(f"{net}:Net", str(flipped))
    assert str(info.value) == (f"--data {flipped}: array 'x': the member is damaged and cannot be read (BadZipFile: "
                               f"Bad CRC-32 for file 'x.npy')")


def test_data_that_is_a_directory_or_fifo_is_refused_without_hanging(net, tmp_path, capsys):
    folder = tmp_path / "data.npz"
    folder.mkdir()
    line = cli_error(capsys, "run", "--model", f"{net}:Net", "--data", str(folder), "--out", str(tmp_path / "o"))
    assert line == f"error: DataError: --data {folder}: the .npz file is a directory, not a regular file"
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "intonly.cli", "run", "--model", f"{net}:Net", "--data", str(fifo),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: DataError: --data {fifo}: the .npz file is a FIFO, not a regular file"


# ---- simulate ---------------------------------------------------------------------------------------------------

def test_simulate_refuses_unusable_float_inputs(small_int_model):
    model = small_int_model
    bad = X.copy()
    bad[2, 0, 0, 0] = np.inf
    cases = [
        (bad, "simulate: input 0 ('x'): 1 NaN/inf values (first in sample 2)"),
        (X[:, :, :4], "simulate: input 0 ('x'): shape (6, 1, 4, 8), expected (N, 1, 8, 8) (batch first, then the "
                      "per-sample shape (1, 8, 8))"),
        (X[0], "simulate: input 0 ('x'): shape (1, 8, 8), expected (N, 1, 8, 8) (batch first, then the per-sample "
               "shape (1, 8, 8))"),
        (X.reshape(6, 64), "simulate: input 0 ('x'): shape (6, 64), expected (N, 1, 8, 8) (batch first, then the "
                           "per-sample shape (1, 8, 8))"),
        (X > 0.5, "simulate: input 0 ('x'): dtype bool, expected numbers (integers or floats)"),
        (X.astype(np.complex64), "simulate: input 0 ('x'): dtype complex64, expected numbers (integers or floats)"),
    ]
    for x, message in cases:
        with pytest.raises(DataError) as info:
            simulate(model, x)
        assert str(info.value) == message


def test_simulate_refuses_out_of_range_quantized_inputs(small_int_model):
    model = small_int_model
    good = simulate(model, X).int_inputs[0]
    assert good.shape == (6, 8, 8, 1)
    np.testing.assert_array_equal(simulate(model, good, quantized=True).int_outputs[0],
                                  simulate(model, X).int_outputs[0])
    wide = good.astype(np.int32)
    wide[3, 0, 0, 0] = 300
    cases = [
        (wide, "simulate(quantized=True): input 0 ('x_q'): values must lie in [-128, 127] (8-bit int8), got "
               f"[{wide.min()}, 300]"),
        (good.astype(np.float32), "simulate(quantized=True): input 0 ('x_q'): dtype float32, expected integers (the "
                                  "quantize node's output)"),
        (good.transpose(0, 3, 1, 2), "simulate(quantized=True): input 0 ('x_q'): shape (6, 1, 8, 8), expected "
                                     "(N, 8, 8, 1) (batch first, then the per-sample shape (8, 8, 1))"),
    ]
    for x, message in cases:
        with pytest.raises(DataError) as info:
            simulate(model, x, quantized=True)
        assert str(info.value) == message
