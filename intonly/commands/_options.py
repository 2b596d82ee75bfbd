"""What several commands share: the quantization options (run, compare) and what a model argument names
(run, compare, estimate, build)."""

from __future__ import annotations

import argparse
import dataclasses

from intonly.demos import DEMOS
from intonly.quantize.config import GELU_FAMILIES, OBSERVERS, SOFTMAX_FAMILIES, QuantConfig
from intonly.quantize.names import ROUNDING_MODES

CONFIG_OPTIONS = ("weight_bits", "act_bits", "observer", "rounding", "softmax", "gelu", "softmax_bits",
                  "residual_bits", "auto_bits", "bias_correction", "wide_weights", "equalize")


def add_quant_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="digits",
                   help="a bundled demo: 'digits' (CNN), 'vit' (tiny ViT on digits), 'minilm' (MiniLM-L6 sentence "
                        "embeddings), 'efficientnet-lite0' (pretrained ImageNet CNN on photo crops); or "
                        "FILE.py:NAME, an nn.Module class or factory in a Python file")
    p.add_argument("--data", help="for FILE.py models: .npz with x (float, N first), optional y (labels), "
                                  "optional x_calib (calibration inputs; default x); for FILE.tflite/.onnx: .npz "
                                  "with x (integer codes or floats, N first; default 128 random inputs)")
    p.add_argument("--rounding", choices=ROUNDING_MODES, help="requant rounding (default half_up)")
    p.add_argument("--observer", choices=OBSERVERS, help="calibration range (default minmax)")
    p.add_argument("--weight-bits", type=int, help="default 8")
    p.add_argument("--act-bits", type=int, help="default 8 (efficientnet-lite0: 12); above 8, narrowed per tensor "
                                                 "where an int32 accumulator proof needs it")
    p.add_argument("--symmetric", action="store_true", help="symmetric activations (zero point 0)")
    p.add_argument("--softmax", choices=SOFTMAX_FAMILIES, help="integer softmax family (default shiftmax)")
    p.add_argument("--gelu", choices=GELU_FAMILIES, help="integer GELU family (default shiftgelu)")
    p.add_argument("--softmax-bits", type=int, choices=(8, 16), help="attention probability bits (default 16)")
    p.add_argument("--residual-bits", type=int, help="bits of residual-add operands and results "
                                                     "(transformer demos: 16)")
    p.add_argument("--auto-bits", action=argparse.BooleanOptionalAction,
                   help="16 bits for tensors whose 8-bit calibration SQNR is low (transformer demos: on)")
    p.add_argument("--bias-correction", action=argparse.BooleanOptionalAction,
                   help="fold each layer's mean weight-rounding error on the calibration data into its bias "
                        "(default on)")
    p.add_argument("--wide-weights", action=argparse.BooleanOptionalAction,
                   help="each layer's weights as wide (up to 16 bits) as its int32 accumulator proof allows "
                        "(efficientnet-lite0: on)")
    p.add_argument("--equalize", action=argparse.BooleanOptionalAction,
                   help="cross-layer equalization of consecutive layers joined by identity/ReLU/LeakyReLU "
                        "(default off)")


def config_from(args, base: QuantConfig | None = None) -> QuantConfig:
    """The workload's default config with every CLI option the user gave (not None) applied on top."""
    given = {k: getattr(args, k) for k in CONFIG_OPTIONS if getattr(args, k, None) is not None}
    if getattr(args, "symmetric", False):
        given["act_symmetric"] = True
    return dataclasses.replace(base or QuantConfig(), **given)


def is_workload_spec(spec: str) -> bool:
    """A bundled demo name or ``FILE.py:NAME`` (a float model to quantize first), rather than an .intonly file."""
    return spec in DEMOS or spec.rpartition(":")[0].endswith(".py")


def model_input(spec: str) -> str | None:
    """The file a model argument reads (for the output checks): none for a demo, FILE for ``FILE.py:NAME``,
    else the .intonly path itself."""
    if spec in DEMOS:
        return None
    return spec.rpartition(":")[0] if is_workload_spec(spec) else spec
