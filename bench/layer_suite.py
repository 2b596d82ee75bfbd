"""A fixed suite of single-layer integer models at the shapes of real networks, for per-layer latency
measurements (``bench/host_profile.py``) and the validation of a latency cost model.

    from bench.layer_suite import suite    # or: python -m bench.layer_suite [NAME ...] (prints the cases)
    for case in suite():                   # or suite(["conv3x3_56x56x64_64", "softmax_deit_3x197x197"])
        case.name, case.int_model, case.x

Every case is a :class:`LayerCase`: a validated :class:`~quantize.ir.IntModel` ``quantize -> layer ->
dequantize`` (exactly one integer node, except where noted) and ``x``, the integer inputs the generated C
program reads (one batch-first array per model input, :data:`SAMPLES` samples by default). Everything is
deterministic: each case seeds torch with its own fixed seed before it creates its module (PyTorch's
default init), its calibration batch (``torch.randn``, :data:`CALIB_SAMPLES` samples) and its inputs
(``torch.randn``, quantized with the model's own input ``quantize`` node).

CNN layers go through the real quantization path, ``intonly.api.quantize(module, calib, QuantConfig())``
(int8 per-channel weights, asymmetric int8 activations, half_up rounding), on a one-layer module:

* ``conv3x3_*`` -- 3x3 conv, pad 1, + ReLU (folded into the conv's clamp): ResNet stages 56x56x64->64 and
  28x28x128->128, and MobileNet stems (stride 2, 3 input channels) 224x224x3->32 and 112x112x3->32
  (a 96/112-pixel-input stem). Sizes are named by the *input* HxWxC, then the output channels.
* ``dw3x3_*`` -- depthwise 3x3, pad 1, + ReLU6: MobileNetV2 56x56x144 and 28x28x192.
* ``pw1x1_*`` -- pointwise 1x1: MobileNetV2 expansion 56x56x24->144 (+ ReLU6) and projection
  14x14x384->64 (linear).
* ``dense_*`` -- fully connected 512->1000 (a classifier head) and 1024->256.
* ``add_*`` -- residual add of two int8 tensors (two model inputs), + ReLU folded: 56x56x64 (ResNet) and
  28x28x32 (MobileNetV2).
* ``avgpool_*`` -- 2x2 stride 2 on 56x56x64 and the global 7x7 pool of MobileNetV2 (7x7x1280).
* ``maxpool_*`` -- ResNet's stem pool 3x3 stride 2 pad 1 on 112x112x64, and 2x2 stride 2 on 56x56x64.

Transformer ops at DeiT-Tiny shapes (197 tokens, D = 192, 3 heads of 64, MLP 768) come from one real
quantization, ``intonly.api.quantize(vit, calib, QuantConfig.transformer())`` of a *one-block* DeiT-Tiny
(``intonly.models.vit.VisionTransformer(224, 16, depth=1, ...)`` with ``init_synthetic`` weights), so each
op has the widths, scales and constants the lowering gives it inside a real network (e.g. LayerNorm reads the
int16 residual stream, softmax writes int16). One node of that model is then wrapped as its own model by
:func:`isolate` (the node, its constants and tensor metadata unchanged; one ``quantize`` per input, one
``dequantize`` for the output), and its inputs are the integer values hwsim computed for them on the
case's random images:

* ``layernorm_deit_197x192`` -- ``blocks.0.norm1`` (int16 in).
* ``matmul_qk_deit_3x197x64`` -- ``blocks.0.attn.scores``: Q·Kᵀ per head -> 3x197x197.
* ``softmax_deit_3x197x197`` -- ``blocks.0.attn.softmax`` (Shiftmax over rows of 197).
* ``matmul_pv_deit_3x197x197`` -- ``blocks.0.attn.context``: P·V per head -> 3x197x64.
* ``gelu_deit_197x768`` -- ``blocks.0.mlp.act`` (ShiftGELU).
* ``dense_deit_fc1_197x192_768`` -- ``blocks.0.mlp.fc1``, a token-wise dense layer.

One run of any case takes well under a second of C time on a desktop core.
"""

from __future__ import annotations

import copy
import functools
import sys
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from intonly.hwsim.executor import simulate
from intonly.hwsim.ops.quantize import run as quantize_node
from intonly.quantize.config import QuantConfig
from intonly.quantize.ir import IntModel, Node, TensorInfo

SAMPLES = 2        # samples in each case's x
CALIB_SAMPLES = 8  # calibration batch


