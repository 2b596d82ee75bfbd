"""ONNX import (quantize/onnx) of a PyTorch CNN exported with ``torch.onnx.export`` and statically quantized with
``onnxruntime.quantization.quantize_static`` (QDQ and QOperator forms; int8 and uint8 activations): every tensor
within 1 LSB of ONNX Runtime's, each differing element explained as a float32 tie (teacher-forced, layer by
layer), the generated C equal to hwsim, and broken or unsupported files refused with one typed error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from intonly import cli
from intonly.api import build_and_run
from intonly.hwsim import simulate
from intonly.hwsim.executor import LayerTrace, OpContext
from intonly.hwsim.ops import executor
from intonly.imported import compare_with_onnxruntime, onnxruntime_values
from intonly.quantize.errors import ModelFileError, UnsupportedOpError
from intonly.quantize.names import ROUNDING_IDS
from intonly.quantize.onnx import import_onnx

ort = pytest.importorskip("onnxruntime")
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static  # noqa: E402

SAMPLES = 48
TIE_DISTANCE = 1e-5   # relative: float32 scale products carry ~2^-22 of error, intonly's dyadic ones 2^-31


class Net(nn.Module):
    """conv, strided conv, depthwise conv, a residual add, max pooling, a global mean and a linear head."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.dw, self.pw = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 16, 1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        x = x + self.pw(torch.relu(self.dw(x)))
        return self.fc(torch.nn.functional.max_pool2d(x, 2).mean((2, 3)))


