"""The MiniLM-L6 demo, float side: all-MiniLM-L6-v2 sentence embeddings on hand-written sentences, and the metrics
that compare an integer pipeline's embeddings with FP32.

Data: ``intonly/assets/sentences.txt`` (256 sentences written for this project: 48 paraphrase pairs, tagged
``P<k>`` + TAB on two consecutive lines, and 160 singles; 3 to 42 words, 6 to 50 tokens with [CLS]/[SEP]).
Protocol: two halves with every paraphrase pair kept inside one half (:func:`split_halves`); calibrate on one
half, evaluate on the other, then swap. Metrics, all on cosine (embeddings are normalised here, not by the model):

* :func:`cosine_rows` -- the cosine between the test and FP32 embedding of the same sentence;
* :func:`retrieval_agreement` -- how often the top-1 nearest neighbour of a sentence (excluding itself) among the
  other sentences of the set is the same with the test embeddings as with FP32; ``confident`` restricts this to
  queries whose FP32 top1 - top2 margin is at least ``margin`` (near-ties flip under any perturbation).

Run ``python -m intonly.demos.minilm`` for the FP32 sanity numbers (paraphrase retrieval, token lengths).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from intonly.models.bert import encode, load_minilm, minilm_tokenizer, token_lengths
from intonly.quantize.errors import ConfigError

SENTENCES = Path(__file__).resolve().parent.parent / "assets" / "sentences.txt"
# The smallest multiple of 8 covering the longest sentence of SENTENCES (50 tokens with [CLS]/[SEP]);
# test_minilm_float checks it.
MAX_LEN = 56
_TAG = re.compile(r"P(\d+)\t(.*)")


@dataclass(frozen=True)
class Sentence:
    text: str
    pair: int | None  # paraphrase pair id, or None for a single


def load_sentences(path: Path | str = SENTENCES) -> list[Sentence]:
    """The sentences of ``path`` in file order; a pair's two sentences share their ``pair`` id and are adjacent."""
    sentences: list[Sentence] = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _TAG.fullmatch(line)
        text, pair = (match.group(2), int(match.group(1))) if match else (line, None)
        if not text.strip() or "\t" in text:
            raise ConfigError(f"{path}:{lineno}: malformed sentence line {line!r}")
        sentences.append(Sentence(text.strip(), pair))
    counts: dict[int, list[int]] = {}
    for i, s in enumerate(sentences):
        if s.pair is not None:
            counts.setdefault(s.pair, []).append(i)
    for pair, rows in counts.items():
        if len(rows) != 2 or rows[1] != rows[0] + 1:
            raise ConfigError(f"{path}: pair P{pair} must be exactly two consecutive lines (rows {rows})")
    return sentences


def split_halves(sentences: list[Sentence] | None = None) -> tuple[list[int], list[int]]:
    """Two deterministic halves (row indices into ``sentences``): pairs alternate between the halves in file order,
    and so do singles, so each half gets every other pair (both of its sentences) and every other single."""
    sentences = load_sentences() if sentences is None else sentences
    halves: tuple[list[int], list[int]] = ([], [])
    pair_half: dict[int, int] = {}
    n_pairs = n_singles = 0
    for i, s in enumerate(sentences):
        if s.pair is None:
            halves[n_singles % 2].append(i)
            n_singles += 1
        else:
            if s.pair not in pair_half:
                pair_half[s.pair] = n_pairs % 2
                n_pairs += 1
            halves[pair_half[s.pair]].append(i)
    return halves