@dataclass
class LayerCase:
    """``x``: the integer model inputs (one batch-first array per input), as ``int_model``'s quantize nodes
    would produce them -- what the generated C program and ``intonly.api.profile_c`` take."""

    name: str
    int_model: IntModel
    x: list[np.ndarray]


class Single(nn.Module):
    """One layer (plus an optional activation that the lowering folds into it), traced as the model's body."""

    def __init__(self, layer: nn.Module, act: nn.Module | None = None):
        super().__init__()
        self.layer = layer
        self.act = act if act is not None else nn.Identity()

    def forward(self, x):
        return self.act(self.layer(x))


class ResidualAdd(nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, a, b):
        return self.relu(a + b)


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def int_inputs(model: IntModel, xs: list[np.ndarray]) -> list[np.ndarray]:
    """The integer tensors ``model``'s quantize nodes make of the float inputs ``xs`` (hwsim's own quantize)."""
    quants = [n for n in model.nodes if n.op == "quantize"]
    return [quantize_node(model, n, [x], None) for n, x in zip(quants, xs)]


def quantized_case(name: str, module: Callable[[], nn.Module], shapes: list[tuple], config: QuantConfig,
                   samples: int) -> LayerCase:
    """Quantize ``module()`` (created after seeding torch) on N(0, 1) calibration data of per-sample ``shapes``
    (one per input) and draw ``samples`` N(0, 1) inputs."""
    from intonly import api

    torch.manual_seed(seed_of(name))
    mod = module().eval()
    calib = [torch.randn(CALIB_SAMPLES, *s).numpy() for s in shapes]
    x = [torch.randn(samples, *s).numpy() for s in shapes]
    model = api.quantize(mod, calib if len(calib) > 1 else calib[0], config, name=name)
    model.validate()
    return LayerCase(name, model, int_inputs(model, x))


def isolate(model: IntModel, node_name: str, name: str) -> IntModel:
    """``quantize -> node -> dequantize`` around the integer node ``node_name`` of ``model``: the node, its
    constants and the metadata of its tensors are kept as they are; each input gets a float32 graph input and a
    quantize node, the output a dequantize node (no layout permutation: the C program and hwsim's ``quantized``
    mode see the integer tensors exactly as inside ``model``)."""
    node = next(n for n in model.nodes if n.name == node_name)
    tensors, nodes, inputs = {}, [], []
    for t in dict.fromkeys(node.inputs):
        info = copy.deepcopy(model.tensors[t])
        raw = TensorInfo(f"{t}:float", "float32", info.shape)
        tensors[raw.name], tensors[t] = raw, info
        inputs.append(raw.name)
        nodes.append(Node(f"quantize:{t}", "quantize", [raw.name], [t], {"perm": [], "form": 0}))
    out = copy.deepcopy(model.tensors[node.outputs[0]])
    tensors[out.name] = out
    nodes.append(copy.deepcopy(node))
    final = TensorInfo(f"{out.name}:float", "float32", out.shape)
    tensors[final.name] = final
    nodes.append(Node(f"dequantize:{out.name}", "dequantize", [out.name], [final.name], {"perm": []}))
    constants = {c: model.constants[c].copy() for c in node.params.values()}
    single = IntModel(name, model.rounding, inputs, [final.name], tensors, nodes, constants)
    single.validate()
    return single


@functools.lru_cache(maxsize=4)
def deit_block_model(samples: int) -> tuple[IntModel, dict[str, np.ndarray]]:
    """The quantized one-block DeiT-Tiny and every integer tensor hwsim computed on ``samples`` random images."""
    from intonly import api
    from intonly.models.vit import VisionTransformer, init_synthetic

    torch.manual_seed(seed_of("deit_tiny_1block"))
    vit = init_synthetic(VisionTransformer(img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=192,
                                           depth=1, num_heads=3, mlp_ratio=4.0), seed=0).eval()
    calib = torch.randn(CALIB_SAMPLES, 3, 224, 224).numpy()
    x = torch.randn(samples, 3, 224, 224).numpy()
    model = api.quantize(vit, calib, QuantConfig.transformer(), name="deit_tiny_1block")
    values = simulate(model, x, keep_values=True).values
    return model, values


def deit_case(name: str, node_name: str, samples: int) -> LayerCase:
    model, values = deit_block_model(samples)
    single = isolate(model, node_name, name)
    x = [np.ascontiguousarray(values[n.outputs[0]]) for n in single.nodes if n.op == "quantize"]
    return LayerCase(name, single, x)


CNN = QuantConfig()


def conv(cin, cout, k=3, stride=1, groups=1, act=None):
    return lambda: Single(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups), act and act())


