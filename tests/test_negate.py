"""negate: hwsim and the generated C give the definition's bits on every input value; the validator refuses a
model whose difference could leave int32."""

import numpy as np
import torch
import pytest

from intonly.codegen.c.kernel_lib import run_node_c
from intonly.hwsim import simulate
from intonly.hwsim.work import op_work
from intonly.quantize.errors import ModelFileError
from intonly.quantize.ir import IntModel, Node, TensorInfo

from conftest import single_op_model

CASES = [  # (in bits, in zp, out bits, out zp, act_min, act_max)
    (8, 5, 8, -6, -128, 127),        # out_zp = -1 - in_zp: y = ~x, nothing clamps
    (8, -20, 8, 10, -128, 127),      # the ends of the range saturate
    (8, 0, 8, 0, 0, 127),            # a fused ReLU of -x
    (16, 1000, 16, -1001, -32768, 32767),
    (16, -300, 8, 3, -128, 127),     # int16 in, int8 out: most values clamp
]


@pytest.mark.parametrize("in_bits,in_zp,out_bits,out_zp,act_min,act_max", CASES)
def test_hwsim_and_c_give_the_definition_on_every_input(in_bits, in_zp, out_bits, out_zp, act_min, act_max, gcc):
    dtype = lambda bits: "int8" if bits <= 8 else "int16"  # noqa: E731
    x = TensorInfo("x", dtype(in_bits), (4, 8), 0.1, in_zp, in_bits)
    y = TensorInfo("y", dtype(out_bits), (4, 8), 0.1, out_zp, out_bits)
    model = single_op_model("negate", [x], y, {"input_zp": in_zp, "output_zp": out_zp, "act_min": act_min,
                                               "act_max": act_max})
    lo, hi = x.qrange()
    values = np.resize(np.arange(lo, hi + 1), ((hi - lo + 32) // 32, 4, 8)).astype(x.dtype)  # every value
    expected = np.clip(out_zp - (values.astype(np.int64) - in_zp), act_min, act_max)
    result = simulate(model, values, quantized=True)
    np.testing.assert_array_equal(result.int_outputs[0], expected)
    assert result.trace[0].clamp_events == np.count_nonzero(out_zp - (values.astype(np.int64) - in_zp) != expected)
    node = model.nodes[1]
    np.testing.assert_array_equal(run_node_c(model, node, [values]), expected)
    assert op_work(model, node) == {"int32_elementwise": 3 * 32}


def test_complement_when_the_output_zero_point_mirrors_the_input():
    x = TensorInfo("x", "int8", (256,), 0.1, 7, 8)
    y = TensorInfo("y", "int8", (256,), 0.1, -8, 8)
    model = single_op_model("negate", [x], y, {"input_zp": 7, "output_zp": -8, "act_min": -128, "act_max": 127})
    values = np.arange(-128, 128, dtype=np.int8)[None]
    np.testing.assert_array_equal(simulate(model, values, quantized=True).int_outputs[0], ~values)


def test_an_int32_input_that_could_overflow_is_refused():
    """An int32 tensor (here a stored constant) spans 2^31 around its zero point: -(x - input_zp) can leave int32."""
    t = {"u": TensorInfo("u", "float32", (4,)), "uq": TensorInfo("uq", "int8", (4,), 0.1, 0, 8),
         "c": TensorInfo("c", "int32", (4,), 0.1, 0, 32), "y": TensorInfo("y", "int8", (4,), 0.1, 0, 8),
         "out": TensorInfo("out", "float32", (4,))}
    nodes = [Node("uq", "quantize", ["u"], ["uq"], {"perm": [], "form": 0}), Node("c", "constant", [], ["c"], {}, {"value": "v"}),
             Node("neg", "negate", ["c"], ["y"], {"input_zp": -1, "output_zp": 0, "act_min": -128, "act_max": 127}),
             Node("out", "dequantize", ["y"], ["out"], {"perm": []})]
    model = IntModel("m", "half_up", ["u"], ["out"], t, nodes, {"v": np.zeros(4, np.int32)})
    with pytest.raises(ModelFileError, match=r"node 2 'neg' \(negate\): output_zp - \(x - input_zp\) can overflow "
                                             r"\(\|value\| <= 2147483648 > 2147483647\)"):
        model.validate()


class Differences(torch.nn.Module):
    """A model that negates three ways (unary minus, torch.neg, Tensor.neg), as PyTorch code writes it."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 8)

    def forward(self, x):
        h = self.fc(x)
        return torch.cat([-h, torch.neg(h).relu(), h.neg() + h], dim=1)


def test_pytorch_negation_lowers_exactly_and_the_c_agrees(gcc, tmp_path):
    from intonly import build_and_run, quantize
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    net = Differences().eval()
    model = quantize(net, x)
    negates = [n for n in model.nodes if n.op == "negate"]
    assert len(negates) == 3
    for n in negates:   # the complement: same scale and bits, output_zp = -1 - input_zp
        src, out = model.tensors[n.inputs[0]], model.tensors[n.outputs[0]]
        assert (out.scale, out.bits, out.zero_point) == (src.scale, src.bits, -1 - src.zero_point)
    sim = simulate(model, x)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    out_scale = model.tensors[model.nodes[-1].inputs[0]].scale
    assert np.abs(sim.outputs[0] - ref).max() < 3 * out_scale   # measured 1.8 LSB: the fc's and the add's rounding
    _, c_outputs = build_and_run(model, tmp_path / "c", sim.int_inputs)
    np.testing.assert_array_equal(c_outputs[0], sim.int_outputs[0])
