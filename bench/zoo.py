"""Published CNN architectures in plain torch.nn (no torchvision), with random but deterministic weights,
and their integer lowerings -- the networks a latency cost model is validated against
(``bench/published_rows.py`` holds the measured latencies).

    python -m bench.zoo [NAME ...] [--rebuild] [--json bench/results/zoo.json]

Factories (each seeds torch, initialises like torchvision, then gives BatchNorm realistic running
statistics with :func:`mobilenetv2.realistic_bn_stats`, so quantization ranges resemble a trained net's):

* :func:`mobilenet_v1` -- Howard et al. 2017, TF-slim layout (``max(int(c * alpha), 8)`` channels, ReLU6).
* :func:`mobilenet_v2` -- ``bench/mobilenetv2.py`` (torchvision layout, ``_make_divisible`` widths) at a
  width multiplier; ``last_channel="mcunet"`` scales the last 1x1 conv with the width as the MCUNet
  model zoo does (see :data:`PUBLISHED` for why).
* :func:`resnet18`, :func:`resnet50` -- He et al. 2016 in torchvision's layout: ResNet v1.5 (the stride of
  a bottleneck sits in its 3x3 conv, not in the first 1x1 as in the original v1), 1x1-conv+BN shortcuts.
  ``resnet50(v1=True)`` (zoo name ``resnet50_v1-224``) is the original v1 layout, the one the Pixel 2 and
  HAWQ-V3 ResNet50 measurements ran.

:data:`ZOO` maps a name to ``(factory, input shape)``; :func:`int_model` quantizes one with
``intonly.api.quantize(model, calib, QuantConfig())`` on two N(0,1) calibration inputs (seed
:data:`CALIB_SEED`) and caches the result in ``bench/.cache/<name>.intonly``. A sidecar
``<name>.json`` records the quantization time and a fingerprint of the quantizer and model sources: when
those change, the cached model is rebuilt.

MACs are multiply-accumulates of Conv2d and Linear layers per sample (what "mult-adds" means in the
MobileNet papers and GFLOPs in torchvision's tables); parameters are ``sum(p.numel() for p in
model.parameters())``, torchvision's convention (conv/linear weights and biases plus BatchNorm gamma/beta).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from . import mobilenetv2
from .mobilenetv2 import _make_divisible, realistic_bn_stats

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CACHE_DIR = HERE / ".cache"
CALIB_SEED = 0
CALIB_SAMPLES = 2


# ---- MobileNet v1 ------------------------------------------------------------------------------------------

def _conv_bn_relu6(in_ch: int, out_ch: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU6(inplace=True))


class MobileNetV1(nn.Module):
    """Howard et al. 2017, Table 1: a 3x3/2 conv, 13 depthwise-separable blocks, global average pool, FC."""

    # (output channels of the pointwise conv, stride of the depthwise conv)
    SETTING: ClassVar = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
               (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, alpha: float = 1.0, num_classes: int = 1000, dropout: float = 0.001, min_depth: int = 8):
        super().__init__()

        def depth(c: int) -> int:  # TF-slim mobilenet_v1: max(int(d * depth_multiplier), min_depth)
            return max(int(c * alpha), min_depth)

        ch = depth(32)
        layers: list[nn.Module] = [_conv_bn_relu6(3, ch, 3, 2)]
        for out, stride in self.SETTING:
            layers += [_conv_bn_relu6(ch, ch, 3, stride, groups=ch), _conv_bn_relu6(ch, depth(out), 1, 1)]
            ch = depth(out)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(ch, num_classes))
        _torchvision_init(self)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# ---- ResNet (torchvision layout, v1.5) ---------------------------------------------------------------------

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 with 4x expansion; the stride sits in the 3x3 conv (ResNet v1.5, torchvision) or,
    with ``stride_in_1x1``, in the first 1x1 conv (the original ResNet v1, e.g. pytorchcv's ``resnet50``)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, stride_in_1x1: bool = False):
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, s1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, s3, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, 1, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _shortcut(inplanes: int, outplanes: int, stride: int) -> nn.Module | None:
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride, 0, bias=False), nn.BatchNorm2d(outplanes))


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], num_classes: int = 1000,
                 **block_kw):
        super().__init__()
        self.inplanes = 64
        self.block_kw = block_kw
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _torchvision_init(self, linear="default")

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [block(self.inplanes, planes, stride, **self.block_kw)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **self.block_kw) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _torchvision_init(model: nn.Module, linear: str = "normal") -> None:
    """torchvision's initialisation: Kaiming-normal (fan_out) convs, unit/zero BatchNorm, and for the
    MobileNets N(0, 0.01) Linear weights (ResNet keeps nn.Linear's default)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear == "normal":
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


# ---- factories ---------------------------------------------------------------------------------------------

def _finish(model: nn.Module, resolution: int, bn_batches: int) -> nn.Module:
    if bn_batches:
        return realistic_bn_stats(model, (3, resolution, resolution), calib_batches=bn_batches)
    return model.eval()


def mobilenet_v1(alpha: float = 1.0, resolution: int = 224, seed: int = 0, bn_batches: int = 2) -> MobileNetV1:
    """MobileNet v1 (alpha, resolution), random weights (``torch.manual_seed(seed)``), BatchNorm statistics
    from ``bn_batches`` random batches at ``resolution`` (0: leave torchvision's init, eval mode)."""
    torch.manual_seed(seed)
    return _finish(MobileNetV1(alpha), resolution, bn_batches)


def mobilenet_v2(width: float = 1.0, resolution: int = 224, last_channel: int | str | None = None,
                 seed: int = 0, bn_batches: int = 2) -> mobilenetv2.MobileNetV2:
    """MobileNetV2 of ``bench/mobilenetv2.py`` at a width multiplier. ``last_channel``: None = torchvision's
    ``_make_divisible(1280 * max(1, width))``; ``"mcunet"`` = ``_make_divisible(1280 * width)`` (the MCUNet
    model zoo / TF-slim default); or an int. ``width=1, resolution=224, seed=0`` gives the same weights as
    ``mobilenetv2.build()``."""
    if last_channel == "mcunet":
        last_channel = _make_divisible(1280 * width)
    elif isinstance(last_channel, str):
        raise ValueError(f"last_channel={last_channel!r}: expected None, 'mcunet' or an int")
    torch.manual_seed(seed)
    return _finish(mobilenetv2.MobileNetV2(width_mult=width, last_channel=last_channel), resolution, bn_batches)


def resnet18(resolution: int = 224, seed: int = 0, bn_batches: int = 2) -> ResNet:
    """ResNet-18, torchvision layout (BasicBlock x [2, 2, 2, 2])."""
    torch.manual_seed(seed)
    return _finish(ResNet(BasicBlock, [2, 2, 2, 2]), resolution, bn_batches)


def resnet50(resolution: int = 224, seed: int = 0, bn_batches: int = 2, v1: bool = False) -> ResNet:
    """ResNet-50 v1.5, torchvision layout (Bottleneck x [3, 4, 6, 3], stride in the 3x3 conv); ``v1=True``:
    the original v1 layout (stride in the first 1x1 conv; 3.86 instead of 4.09 GMACs, same parameters) that
    the Pixel 2 whitepaper ('ResNet v1 50') and HAWQ-V3 (pytorchcv ``resnet50``) measured."""
    torch.manual_seed(seed)
    block_kw = {"stride_in_1x1": True} if v1 else {}
    return _finish(ResNet(Bottleneck, [3, 4, 6, 3], **block_kw), resolution, bn_batches)


class ZooEntry(NamedTuple):
    factory: Callable[..., nn.Module]  # keyword arguments: seed, bn_batches
    input_shape: tuple[int, int, int]  # per sample, C, H, W


def _entry(fn, shape, **kw) -> ZooEntry:
    def factory(**more):
        return fn(**kw, **more)
    factory.__name__ = factory.__qualname__ = f"{fn.__name__}({', '.join(f'{k}={v!r}' for k, v in kw.items())})"
    return ZooEntry(factory, shape)


ZOO: dict[str, ZooEntry] = {
    "mbv2-w0.35-r144": _entry(mobilenet_v2, (3, 144, 144), width=0.35, resolution=144, last_channel="mcunet"),
    "mbv2-w0.3-r64": _entry(mobilenet_v2, (3, 64, 64), width=0.3, resolution=64, last_channel="mcunet"),
    "mobilenet_v1-1.0-224": _entry(mobilenet_v1, (3, 224, 224), alpha=1.0, resolution=224),
    "mobilenet_v2-1.0-224": _entry(mobilenet_v2, (3, 224, 224), width=1.0, resolution=224),
    "resnet18-224": _entry(resnet18, (3, 224, 224), resolution=224),
    "resnet50-224": _entry(resnet50, (3, 224, 224), resolution=224),
    "resnet50_v1-224": _entry(resnet50, (3, 224, 224), resolution=224, v1=True),
}


class Published(NamedTuple):
    """The published size of a zoo model: MACs and parameters per sample, ``None`` where none is published."""

    macs: float | None
    params: float | None
    source: str
    note: str = ""


PUBLISHED: dict[str, Published] = {
    "mbv2-w0.35-r144": Published(
        23.5e6, 0.75e6, "mit-han-lab/mcunet README.md, Model Zoo row mbv2-320kB (net_id mbv2-w0.35, "
        "mcunet/model_zoo.py NET_INFO: 'mbv2-w0.35-r144_imagenet')",
        "MCUNet scales the last 1x1 conv with the width (448 channels, last_channel='mcunet'); torchvision's "
        "rule keeps 1280 and gives 26.66M MACs / 1.68M params, which does not match. With 448 the counts "
        "match to 0.01%, so the MCUNet net is this layout (its JSON config is only on the MCUNet server)."),
    "mbv2-w0.3-r64": Published(
        None, None, "mit-han-lab/tinyengine README.md (Measured Results) names it; no MACs/params published",
        "Layout assumed like mbv2-w0.35 (last conv scaled: 384 channels, 1000 classes): 4.54M MACs, 0.634M "
        "params. Consistent with TinyEngine's 690 kB flash for it (839 kB for the 0.75M-param mbv2-w0.35), "
        "not verified against the TinyEngine model file."),
    "mobilenet_v1-1.0-224": Published(
        569e6, 4.2e6, "Howard et al. 2017 (arXiv:1704.04861) Table 8: 569 million mult-adds, 4.2 million "
        "parameters (TF-slim mobilenet_v1.md: 569 MACs, 4.24M)"),
    "mobilenet_v2-1.0-224": Published(
        300e6, 3.47e6, "Sandler et al. 2018 (arXiv:1801.04381) Table 4: 300M MAdds, 3.4M params; TF-slim "
        "nets/mobilenet/README.md: 300 MACs, 3.47M params",
        "Checked against TF-slim's 3.47M: the paper's 3.4M is that figure rounded down, and our 3,504,872 "
        "(= torchvision's mobilenet_v2 exactly; BatchNorm gamma/beta are 34,112 of it) is 3.1% above 3.4M."),
    "resnet18-224": Published(
        1.82e9, 11.7e6, "He et al. 2016 (arXiv:1512.03385) Table 1: 1.8e9 FLOPs (multiply-adds); torchvision "
        "resnet18 docs: 1.81 GFLOPS, 11,689,512 params"),
    "resnet50-224": Published(
        4.1e9, 25.6e6, "torchvision resnet50 (v1.5) docs: 4.09 GFLOPS, 25,557,032 params; He et al. 2016 Table 1 "
        "gives 3.8e9 for the original v1",
        "ResNet v1.5 (stride in the 3x3 conv) costs 4.09 GMACs, v1 (stride in the first 1x1 conv) 3.86 G "
        "(counted here): the 3x3 conv of each stage's first block runs at the input resolution; same parameters."),
    "resnet50_v1-224": Published(
        3.858e9, 25.6e6, "He et al. 2016 (arXiv:1512.03385) Table 1: 3.8e9 FLOPs (multiply-adds); HAWQ-V3 "
        "(Zhen-Dong/HAWQ README) ResNet50 FP: 3951 G BOPS = 3.858 GMACs x 32 x 32; 25.6M params",
        "The original ResNet v1 (pytorchcv 'resnet50': stride in the first 1x1 conv). The paper's 3.8e9 is "
        "rounded (1.3% below); HAWQ's BOPS give the exact count, 3.858 G, which this layout reproduces."),
}


# ---- counting ----------------------------------------------------------------------------------------------

def torch_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Conv2d + Linear multiply-accumulates of one sample, from forward hooks on a batch of one."""
    total = 0

    def hook(m, inputs, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += out[0].numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return total


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def int_macs(m) -> int:
    """MACs per sample of an IntModel."""
    return sum(m.node_macs(n) for n in m.nodes)


# ---- integer models, cached --------------------------------------------------------------------------------

def build(name: str, **kw) -> nn.Module:
    if name not in ZOO:
        raise KeyError(f"unknown zoo model {name!r}; one of {sorted(ZOO)}")
    return ZOO[name].factory(**kw)


def calib_inputs(name: str) -> np.ndarray:
    """The calibration batch: CALIB_SAMPLES N(0,1) inputs from ``np.random.default_rng(CALIB_SEED)``."""
    return np.random.default_rng(CALIB_SEED).standard_normal((CALIB_SAMPLES, *ZOO[name].input_shape),
                                                            dtype=np.float32)


def fingerprint() -> str:
    """sha256 over the sources that determine a cached IntModel (the quantizer with its op registry, the model
    definitions) and torch's version; a cache entry with another fingerprint is rebuilt."""
    h = hashlib.sha256(torch.__version__.encode())
    files = sorted((REPO / "quantize").rglob("*.py")) + [REPO / "intonly" / "api.py", HERE / "zoo.py",
                                                         HERE / "mobilenetv2.py"]
    for f in files:
        h.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def int_model(name: str, cache_dir: str | Path = CACHE_DIR, rebuild: bool = False, verbose: bool = True):
    """The zoo model ``name`` lowered by ``intonly.api.quantize(model, calib_inputs(name), QuantConfig())``,
    loaded from ``cache_dir/<name>.intonly`` when its sidecar ``<name>.json`` carries the current
    :func:`fingerprint`, else built, quantized (timed, printed when ``verbose``) and saved there."""
    from intonly.api import QuantConfig, quantize
    from intonly.quantize.ir import IntModel

    cache = Path(cache_dir)
    path, meta_path = cache / f"{name}.intonly", cache / f"{name}.json"
    fp = fingerprint()
    if not rebuild and path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = {}
        if meta.get("fingerprint") == fp:
            return IntModel.load(path)
    t0 = time.perf_counter()
    model = build(name)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = quantize(model, calib_inputs(name), QuantConfig(), name=name)
    quantize_s = time.perf_counter() - t0
    if verbose:
        print(f"{name}: built in {build_s:.1f} s, quantized in {quantize_s:.1f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    m.save(path)
    meta = {"name": name, "fingerprint": fp, "build_s": build_s, "quantize_s": quantize_s,
            "calib_samples": CALIB_SAMPLES, "calib_seed": CALIB_SEED, "macs": int_macs(m),
            "params": param_count(model), "input_shape": list(ZOO[name].input_shape)}
    tmp = meta_path.with_name(meta_path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    tmp.replace(meta_path)
    return m


def cached_meta(name: str, cache_dir: str | Path = CACHE_DIR) -> dict:
    p = Path(cache_dir) / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else {}


def rel(value: float, ref: float | None) -> float | None:
    return None if ref is None else value / ref - 1.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help=f"zoo models (default: all of {list(ZOO)})")
    p.add_argument("--rebuild", action="store_true", help="quantize again even when the cache is current")
    p.add_argument("--cache-dir", default=str(CACHE_DIR))
    p.add_argument("--json", default=str(HERE / "results" / "zoo.json"))
    args = p.parse_args(argv)
    rows = []
    for name in args.names or list(ZOO):
        t0 = time.perf_counter()
        m = int_model(name, args.cache_dir, rebuild=args.rebuild)
        wall = time.perf_counter() - t0
        meta = cached_meta(name, args.cache_dir)
        pub = PUBLISHED.get(name, Published(None, None, ""))
        macs, params = int_macs(m), meta["params"]
        rows.append({"name": name, "input_shape": list(ZOO[name].input_shape), "macs": macs,
                     "published_macs": pub.macs, "macs_rel": rel(macs, pub.macs), "params": params,
                     "published_params": pub.params, "params_rel": rel(params, pub.params),
                     "quantize_s": meta["quantize_s"], "build_s": meta["build_s"], "this_run_s": wall,
                     "source": pub.source, "note": pub.note})

    def pct(x):
        return "     -" if x is None else f"{100 * x:+5.1f}%"

    def mega(x):
        return "       -" if x is None else f"{x / 1e6:8.2f}"

    hdr = (f"{'model':22s} {'MACs (M)':>9s} {'publ.':>8s} {'Δ':>6s}  {'params (M)':>10s} {'publ.':>8s} {'Δ':>6s}  "
           f"{'quantize s':>10s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['name']:22s} {r['macs'] / 1e6:9.2f} {mega(r['published_macs'])} {pct(r['macs_rel'])}  "
              f"{r['params'] / 1e6:10.3f} {mega(r['published_params'])} {pct(r['params_rel'])}  "
              f"{r['quantize_s']:10.1f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"torch": torch.__version__, "models": rows}, indent=1) + "\n")
    print(f"(quantize s: time of the run that filled the cache; MACs counted on the IntModel)\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
