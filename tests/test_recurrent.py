"""nn.LSTM and nn.GRU, as PyTorch users write them (batch_first, stacked layers, bidirectional, read as
``out[:, -1]``, ``out`` or ``h_n[-1]``), unrolled over their sequence into dense / lookup / mul / add ops: the
unrolled float graph computes what the module computes, the integer model is close to FP32 (SQNR reported), hwsim
== host C == Cortex-M4 under QEMU bit for bit, the weights are stored once for all steps, and what cannot be
unrolled is refused with its reason."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import QuantConfig, quantize
from intonly.quantize.capture import capture
from intonly.quantize.errors import UnsupportedOpError
from intonly.quantize.recurrent import unroll_recurrent


class LastStep(nn.Module):
    """A sequence classifier as the PyTorch tutorials write it: two stacked LSTM layers started from explicit
    zero states, the last step's output into a Linear."""

    def __init__(self):
        super().__init__()
        self.num_layers, self.hidden_size = 2, 12
        self.lstm = nn.LSTM(8, self.hidden_size, self.num_layers, batch_first=True)
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        h0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size).to(x.device)
        c0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size).to(x.device)
        out, _ = self.lstm(x, (h0, c0))
        return self.fc(out[:, -1, :])


class FinalState(nn.Module):
    """A bidirectional GRU read through ``h_n[-1]`` (the last layer's backward state) and its whole output."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 10, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(10, 3)

    def forward(self, x):
        out, h_n = self.gru(x)
        return self.fc(h_n[-1]), out


def _sequences(n=48):
    return np.random.default_rng(0).normal(size=(n, 6, 8)).astype(np.float32)


@pytest.fixture(scope="module", params=[LastStep, FinalState], ids=["lstm", "gru"])
def recurrent(request):
    torch.manual_seed(0)
    net = request.param().eval()
    x = _sequences()
    return net, quantize(net, x), x


def test_the_unrolled_graph_computes_what_the_module_computes(recurrent):
    net, _, x = recurrent
    gm = capture(net)
    unroll_recurrent(gm, [torch.from_numpy(x[:1])])
    assert not any(isinstance(m, (nn.LSTM, nn.GRU)) for m in gm.modules())
    with torch.no_grad():
        want, got = net(torch.from_numpy(x)), gm(torch.from_numpy(x))
    for a, b in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=2e-6)


def test_close_to_fp32_with_weights_stored_once(recurrent):
    net, model, x = recurrent
    ops = {n.op for n in model.nodes}
    assert {"dense", "lookup", "mul", "add"} <= ops
    dense = [n for n in model.nodes if n.op == "dense"]
    weights = {n.params["weight"] for n in dense}
    assert len(dense) > 4 * len(weights)   # 6 steps (5 with a hidden state) share each gate's projections
    rnn = net.lstm if isinstance(net, LastStep) else net.gru
    int8_weights = sum(p.numel() for name, p in rnn.named_parameters() if name.startswith("weight"))
    assert sum(model.constants[w].size for w in weights if not w.startswith("fc")) == int8_weights
    assert float_sqnr_db(net, x, model) > (35 if isinstance(net, LastStep) else 30)


def test_recurrent_models_are_bit_exact_in_host_c_and_on_cortex_m4(recurrent, tmp_path):
    _, model, x = recurrent
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:3], tmp_path)


def test_wider_activations_bring_the_lstm_closer_to_fp32():
    torch.manual_seed(0)
    net, x = LastStep().eval(), _sequences()
    int8 = float_sqnr_db(net, x, quantize(net, x))
    assert float_sqnr_db(net, x, quantize(net, x, QuantConfig(act_bits=12, wide_weights=True))) > int8 + 15


class Refused(nn.Module):
    def __init__(self):
        super().__init__()
        self.seq_first = nn.LSTM(4, 4)
        self.with_state = nn.GRU(4, 4, batch_first=True)

    def forward(self, x):
        a, _ = self.seq_first(x)
        b, _ = self.with_state(x, torch.ones(1, x.shape[0], 4))
        return a, b


def test_what_cannot_be_unrolled_is_refused_with_its_reason():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4)).astype(np.float32)
    with pytest.raises(UnsupportedOpError) as info:
        quantize(Refused().eval(), x)
    assert [(path, desc.rpartition(" at ")[0]) for path, desc in info.value.ops] == [
        ("seq_first", "LSTM with batch_first=False (the batch must be the first axis: pass batch_first=True)"),
        ("ones", "function torch.ones"),
        ("with_state", "GRU with an initial state argument other than zeros (only the zero initial state)")]
