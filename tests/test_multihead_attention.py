"""``nn.MultiheadAttention`` used for self-attention, as torchvision's ViT ``EncoderBlock`` writes it
(``x, _ = self.self_attention(x, x, x, need_weights=False)``), lowers like intonly's own ViT attention: the capture
rewrite computes what the module computes, the integer block is close to FP32, hwsim == host C == Cortex-M4 under
QEMU bit for bit, and other uses (cross-attention, masks, the attention weights) are refused with their reason."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import assert_c_equals_hwsim_on_host_and_cortex_m4, float_sqnr_db

from intonly import QuantConfig, quantize
from intonly.quantize.capture import capture
from intonly.quantize.errors import UnsupportedOpError


class EncoderBlock(nn.Module):
    """torchvision.models.vision_transformer.EncoderBlock's structure (pre-norm attention and MLP residuals)."""

    def __init__(self, hidden_dim=16, num_heads=4, mlp_dim=32):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(hidden_dim, num_heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(hidden_dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, hidden_dim))
        self.head = nn.Linear(hidden_dim, 5)

    def forward(self, input):
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = x + input
        y = self.mlp(self.ln_2(x))
        return self.head((x + y)[:, 0])


@pytest.fixture(scope="module")
def block():
    torch.manual_seed(0)
    net = EncoderBlock().eval()
    x = np.random.default_rng(0).normal(size=(32, 10, 16)).astype(np.float32)
    return net, quantize(net, x, QuantConfig.transformer()), x


def test_the_rewrite_computes_what_multihead_attention_computes(block):
    net, _, x = block
    gm = capture(net)
    assert not any(isinstance(m, nn.MultiheadAttention) for m in gm.modules())
    with torch.no_grad():
        np.testing.assert_allclose(gm(torch.from_numpy(x)).numpy(), net(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_multihead_attention_lowers_to_integer_attention_close_to_fp32(block):
    net, model, x = block
    ops = [n.op for n in model.nodes]
    assert ops.count("matmul") == 2 and ops.count("shiftmax") == 1 and ops.count("dense") == 7
    assert float_sqnr_db(net, x, model) > 30


def test_multihead_attention_is_bit_exact_in_host_c_and_on_cortex_m4(block, tmp_path):
    _, model, x = block
    assert_c_equals_hwsim_on_host_and_cortex_m4(model, x[:3], tmp_path)


class Misused(nn.Module):
    def __init__(self):
        super().__init__()
        self.cross, self.weights = (nn.MultiheadAttention(8, 2, batch_first=True) for _ in range(2))
        self.seq_first = nn.MultiheadAttention(8, 2)

    def forward(self, x):
        a, _ = self.cross(x, x.flip(1), x)
        _, w = self.weights(x, x, x)
        b, _ = self.seq_first(x, x, x)
        return a, w, b


def test_other_uses_of_multihead_attention_are_refused_with_their_reason():
    with pytest.raises(UnsupportedOpError) as info:
        quantize(Misused().eval(), np.zeros((2, 5, 8), np.float32))
    assert [(p, d.rpartition(" at ")[0] or d) for p, d in info.value.ops] == [
        ("flip", "method Tensor.flip"),
        ("cross", "MultiheadAttention with different query, key and value (only self-attention, mha(x, x, x))"),
        ("weights", "MultiheadAttention with its attention weights used (only the output, mha(x, x, x)[0])"),
        ("seq_first", "MultiheadAttention with batch_first=False (the batch must be the first axis: pass "
                      "batch_first=True)")]
