"""The float ViT (intonly.models.vit) and its digits demo: timm parameter names, shapes, shipped accuracy,
torch.fx capture with the lowering's leaf rule, and the attention protocol."""

import operator

import pytest
import torch
import torch.fx as fx
import torch.nn as nn

from intonly.demos import vit_digits as demo
from intonly.demos.digits import load_split
from intonly.models.attention import MultiHeadAttentionBase
from intonly.models.vit import Attention, PatchEmbed, deit_tiny, init_synthetic, vit_digits

# Measured FP32 test accuracy of the shipped intonly/assets/vit_digits.pt on the 540-image split.
SHIPPED_ACCURACY = 98.89


class LeafTracer(fx.Tracer):
    """The lowering's leaf rule: modules whose class has ``intonly_kind``, and standard torch.nn modules."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return hasattr(type(m), "intonly_kind") or super().is_leaf_module(m, qualname)


def timm_vit_keys(depth: int) -> list[str]:
    """State-dict keys of timm's ``VisionTransformer`` (class token, global_pool="token", no qk-norm,
    no layer scale, no fc_norm: the deit_tiny_patch16_224 / vit_*_patch16_224 checkpoints)."""
    keys = ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    for i in range(depth):
        for sub in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            keys += [f"blocks.{i}.{sub}.weight", f"blocks.{i}.{sub}.bias"]
    return keys + ["norm.weight", "norm.bias", "head.weight", "head.bias"]


DEIT_TINY_SHAPES = {
    "cls_token": (1, 1, 192), "pos_embed": (1, 197, 192),
    "patch_embed.proj.weight": (192, 3, 16, 16), "patch_embed.proj.bias": (192,),
    "norm1.weight": (192,), "norm1.bias": (192,), "norm2.weight": (192,), "norm2.bias": (192,),
    "attn.qkv.weight": (576, 192), "attn.qkv.bias": (576,), "attn.proj.weight": (192, 192), "attn.proj.bias": (192,),
    "mlp.fc1.weight": (768, 192), "mlp.fc1.bias": (768,), "mlp.fc2.weight": (192, 768), "mlp.fc2.bias": (192,),
    "norm.weight": (192,), "norm.bias": (192,), "head.weight": (1000, 192), "head.bias": (1000,),
}


@pytest.fixture(scope="module")
def synthetic_deit():
    return init_synthetic(deit_tiny(), seed=0).eval()


def test_timm_state_dict_loads_strict():
    keys = timm_vit_keys(12)
    assert len(keys) == 152
    gen = torch.Generator().manual_seed(0)
    state = {}
    for k in keys:
        short = k.split(".", 2)[2] if k.startswith("blocks.") else k
        state[k] = torch.randn(DEIT_TINY_SHAPES[short], generator=gen)
    model = deit_tiny()
    assert sorted(model.state_dict()) == sorted(keys)
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.blocks[11].attn.qkv.weight, state["blocks.11.attn.qkv.weight"])
    assert all(m.eps == 1e-6 for m in model.modules() if isinstance(m, nn.LayerNorm))
    assert sorted(vit_digits().state_dict()) == sorted(timm_vit_keys(4))


def test_deit_tiny_forward_shape(synthetic_deit):
    model = synthetic_deit
    with torch.no_grad():
        y = model(torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1)))
    assert y.shape == (2, 1000)
    assert torch.isfinite(y).all() and y.std() > 0.1  # synthetic weights are not degenerate


def test_synthetic_attention_is_not_uniform(synthetic_deit):
    model = synthetic_deit
    x = torch.randn(1, 197, 192, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        probs = model.blocks[0].attn.intermediates(model.blocks[0].norm1(x))["probs"]
    assert probs.max(-1).values.mean() > 5.0 / 197


def test_shipped_vit_digits_accuracy():
    _, _, x_te, y_te = load_split()
    assert len(y_te) == 540
    acc = demo.accuracy(demo.load_model(), x_te, y_te)
    assert acc >= SHIPPED_ACCURACY - 0.5, acc


def test_fx_trace_with_leaf_tracer(synthetic_deit):
    digits = init_synthetic(vit_digits(), seed=0).eval()
    for model, x in ((digits, torch.randn(3, 1, 8, 8)), (synthetic_deit, torch.randn(1, 3, 224, 224))):
        graph = LeafTracer().trace(model)
        gm = fx.GraphModule(model, graph)
        with torch.no_grad():
            torch.testing.assert_close(gm(x), model(x), rtol=0, atol=0)
        nodes = list(graph.nodes)
        ops = [(n.op, n.target) for n in nodes]
        assert ("get_attr", "cls_token") in ops and ("get_attr", "pos_embed") in ops
        assert ("call_method", "expand") in ops
        assert ("call_function", torch.cat) in ops
        modules = dict(model.named_modules())
        kinds = [type(modules[n.target]) for n in nodes if n.op == "call_module"]
        depth = len(model.blocks)
        assert kinds.count(PatchEmbed) == 1 and kinds.count(Attention) == depth
        assert kinds.count(nn.LayerNorm) == 2 * depth + 1
        assert kinds.count(nn.GELU) == depth and kinds.count(nn.Linear) == 2 * depth + 1
        assert sum(n.op == "call_function" and n.target is operator.add for n in nodes) == 2 * depth + 1
        last = [n for n in nodes if n.op == "call_module"][-1]
        assert last.target == "head"
        sel = last.args[0]
        assert sel.op == "call_function" and sel.args[1] == (slice(None), 0)


def test_attention_protocol():
    torch.manual_seed(0)
    model = init_synthetic(vit_digits(), seed=3).eval()
    attn = model.blocks[1].attn
    assert isinstance(attn, MultiHeadAttentionBase) and attn.intonly_kind == "attention"
    assert (attn.num_heads, attn.head_dim) == (4, 16) and attn.scale == 16 ** -0.5
    x = torch.randn(2, 17, 64)
    with torch.no_grad():
        inter = attn.intermediates(x)
        out = attn(x)
        torch.testing.assert_close(inter["context"] @ attn.proj.weight.T + attn.proj.bias, out)
        # qkv_params slices follow timm's fused layout: qkv(x).reshape(B, N, 3, H, dh).permute(2, 0, 3, 1, 4)
        q, k, v = attn.qkv(x).reshape(2, 17, 3, 4, 16).permute(2, 0, 3, 1, 4)
        for name, ref in (("q", q), ("k", k), ("v", v)):
            torch.testing.assert_close(inter[name], ref)
        ref = nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 17, 64)
        torch.testing.assert_close(out, attn.proj(ref), rtol=1e-5, atol=1e-5)
    assert inter["scores"].shape == inter["probs"].shape == (2, 4, 17, 17)