def pool(kind, k, stride, pad=0):
    return lambda: Single(kind(k, stride, pad))


# name -> builder(name, samples); the suite's order is this dict's order.
CASES: dict[str, Callable[[str, int], LayerCase]] = {
    "conv3x3_56x56x64_64": lambda n, s: quantized_case(n, conv(64, 64, act=nn.ReLU), [(64, 56, 56)], CNN, s),
    "conv3x3_28x28x128_128": lambda n, s: quantized_case(n, conv(128, 128, act=nn.ReLU), [(128, 28, 28)], CNN, s),
    "conv3x3_s2_224x224x3_32": lambda n, s: quantized_case(n, conv(3, 32, stride=2, act=nn.ReLU6), [(3, 224, 224)],
                                                           CNN, s),
    "conv3x3_s2_112x112x3_32": lambda n, s: quantized_case(n, conv(3, 32, stride=2, act=nn.ReLU6), [(3, 112, 112)],
                                                           CNN, s),
    "dw3x3_56x56x144": lambda n, s: quantized_case(n, conv(144, 144, groups=144, act=nn.ReLU6), [(144, 56, 56)],
                                                   CNN, s),
    "dw3x3_28x28x192": lambda n, s: quantized_case(n, conv(192, 192, groups=192, act=nn.ReLU6), [(192, 28, 28)],
                                                   CNN, s),
    "pw1x1_56x56x24_144": lambda n, s: quantized_case(n, conv(24, 144, k=1, act=nn.ReLU6), [(24, 56, 56)], CNN, s),
    "pw1x1_14x14x384_64": lambda n, s: quantized_case(n, conv(384, 64, k=1), [(384, 14, 14)], CNN, s),
    "dense_512_1000": lambda n, s: quantized_case(n, lambda: Single(nn.Linear(512, 1000)), [(512,)], CNN, s),
    "dense_1024_256": lambda n, s: quantized_case(n, lambda: Single(nn.Linear(1024, 256), nn.ReLU()), [(1024,)],
                                                  CNN, s),
    "add_56x56x64": lambda n, s: quantized_case(n, ResidualAdd, [(64, 56, 56)] * 2, CNN, s),
    "add_28x28x32": lambda n, s: quantized_case(n, ResidualAdd, [(32, 28, 28)] * 2, CNN, s),
    "avgpool2x2_56x56x64": lambda n, s: quantized_case(n, pool(nn.AvgPool2d, 2, 2), [(64, 56, 56)], CNN, s),
    "avgpool7x7_7x7x1280": lambda n, s: quantized_case(n, pool(nn.AvgPool2d, 7, 7), [(1280, 7, 7)], CNN, s),
    "maxpool3x3_s2_112x112x64": lambda n, s: quantized_case(n, pool(nn.MaxPool2d, 3, 2, 1), [(64, 112, 112)], CNN,
                                                            s),
    "maxpool2x2_56x56x64": lambda n, s: quantized_case(n, pool(nn.MaxPool2d, 2, 2), [(64, 56, 56)], CNN, s),
    "layernorm_deit_197x192": lambda n, s: deit_case(n, "blocks.0.norm1", s),
    "matmul_qk_deit_3x197x64": lambda n, s: deit_case(n, "blocks.0.attn.scores", s),
    "softmax_deit_3x197x197": lambda n, s: deit_case(n, "blocks.0.attn.softmax", s),
    "matmul_pv_deit_3x197x197": lambda n, s: deit_case(n, "blocks.0.attn.context", s),
    "gelu_deit_197x768": lambda n, s: deit_case(n, "blocks.0.mlp.act", s),
    "dense_deit_fc1_197x192_768": lambda n, s: deit_case(n, "blocks.0.mlp.fc1", s),
}


def suite(names: list[str] | None = None, samples: int = SAMPLES) -> list[LayerCase]:
    """The cases named (all of :data:`CASES` when None), in the order given (the suite's order when None)."""
    names = list(CASES) if names is None else list(names)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise KeyError(f"unknown layer case(s) {unknown}; known: {', '.join(CASES)}")
    return [CASES[n](n, samples) for n in names]


if __name__ == "__main__":
    for case in suite(sys.argv[1:] or None):
        nodes = case.int_model.integer_nodes()
        print(f"{case.name:32s} {[(n.name, n.op) for n in nodes]} "
              f"macs={sum(case.int_model.node_macs(n) for n in nodes):,} "
              f"x={[(a.dtype.name, a.shape) for a in case.x]}")