class Calibration(CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(1)
        self.batches = iter([{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(16)])

    def get_next(self):
        return next(self.batches, None)


FORMATS = {"qdq-int8": (QuantFormat.QDQ, QuantType.QInt8), "qoperator-int8": (QuantFormat.QOperator, QuantType.QInt8),
           "qdq-uint8": (QuantFormat.QDQ, QuantType.QUInt8)}


def build_models(folder, net=None, seed: int = 0) -> dict:
    """``net`` (default :class:`Net`) exported to ONNX and quantized in every form of :data:`FORMATS`; name -> path."""
    torch.manual_seed(seed)
    net = net or Net()
    float_path = folder / "cnn.onnx"
    torch.onnx.export(net.eval(), (torch.randn(1, 3, 16, 16),), str(float_path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"])
    paths = {}
    for name, (fmt, activations) in FORMATS.items():
        paths[name] = folder / f"cnn_{name}.onnx"
        quantize_static(str(float_path), str(paths[name]), Calibration(), quant_format=fmt,
                        activation_type=activations, weight_type=QuantType.QInt8, per_channel=True)
    return paths


class GatedNet(nn.Module):
    """Concat of a sigmoid and a hard-swish branch, average pooling, a squeeze-excite gate (Mul), LeakyReLU."""

    def __init__(self):
        super().__init__()
        self.stem, self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.cat([torch.sigmoid(self.a(x)), nn.functional.hardswish(self.b(x))], dim=1)
        x = nn.functional.avg_pool2d(x, 2)
        x = x * torch.sigmoid(x.mean((2, 3), keepdim=True))
        return self.fc(nn.functional.leaky_relu(x, 0.1).mean((2, 3)))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
def gated_models(tmp_path_factory):
    torch.manual_seed(1)
    return build_models(tmp_path_factory.mktemp("gated"), GatedNet(), seed=1)


def random_codes(model, n: int) -> list[np.ndarray]:
    t = model.tensors[model.nodes[0].outputs[0]]
    return [np.random.default_rng(5).integers(*t.qrange(), endpoint=True, size=(n, *t.shape)).astype(np.int8)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_tensor_within_one_lsb_of_onnxruntime_and_c_equal_to_hwsim(fmt, models, tmp_path):
    imported = import_onnx(models[fmt])
    ops = [n.op for n in imported.model.nodes]
    assert ops.count("conv2d") == 5 and {"add", "maxpool", "dense"} <= set(ops)
    x = random_codes(imported.model, SAMPLES)
    sim = simulate(imported.model, x, quantized=True, keep_values=True)
    oracle = compare_with_onnxruntime(models[fmt], imported, x, sim.values)
    assert oracle.tensors >= 8 and oracle.max_abs_lsb <= 1 and oracle.within_tolerance
    assert sum(oracle.mismatched.values()) <= oracle.elements * 1e-3
    _, (host,) = build_and_run(imported.model, tmp_path / "c", x)
    np.testing.assert_array_equal(host, sim.int_outputs[0])


def exact_value(model, node, inputs) -> np.ndarray:
    """The real value of the node's output in output LSBs before rounding (zero point left out): the exact integer
    accumulator times the node's multiplier ``b / 2^c`` for conv2d/dense, the two rescaled operands for add."""
    a = node.attrs
    if node.op == "add":
        (xa, xb), (za, zb) = inputs, a["input_zps"]
        sa, sb = (np.float64(np.float32(model.tensors[t].scale)) for t in node.inputs)
        sy = np.float64(np.float32(model.tensors[node.outputs[0]].scale))
        return (xa.astype(np.float64) - za) * sa / sy + (xb.astype(np.float64) - zb) * sb / sy
    w = model.param(node, "weight").astype(np.float64)
    x = inputs[0].astype(np.float64) - a["input_zp"]
    if node.op == "dense":
        acc = x @ w.T
    else:
        pt, pl, pb, pr = a["padding"]
        xt = torch.nn.functional.pad(torch.from_numpy(x).permute(0, 3, 1, 2), (pl, pr, pt, pb))
        acc = torch.nn.functional.conv2d(xt, torch.from_numpy(w).permute(0, 3, 1, 2), stride=a["stride"],
                                         dilation=a["dilation"], groups=a["groups"]).permute(0, 2, 3, 1).numpy()
    acc = acc + model.param(node, "bias")
    return acc * model.param(node, "multiplier") / np.exp2(model.param(node, "shift").astype(np.float64))


@pytest.mark.parametrize("net", ["cnn", "gated"])
@pytest.mark.parametrize("fmt", ["qdq-int8", "qoperator-int8"])
def test_every_difference_from_onnxruntime_is_a_float32_tie(fmt, net, models, gated_models):
    """Layer by layer on ONNX Runtime's own inputs: each node's output equals ONNX Runtime's except at elements whose
    real value lies within float32 rounding (a relative 1e-5) of a rounding tie, and there by 1 LSB. (Average
    pooling meets exact ties often: ONNX Runtime's float32 average breaks them either way.)"""
    path = (models if net == "cnn" else gated_models)[fmt]
    imported = import_onnx(path)
    model = imported.model
    x = random_codes(model, SAMPLES)[0]
    theirs = onnxruntime_values(path, imported, [x])
    values = {name: v.astype(model.tensors[name].dtype) for name, v in theirs.items()}
    differing = explained = 0
    for node in model.integer_nodes():
        inputs = [values[t] for t in node.inputs]
        ctx = OpContext(ROUNDING_IDS[model.rounding], True, LayerTrace(node.name, node.op, node.outputs[0]), len(x))
        ours = executor(node.op).run(model, node, inputs, ctx)
        out = node.outputs[0]
        if out not in theirs:
            values[out] = ours
            continue
        diff = ours.astype(np.int64) - theirs[out]
        assert np.abs(diff).max(initial=0) <= 1, (node.name, int(np.abs(diff).max()))
        if np.any(diff):
            assert node.op in ("conv2d", "dense", "add"), node.name
            v = exact_value(model, node, inputs)[diff != 0]
            distance = np.abs(v - np.floor(v) - 0.5)
            assert np.all(distance <= TIE_DISTANCE * (1 + np.abs(v))), (node.name, distance.max())
            differing += int(np.count_nonzero(diff))
            explained += int(np.count_nonzero(distance <= TIE_DISTANCE * (1 + np.abs(v))))
    assert differing == explained


@pytest.mark.parametrize("fmt", ["qdq-int8", "qoperator-int8"])
def test_concat_pooling_gates_and_activations_end_to_end(fmt, gated_models, tmp_path):
    """Concat (requantized inputs), average pooling, Sigmoid / HardSwish / LeakyReLU tables and a Mul gate: every
    node within 1 LSB of ONNX Runtime on its own inputs, every tensor within 3 LSB free-running (1-LSB tie differences
    upstream grow through steep activations and the gate), and the C equal to hwsim."""
    imported = import_onnx(gated_models[fmt])
    ops = [n.op for n in imported.model.nodes]
    assert {"concat", "mul", "lookup", "requantize"} <= set(ops) and ops.count("lookup") == 4, ops
    x = random_codes(imported.model, SAMPLES)
    sim = simulate(imported.model, x, quantized=True, keep_values=True)
    oracle = compare_with_onnxruntime(gated_models[fmt], imported, x, sim.values)
    # QDQ: ~22 % of the 2x2 average pool's outputs are exact ties (quarters), which ONNX Runtime's float32 average
    # breaks either way; free-running, those differences run on through the gate
    assert oracle.max_abs_lsb <= 1 and oracle.within_tolerance and oracle.end_to_end_max_abs_lsb <= 3, \
        oracle.as_dict()
    _, (host,) = build_and_run(imported.model, tmp_path / "c", x)
    np.testing.assert_array_equal(host, sim.int_outputs[0])


def test_the_cli_reports_onnxruntime_beside_host_c(models, tmp_path):
    out = tmp_path / "run"
    assert cli.main(["run", "--model", str(models["qoperator-int8"]), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bit_exact"]["c_host"] is True and summary["runtime"] == "onnxruntime"
    assert set(summary["bit_exact"]) == {"onnxruntime", "c_host"} and summary["runtime_max_abs_lsb"] <= 1
    assert summary["runtime_within_tolerance"] is True


def test_a_broken_file_is_one_model_file_error(tmp_path, models, capsys):
    data = models["qdq-int8"].read_bytes()
    for name, content in (("truncated.onnx", data[: len(data) // 2]), ("text.onnx", b"not a model")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ModelFileError, match="not a valid ONNX model"):
            import_onnx(path)
        assert cli.main(["run", "--model", str(path), "--out", str(tmp_path / "out")]) == 2
        assert not (tmp_path / "out").exists()


class TwoBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.a(x), self.b(x)


def test_unsupported_nodes_are_listed_at_once_and_their_readers_not_again(tmp_path):
    import onnx

    torch.manual_seed(0)
    float_path = tmp_path / "two.onnx"
    torch.onnx.export(TwoBranches().eval(), (torch.randn(1, 4, 6, 6),), str(float_path), dynamo=False,
                      opset_version=17, input_names=["x"], output_names=["ya", "yb"])

    class Data(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": np.ones((1, 4, 6, 6), np.float32) * k} for k in range(4)])

        def get_next(self):
            return next(self.batches, None)

    quantized = tmp_path / "two_q.onnx"
    quantize_static(str(float_path), str(quantized), Data(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    model = onnx.load(str(quantized))
    for node in model.graph.node:
        if node.op_type == "Conv":
            node.op_type = "ConvTranspose"     # the same 1x1 weights are valid for it
    del model.graph.value_info[:]
    path = tmp_path / "edited.onnx"
    onnx.save(model, str(path))
    with pytest.raises(UnsupportedOpError) as e:
        import_onnx(path)
    assert [where.split(" ")[2] for where, _ in e.value.ops] == ["ConvTranspose", "ConvTranspose"]
    assert all("op not supported" in why for _, why in e.value.ops)   # and no graph output reported as missing




def near_ties(scale: np.float32, n: int, seed: int) -> np.ndarray:
    """float32 values at and one float32 step around ``(k + 1/2) · scale``: where the forms of quantize differ."""
    k = np.random.default_rng(seed).integers(-120, 120, n)
    ties = ((k + 0.5) * scale).astype(np.float32)
    return np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf)),
                           -ties])[None]


def test_a_float_input_is_quantized_as_onnx_quantizelinear_does(tmp_path):
    """QuantizeLinear divides in float32 and rounds half to even; intonly's own form (float64) differs near ties, so
    the imported quantize node must take ONNX's."""
    from onnx import TensorProto, helper, numpy_helper, save

    scale, zp = np.float32(0.037), np.int8(3)
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], "boundary",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])],
        [numpy_helper.from_array(np.array(scale), "s"), numpy_helper.from_array(np.array(zp), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "boundary.onnx"
    save(model, str(path))
    x = near_ties(scale, 64, seed=1)
    theirs = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    imported = import_onnx(path).model
    np.testing.assert_array_equal(simulate(imported, [x]).outputs[0].reshape(theirs.shape), theirs)
    imported.nodes[0].attrs["form"] = 0
    assert np.count_nonzero(simulate(imported, [x]).outputs[0].reshape(theirs.shape) != theirs) > 0
