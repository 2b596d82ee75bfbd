"""TFLite import (quantize/tflite) on the five MLPerf Tiny models: hwsim equals the TFLM interpreter on every
tensor of 100 random inputs, and the generated C equals hwsim on the host, on Cortex-M4 and on Cortex-M55 (QEMU).
Malformed and unsupported files each end in one typed error (exit code 2, nothing written)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

from conftest import require_tool
from intonly import cli
from intonly.api import build_and_run, build_for
from intonly.hwsim import simulate
from intonly.imported import compare_with_tflm
from intonly.quantize.errors import ModelFileError, UnsupportedOpError
from intonly.quantize.tflite import import_tflite

MLPERF = Path(str(resources.files("intonly") / "assets" / "mlperf-tiny"))
MODELS = ["ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "str_ww_ref_model", "vww_96_int8"]
MACS = {"ad01_int8": 264_192, "kws_ref_model": 2_656_768, "pretrainedResnet_quant": 12_501_632,
        "str_ww_ref_model": 826_368, "vww_96_int8": 7_489_664}   # as the MLPerf Tiny model table states


def random_codes(model, n: int, seed: int) -> list[np.ndarray]:
    """``n`` uniform random codes per input, then one sample of only the extremes -128 / 127."""
    rng = np.random.default_rng(seed)
    out = []
    for node in (m for m in model.nodes if m.op == "quantize"):
        t = model.tensors[node.outputs[0]]
        lo, hi = t.qrange()
        x = rng.integers(lo, hi, size=(n, *t.shape), endpoint=True)
        out.append(np.concatenate([x, rng.choice([lo, hi], size=(1, *t.shape))]).astype(t.dtype))
    return out


@pytest.mark.parametrize("name", MODELS)
def test_every_tensor_equals_tflm_on_100_random_inputs(name):
    path = MLPERF / f"{name}.tflite"
    imported = import_tflite(path)
    model = imported.model
    assert sum(model.node_macs(n) for n in model.nodes) == MACS[name]
    x = random_codes(model, 100, seed=MODELS.index(name))
    sim = simulate(model, x, quantized=True, keep_values=True)
    oracle = compare_with_tflm(path, imported, x, sim.values)
    assert oracle.samples == 101 and oracle.tensors == len(imported.tensor_names) >= 11
    assert oracle.mismatched == dict.fromkeys(imported.tensor_names.values(), 0)
    reference = simulate(model, [a[:8] for a in x], quantized=True, fast=False)  # the scalar kernels agree too
    np.testing.assert_array_equal(reference.int_outputs[0], sim.int_outputs[0][:8])


def test_generated_c_equals_hwsim_on_host_cortex_m4_and_cortex_m55(tmp_path):
    for tool, how in (("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"),
                      ("qemu-system-arm", "apt-get install qemu-system-arm")):
        require_tool(tool, f"{how} (or: bash scripts/setup.sh as root)")
    for name in MODELS:
        model = import_tflite(MLPERF / f"{name}.tflite").model
        x = random_codes(model, 3, seed=7)
        want = simulate(model, x, quantized=True).int_outputs[0]
        _, (host,) = build_and_run(model, tmp_path / name / "host", x)
        np.testing.assert_array_equal(host, want, err_msg=f"{name}: host C")
        for target in ("cortex-m4", "cortex-m55"):
            built = build_for(model, target, tmp_path / name / target, run_inputs=x, timeout=120)
            assert built.rounding == "double"
            np.testing.assert_array_equal(built.outputs[0], want, err_msg=f"{name}: {target}")


def test_cli_run_writes_the_tflm_and_c_verdicts(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "--model", str(MLPERF / "kws_ref_model.tflite"), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bit_exact"] == {"tflm": True, "c_host": True}
    assert summary["samples"] == 128 and summary["tflm_tensors_compared"] == 14
    assert summary["macs_per_sample"] == MACS["kws_ref_model"]
    assert (out / "model.intonly").is_file() and json.loads((out / "oracle.json").read_text())["bit_exact"]


def test_cli_run_reads_float_data_at_the_input_scale(tmp_path):
    model = import_tflite(MLPERF / "ad01_int8.tflite").model
    t = model.tensors[model.nodes[0].outputs[0]]
    codes = random_codes(model, 5, seed=3)[0]
    np.savez(tmp_path / "x.npz", x=(codes.astype(np.float32) - t.zero_point) * np.float32(t.scale))
    out = tmp_path / "run"
    assert cli.main(["run", "--model", str(MLPERF / "ad01_int8.tflite"), "--data", str(tmp_path / "x.npz"),
                     "--out", str(out)]) == 0
    assert np.array_equal(np.load(out / "int_outputs.npy"), simulate(model, [codes], quantized=True).int_outputs[0])


def test_compare_inspect_estimate_and_build_take_a_tflite_file(tmp_path, capsys):
    path = str(MLPERF / "str_ww_ref_model.tflite")
    assert cli.main(["compare", "--model", path, "--json", str(tmp_path / "c.json")]) == 0
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["bit_exact"] and result["runtime"] == "tflite-micro" and result["tensors"] == 12
    assert cli.main(["inspect", path]) == 0
    assert "op10:SOFTMAX" in capsys.readouterr().out
    assert cli.main(["estimate", path, "--target", "cortex-m4", "--out", str(tmp_path / "est")]) == 0
    rows = json.loads((tmp_path / "est" / "estimate.json").read_text())
    assert rows["model"] == "str_ww_ref_model"
    assert cli.main(["build", path, "--target", "x86-64-host", "--out", str(tmp_path / "build")]) == 0


# ---- malformed and unsupported files --------------------------------------------------------------------------

def edited(tmp_path: Path, edit, name: str = "edited.tflite") -> Path:
    """kws_ref_model.tflite with ``edit(model_t)`` applied to its object form, serialized again."""
    data = (MLPERF / "kws_ref_model.tflite").read_bytes()
    model = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(data, 0))
    edit(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / name
    path.write_bytes(bytes(builder.Output()))
    return path


def set_buffer_offset(model):
    model.buffers[18].data, model.buffers[18].offset, model.buffers[18].size = None, 10**6, 2560


def drop_activation_quantization(model):
    model.subgraphs[0].tensors[22].quantization = None


def filter_scales_on_axis_3(model):
    q = model.subgraphs[0].tensors[17].quantization
    q.quantizedDimension = 3    # the filter is [64, 10, 4, 1]: 64 scales cannot lie on an axis of 1


def depthwise_scales_on_axis_0(model):
    t = model.subgraphs[0].tensors[5]   # depthwise filter [1, 3, 3, 64], its 64 scales put on axis 0 (size 1)
    t.quantization.quantizedDimension = 0


def buffer_index_out_of_range(model):
    model.subgraphs[0].tensors[17].buffer = 999


def opcode_index_out_of_range(model):
    model.subgraphs[0].operators[3].opcodeIndex = 77


def softmax_with_pool_options(model):
    model.subgraphs[0].operators[9].opcodeIndex = model.subgraphs[0].operators[12].opcodeIndex


def fully_connected_without_weights(model):
    op = model.subgraphs[0].operators[11]
    op.inputs = op.inputs[:1]


def activation_out_of_range(model):
    model.subgraphs[0].operators[1].builtinOptions.fusedActivationFunction = 76


def zero_stride(model):
    model.subgraphs[0].operators[0].builtinOptions.strideH = 0


def tensor_index_out_of_range(model):
    op = model.subgraphs[0].operators[2]
    op.inputs = [500, *op.inputs[1:]]


MALFORMED = {
    "truncated": (lambda tmp: _write(tmp, (MLPERF / "kws_ref_model.tflite").read_bytes()[:20000]),
                  r"the flatbuffer is damaged"),
    "wrong magic": (lambda tmp: _write(tmp, b"\x1c\x00\x00\x00TFL2" + (MLPERF / "kws_ref_model.tflite")
                                       .read_bytes()[8:]),
                    r"not a TensorFlow Lite flatbuffer \(file identifier b'TFL2', expected b'TFL3'\)"),
    "empty": (lambda tmp: _write(tmp, b""), r"not a TensorFlow Lite flatbuffer"),
    "bad buffer offset": (lambda tmp: edited(tmp, set_buffer_offset),
                          r"tensor 17 'functional_1/conv2d/Conv2D': buffer at offset 1000000 of 2560 bytes ends "
                          r"beyond the file"),
    "buffer index": (lambda tmp: edited(tmp, buffer_index_out_of_range),
                     r"tensor 17 'functional_1/conv2d/Conv2D': buffer index 999 outside the 37 buffers"),
    "opcode index": (lambda tmp: edited(tmp, opcode_index_out_of_range),
                     r"operator 3: opcode index 77 outside the \d+ operator codes"),
    "tensor index": (lambda tmp: edited(tmp, tensor_index_out_of_range),
                     r"operator 2 \(CONV_2D\): input tensor index 500 outside the 35 tensors"),
    "options of another builtin": (lambda tmp: edited(tmp, softmax_with_pool_options),
                                   r"operator 9 SOFTMAX: builtin options Pool2DOptionsT, expected SoftmaxOptions"),
    "an operator without its weights": (lambda tmp: edited(tmp, fully_connected_without_weights),
                                        r"operator 11 FULLY_CONNECTED: 1 inputs \[32\]; the builtin takes 2 to 3"),
    "an enum out of range": (lambda tmp: edited(tmp, activation_out_of_range),
                             r"operator 1 DEPTHWISE_CONV_2D: inconsistent operator data \(ValueError: "
                             r"fusedActivationFunction 76 is not one of \[0, 1, 2, 3, 4, 5\]"),
    "a zero stride": (lambda tmp: edited(tmp, zero_stride),
                      r"operator 0 CONV_2D: inconsistent operator data \(ValueError: strideH 0 must be at least 1"),
    "per-axis on a wrong axis": (lambda tmp: edited(tmp, filter_scales_on_axis_3),
                                 r"tensor 17 'functional_1/conv2d/Conv2D': 64 per-channel scales on axis 3, but the "
                                 r"shape is \[64, 10, 4, 1\]"),
    "per-axis on axis 0 of a depthwise filter": (lambda tmp: edited(tmp, depthwise_scales_on_axis_0),
                                                 r"64 per-channel scales on axis 0, but the shape is \[1, 3, 3, 64\]"),
}


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "broken.tflite"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_file_gets_one_model_file_error_and_exit_code_2(case, tmp_path, capsys):
    make, message = MALFORMED[case]
    path = make(tmp_path)
    with pytest.raises(ModelFileError, match=message):
        import_tflite(path)
    out = tmp_path / "out"
    assert cli.main(["run", "--model", str(path), "--out", str(out)]) == 2
    assert str(path) in capsys.readouterr().err
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_missing_activation_quantization_is_refused_with_the_operators_that_read_it(tmp_path):
    path = edited(tmp_path, drop_activation_quantization)
    with pytest.raises(UnsupportedOpError) as e:
        import_tflite(path)
    text = str(e.value)
    assert "operator 0 CONV_2D: tensor 22 'functional_1/activation/Relu" in text
    assert "has no quantization; activations need one scale and zero point" in text


def test_every_unsupported_builtin_is_listed_at_once_with_index_and_tensor_names(tmp_path):
    def swap(model):
        codes = {tfl.BuiltinOperator.AVERAGE_POOL_2D: tfl.BuiltinOperator.L2_POOL_2D,
                 tfl.BuiltinOperator.SOFTMAX: tfl.BuiltinOperator.LOG_SOFTMAX}
        for code in model.operatorCodes:
            old = max(code.builtinCode, code.deprecatedBuiltinCode)
            code.builtinCode = code.deprecatedBuiltinCode = codes.get(old, old)
    with pytest.raises(UnsupportedOpError) as e:
        import_tflite(edited(tmp_path, swap))
    assert [where for where, _ in e.value.ops] == ["operator 9 L2_POOL_2D", "operator 12 LOG_SOFTMAX"]
    assert e.value.ops[1][1] == ("builtin not supported (inputs 'functional_1/dense/BiasAdd' -> outputs "
                                 "'Identity')")


def test_a_mobilenet_v3_block_with_float_input_and_output_is_bit_exact(tmp_path):
    """hard-swish, squeeze-excite (MEAN, LOGISTIC gate, broadcast MUL), residual ADD, SOFTMAX, and the float
    boundary (QUANTIZE in, DEQUANTIZE out) as TFLite converters leave it."""
    from tflite_graphs import mobilenet_v3_block

    path = tmp_path / "mbv3.tflite"
    path.write_bytes(mobilenet_v3_block(seed=5))
    imported = import_tflite(path)
    assert imported.float_inputs == [True]
    ops = [n.op for n in imported.model.nodes]
    assert ops.count("lookup") == 3 and "mul" in ops and "tflite_softmax" in ops and ops[0] == "quantize"
    x = random_codes(imported.model, 60, seed=11)
    sim = simulate(imported.model, x, quantized=True, keep_values=True)
    oracle = compare_with_tflm(path, imported, x, sim.values)
    assert oracle.bit_exact, oracle.mismatched
    assert oracle.tensors == len(imported.tensor_names) == 15   # every integer tensor, QUANTIZE's output first
    _, (host,) = build_and_run(imported.model, tmp_path / "c", x)
    np.testing.assert_array_equal(host, sim.int_outputs[0])
    assert len(np.unique(sim.int_outputs[0])) > 20    # the probabilities are not saturated


def test_a_float_input_is_quantized_as_tflite_affinequantize_does(tmp_path):
    """TFLite's QUANTIZE divides in float32 and rounds half away from zero; the imported quantize node takes that
    form (intonly's own, float64 and half to even, differs at ties) and DEQUANTIZE's float equals TFLM's: 20 random
    int8 and int16 boundaries (QUANTIZE -> DEQUANTIZE), inputs at and around ties."""
    from test_onnx_import import near_ties
    from tflite_graphs import Graph
    from tflite_micro import runtime

    rng = np.random.default_rng(7)
    own_form_differs = 0
    for seed in range(20):
        wide = seed % 2 == 1
        scale = np.float32(10 ** rng.uniform(-3, -1) / (256 if wide else 1))
        g = Graph(seed)
        x_f = g.float_tensor((256,), "x")
        q = g.tensor((256,), scale, 0 if wide else int(rng.integers(-128, 128)))
        if wide:
            q.dtype = tfl.TensorType.INT16
        g.add_op(tfl.BuiltinOperator.QUANTIZE, [x_f], q)
        y_f = g.add_op(tfl.BuiltinOperator.DEQUANTIZE, [q], g.float_tensor((256,), "y"))
        data = g.build([x_f], [y_f])
        path = tmp_path / f"boundary{seed}.tflite"
        path.write_bytes(data)
        x = near_ties(scale, 64, seed=seed)
        interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 16)
        interp.set_input(x, 0)
        interp.invoke()
        theirs = np.array(interp.get_output(0))
        imported = import_tflite(path).model
        np.testing.assert_array_equal(simulate(imported, [x]).outputs[0].reshape(theirs.shape), theirs, str(seed))
        imported.nodes[0].attrs["form"] = 0
        own_form_differs += np.count_nonzero(simulate(imported, [x]).outputs[0].reshape(theirs.shape) != theirs)
    assert own_form_differs > 0