def fit_max_len(lengths: list[int], multiple: int = 8) -> int:
    """The smallest multiple of ``multiple`` that is >= every length."""
    return -(-max(lengths) // multiple) * multiple


@torch.no_grad()
def embed_fp32(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, batch: int = 32,
               trim: bool = True) -> np.ndarray:
    """FP32 sentence embeddings (N, D) as float32 numpy (not normalised), in the row order of ``ids``.

    With ``trim`` (default) sentences are batched by length and each batch is cut to its longest sentence: the
    result equals the full-padding one up to float rounding (~1e-6; padding is masked out of attention and pooling)
    and costs ~4x less on this file (mean 14 tokens, max_len 56). ``trim=False`` runs the padded tensors as given.
    """
    model.eval()
    lengths = mask.sum(1).long()
    order = torch.argsort(lengths, stable=True) if trim else torch.arange(len(ids))
    out = torch.empty(len(ids), 0)
    for start in range(0, len(ids), batch):
        rows = order[start:start + batch]
        width = int(lengths[rows].max()) if trim else ids.shape[1]
        emb = model(ids[rows, :width], mask[rows, :width])
        if out.shape[1] == 0:
            out = torch.empty(len(ids), emb.shape[1])
        out[rows] = emb
    return out.numpy().astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between row i of ``a`` and row i of ``b`` -> (N,)."""
    return np.sum(_unit(a) * _unit(b), axis=-1)


def similarity(x: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix (N, N) with the diagonal set to -inf (a sentence is never its own neighbour)."""
    u = _unit(x)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    return sim


def retrieval_agreement(ref: np.ndarray, test: np.ndarray, margin: float = 0.02) -> dict:
    """Top-1 nearest-neighbour agreement (cosine, self excluded) between ``test`` and ``ref`` embeddings of the
    same N sentences: ``plain`` over all queries, ``confident`` over queries whose ref top1 - top2 cosine
    margin is >= ``margin`` (``n_confident`` of them; ``confident`` is nan when there are none)."""
    if ref.shape != test.shape or len(ref) < 3:
        raise ValueError(f"need matching (N >= 3, D) embeddings, got {ref.shape} and {test.shape}")
    sim_ref, sim_test = similarity(ref), similarity(test)
    nn_ref, nn_test = sim_ref.argmax(1), sim_test.argmax(1)
    top2 = np.sort(sim_ref, axis=1)[:, -2:]
    confident = (top2[:, 1] - top2[:, 0]) >= margin
    same = nn_ref == nn_test
    return {"plain": float(same.mean()),
            "confident": float(same[confident].mean()) if confident.any() else float("nan"),
            "n_confident": int(confident.sum()), "n": len(ref)}


def paraphrase_retrieval(emb: np.ndarray, sentences: list[Sentence], rows: list[int]) -> tuple[int, int]:
    """``(hits, queries)``: how many paraphrase sentences among ``rows`` retrieve their partner as top-1 (cosine,
    self excluded) among the sentences of ``rows``. ``emb`` is indexed like ``sentences``."""
    rows = list(rows)
    sim = similarity(emb[rows])
    partner = {}
    for local, row in enumerate(rows):
        if sentences[row].pair is not None:
            partner.setdefault(sentences[row].pair, []).append(local)
    hits = queries = 0
    for locals_ in partner.values():
        if len(locals_) != 2:
            continue
        for a, b in (locals_, locals_[::-1]):
            queries += 1
            hits += int(sim[a].argmax() == b)
    return hits, queries


def fp32_report() -> dict:
    """FP32 sanity numbers on the sentence file (used by ``python -m intonly.demos.minilm``)."""
    sentences = load_sentences()
    texts = [s.text for s in sentences]
    tokenizer = minilm_tokenizer()
    lengths = token_lengths(texts, tokenizer)
    max_len = fit_max_len(lengths)
    ids, mask = encode(texts, max_len, tokenizer)
    emb = embed_fp32(load_minilm(), ids, mask)
    halves = split_halves(sentences)
    per_half = [paraphrase_retrieval(emb, sentences, half) for half in halves]
    pair_cos = [float(cosine_rows(emb[i:i + 1], emb[i + 1:i + 2])[0]) for i in range(len(sentences) - 1)
                if sentences[i].pair is not None and sentences[i].pair == sentences[i + 1].pair]
    margins = []
    for half in halves:
        top2 = np.sort(similarity(emb[half]), axis=1)[:, -2:]
        margins.extend(top2[:, 1] - top2[:, 0])
    return {"n": len(sentences), "pairs": len(pair_cos), "half_sizes": [len(h) for h in halves],
            "tokens_min": min(lengths), "tokens_max": max(lengths), "tokens_mean": float(np.mean(lengths)),
            "max_len": max_len, "pair_hits": sum(h for h, _ in per_half), "pair_queries": sum(q for _, q in per_half),
            "pair_cos_mean": float(np.mean(pair_cos)), "pair_cos_min": float(np.min(pair_cos)),
            "margin_median": float(np.median(margins)), "margin_below_0.02": float(np.mean(np.array(margins) < 0.02))}


if __name__ == "__main__":
    r = fp32_report()
    print(f"{r['n']} sentences ({r['pairs']} paraphrase pairs), halves {r['half_sizes']}; tokens "
          f"{r['tokens_min']}-{r['tokens_max']} (mean {r['tokens_mean']:.1f}), max_len {r['max_len']}")
    print(f"FP32 paraphrase retrieval within halves: {r['pair_hits']}/{r['pair_queries']}; pair cosine mean "
          f"{r['pair_cos_mean']:.3f} min {r['pair_cos_min']:.3f}; NN margin median {r['margin_median']:.3f}, "
          f"{100 * r['margin_below_0.02']:.1f}% of queries below 0.02")
