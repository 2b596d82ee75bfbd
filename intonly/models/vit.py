"""A plain ViT / DeiT with timm's parameter names, written for torch.fx capture by the integer lowering.

Parameter names equal timm's ``VisionTransformer`` (class token, no distillation token, ``global_pool="token"``),
so a timm state_dict loads with ``strict=True``::

    cls_token (1, 1, D), pos_embed (1, N + 1, D), patch_embed.proj.{weight,bias},
    blocks.{i}.norm1.{weight,bias}, blocks.{i}.attn.qkv.{weight,bias}, blocks.{i}.attn.proj.{weight,bias},
    blocks.{i}.norm2.{weight,bias}, blocks.{i}.mlp.fc1.{weight,bias}, blocks.{i}.mlp.fc2.{weight,bias},
    norm.{weight,bias}, head.{weight,bias}

Structure as the lowering sees it (a tracer that keeps modules with an ``intonly_kind`` class attribute and
standard ``torch.nn`` modules as leaves): ``PatchEmbed`` (leaf, kind ``patch_embed``), ``cat`` of the expanded
class token, ``add`` of the position embedding, per block ``LayerNorm -> Attention (leaf, kind attention) -> add``
and ``LayerNorm -> Linear -> GELU (exact erf) -> Linear -> add``, the final ``LayerNorm``, the class-token
``getitem`` ``x[:, 0]`` and the ``head`` Linear. No dropout or drop-path modules (inference only).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from intonly.models.attention import MultiHeadAttentionBase

LN_EPS = 1e-6  # timm's ViT LayerNorm epsilon


class PatchEmbed(nn.Module):
    """Non-overlapping patches: ``Conv2d(k = s = patch)`` then (B, D, h, w) -> (B, h*w, D)."""

    intonly_kind = "patch_embed"

    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"image size {img_size} is not divisible by patch size {patch_size}")
        self.img_size = img_size
        self.patch_size = patch_size
        self.grid_size = img_size // patch_size
        self.num_patches = self.grid_size ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(MultiHeadAttentionBase):
    """timm's fused-qkv attention: ``qkv`` output features are ordered q | k | v, each heads x head_dim."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__(dim, num_heads)
        self.dim = dim
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def qkv_params(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        d = self.dim
        w, b = self.qkv.weight, self.qkv.bias
        return [(w[i * d:(i + 1) * d], None if b is None else b[i * d:(i + 1) * d]) for i in range(3)]


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf) GELU, as timm
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class VisionTransformer(nn.Module):
    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, num_classes: int = 1000,
                 embed_dim: int = 192, depth: int = 12, num_heads: int = 3, mlp_ratio: float = 4.0):
        super().__init__()
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        x = self.blocks(x)
        x = self.norm(x)
        return self.head(x[:, 0])


def init_weights(model: VisionTransformer) -> None:
    """timm's default training init: trunc-normal(0.02) Linear weights and position embedding, cls token
    normal(1e-6), zero Linear biases, LayerNorm (1, 0); the patch conv keeps PyTorch's default init."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    nn.init.trunc_normal_(model.pos_embed, std=0.02)
    nn.init.normal_(model.cls_token, std=1e-6)


def init_synthetic(model: VisionTransformer, seed: int = 0) -> VisionTransformer:
    """Deterministic, realistic non-trivial random weights (no zeros, no exact ones) for tests and benchmarks
    of the lowering when pretrained weights are absent.

    timm's training init (trunc-normal std 0.02) would make every activation nearly linear: with D = 192 the
    Q·Kᵀ scores have std ~0.07 (attention exactly uniform), fc1 outputs std ~0.3 (GELU ~ linear) and the
    attention branch adds ~3 % to the residual. Trained ViTs look different, so Linear and conv weights are
    trunc-normal (at 2 sigma) with std ``gain / sqrt(fan_in)``: gain 1.5 for ``qkv`` (scores std ~2, peaked
    softmax rows), 1 elsewhere (fc1 pre-activations std ~1, a residual stream that grows over the blocks).
    Biases ~ N(0, 0.02), LayerNorm weight ~ 1 + N(0, 0.1), LayerNorm bias ~ N(0, 0.05), pos_embed and
    cls_token trunc-normal(0.02) as timm."""
    gen = torch.Generator().manual_seed(seed)

    def normal(t: torch.Tensor, std: float, mean: float = 0.0, trunc: bool = False) -> None:
        v = torch.randn(t.shape, generator=gen)
        if trunc:
            v = v.clamp(-2.0, 2.0)
        with torch.no_grad():
            t.copy_(mean + std * v)

    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            gain = 1.5 if name.endswith("attn.qkv") else 1.0
            normal(m.weight, gain / math.sqrt(m.weight[0].numel()), trunc=True)
            if m.bias is not None:
                normal(m.bias, 0.02)
        elif isinstance(m, nn.LayerNorm):
            normal(m.weight, 0.1, mean=1.0)
            normal(m.bias, 0.05)
    normal(model.pos_embed, 0.02, trunc=True)
    normal(model.cls_token, 0.02, trunc=True)
    return model


def vit_digits() -> VisionTransformer:
    """A small ViT for scikit-learn's 1 x 8 x 8 digits: patch 2 (16 patches + cls = 17 tokens), D = 64,
    depth 4, 4 heads (head_dim 16), MLP ratio 2, 10 classes."""
    return VisionTransformer(img_size=8, patch_size=2, in_chans=1, num_classes=10, embed_dim=64, depth=4,
                             num_heads=4, mlp_ratio=2.0)


def deit_tiny(num_classes: int = 1000) -> VisionTransformer:
    """DeiT-Tiny geometry (timm ``deit_tiny_patch16_224``): 224 x 224 x 3, patch 16 (196 patches + cls = 197
    tokens), D = 192, depth 12, 3 heads (head_dim 64), MLP ratio 4."""
    return VisionTransformer(img_size=224, patch_size=16, in_chans=3, num_classes=num_classes, embed_dim=192,
                             depth=12, num_heads=3, mlp_ratio=4.0)
