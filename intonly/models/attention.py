"""Multi-head self-attention with the interface the integer lowering recognises.

A module whose class sets ``intonly_kind = "attention"`` is captured as one leaf and lowered into integer
ops (three dense projections, Q·Kᵀ, a softmax family, P·V, the output projection). The lowering reads:

* ``num_heads``, ``head_dim``, ``scale`` (the float multiplier of Q·Kᵀ, usually ``head_dim ** -0.5``);
* ``qkv_params()`` -> ``[(weight, bias), (weight, bias), (weight, bias)]`` for Q, K, V (float tensors,
  weight (out, in), bias (out,) or None);
* ``output_projection()``: the output ``nn.Linear`` registered as the submodule ``proj``, or None when the
  projection lives outside the module (BERT);
* ``intermediates(x, mask=None)`` -> dict of float tensors for calibration: ``q``, ``k``, ``v`` (B, H, L, dh),
  ``scores`` (B, H, L, L, scaled; masked keys set to 0 so that padding never widens the calibrated range),
  ``probs`` (B, H, L, L), ``context`` (B, L, H*dh).

``forward(x, mask=None)`` takes tokens (B, L, D) and an optional key mask (B, L), 1 = attend, 0 = padding.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class MultiHeadAttentionBase(nn.Module):
    """The attention arithmetic shared by the ViT and BERT modules; subclasses own the parameters."""

    intonly_kind = "attention"

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5

    def qkv_params(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        raise NotImplementedError

    def output_projection(self) -> nn.Module | None:
        return self._modules.get("proj")

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, _ = x.shape
        heads = []
        for weight, bias in self.qkv_params():
            y = nn.functional.linear(x, weight, bias)
            heads.append(y.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2))
        return heads[0], heads[1], heads[2]

    def intermediates(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        q, k, v = self.project(x)
        scores = (q @ k.transpose(-2, -1)) * self.scale
        if mask is not None:
            padding = mask[:, None, None, :] == 0
            probs = scores.masked_fill(padding, float("-inf")).softmax(dim=-1)
            scores = scores.masked_fill(padding, 0.0)
        else:
            probs = scores.softmax(dim=-1)
        context = (probs @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        return {"q": q, "k": k, "v": v, "scores": scores, "probs": probs, "context": context}

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        context = self.intermediates(x, mask)["context"]
        proj = self.output_projection()
        return proj(context) if proj is not None else context


class TorchMultiheadAttention(MultiHeadAttentionBase):
    """``nn.MultiheadAttention`` used for self-attention (``mha(x, x, x)``, ``batch_first=True``, no masks or
    extra key/value biases), with its parameters, in this protocol: the capture rewrite
    (quantize/rewrite.py ``multihead_attentions``) puts one in its place so that it lowers like the ViT/BERT
    attention. Its ``forward(x)`` returns what the original's first output is: the attention output (B, L, D)."""

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__(mha.embed_dim, mha.num_heads)
        self.in_proj_weight, self.in_proj_bias = mha.in_proj_weight, mha.in_proj_bias
        self.proj = mha.out_proj

    def qkv_params(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        d, w, b = self.num_heads * self.head_dim, self.in_proj_weight, self.in_proj_bias
        return [(w[i * d:(i + 1) * d], None if b is None else b[i * d:(i + 1) * d]) for i in range(3)]
