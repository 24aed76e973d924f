"""Conformance test every family passes: shapes, padding invariance, learning one batch,
gradients reaching the embeddings, save/load round trip, causality where promised."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from seqlab.config import model_config_type
from seqlab.errors import SeqlabError
from seqlab.families import ALIASES, FAMILIES, build_encoder, check_family_name
from seqlab.tasks.classify import SequenceClassifier

VOCAB = 40
VARIANTS = [
    ("bow", {}),
    ("bow", {"bigrams": True, "hash_buckets": 64}),
    ("cnn", {}),
    ("rnn", {}),
    ("lstm", {}),
    ("gru", {}),
    ("lstm", {"layers": 2, "bidirectional": True}),
    ("gru", {"bidirectional": True, "pooling": "max"}),
    ("lstm", {"pooling": "mean"}),
    ("gru", {"bidirectional": True, "pooling": "last+max+mean"}),
    ("lstm", {"bidirectional": True, "pooling": "max", "pool_embeddings": True}),
]


def _cfg(family, **kw):
    return model_config_type()(family=family, embed_dim=16, hidden_dim=24, filters=8, dropout=0.0, **kw)


def _batch(seed=0, b=6, t=9):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0] = t
    ids = torch.randint(4, VOCAB, (b, t), generator=g)
    ids[torch.arange(t)[None, :] >= lengths[:, None]] = 0
    return ids, lengths


@pytest.mark.parametrize("family,kw", VARIANTS)
def test_shapes_and_padding_invariance(family, kw):
    torch.manual_seed(0)
    enc = build_encoder(VOCAB, _cfg(family, **kw)).eval()
    ids, lengths = _batch()
    out = enc(ids, lengths)
    assert out.states.shape == (6, 9, enc.state_dim)
    assert out.summary.shape == (6, enc.summary_dim)
    assert out.mask.sum().item() == lengths.sum().item()
    # extra padding must not change any real step's state or the summary
    padded = torch.cat([ids, torch.zeros(6, 7, dtype=torch.long)], dim=1)
    out2 = enc(padded, lengths)
    torch.testing.assert_close(out2.summary, out.summary, atol=1e-5, rtol=1e-5)
    real = out.mask[..., None]
    torch.testing.assert_close(out2.states[:, :9] * real, out.states * real, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family,kw", VARIANTS)
def test_learns_one_batch_and_gradients_flow(family, kw):
    torch.manual_seed(0)
    model = SequenceClassifier(build_encoder(VOCAB, _cfg(family, **kw)), 3)
    ids, lengths = _batch(1, b=12)
    ids[:, 0] = torch.arange(12) % 5 + 4  # make labels learnable from the content
    labels = torch.arange(12) % 3
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(ids, lengths), labels)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    emb = next(p for n, p in model.named_parameters() if "embedding" in n or "bag" in n)
    assert emb.grad is not None and emb.grad.abs().sum() > 0


@pytest.mark.parametrize("family,kw", VARIANTS)
def test_save_load_round_trip(tmp_path, family, kw):
    torch.manual_seed(0)
    model = SequenceClassifier(build_encoder(VOCAB, _cfg(family, **kw)), 3).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "m.safetensors")
    torch.manual_seed(1)
    clone = SequenceClassifier(build_encoder(VOCAB, _cfg(family, **kw)), 3).eval()
    clone.load_state_dict(load_file(tmp_path / "m.safetensors"))
    ids, lengths = _batch(2)
    torch.testing.assert_close(clone(ids, lengths), model(ids, lengths), atol=0, rtol=0)


@pytest.mark.parametrize("family", ["bow", "cnn", "rnn", "lstm", "gru"])
def test_causal_mode_never_looks_ahead(family):
    torch.manual_seed(0)
    enc = build_encoder(VOCAB, _cfg(family, layers=2), causal=True).eval()
    ids, _ = _batch(3)
    ids = ids.clamp(min=4)
    lengths = torch.full((6,), 9)
    base = enc(ids, lengths).states
    changed = ids.clone()
    changed[:, 5:] = (changed[:, 5:] + 7) % (VOCAB - 4) + 4
    after = enc(changed, lengths).states
    torch.testing.assert_close(after[:, :5], base[:, :5])
    assert not torch.allclose(after[:, 5:], base[:, 5:])


def test_bidirectional_refused_when_causal():
    with pytest.raises(SeqlabError, match="bidirectional"):
        build_encoder(VOCAB, _cfg("lstm", bidirectional=True), causal=True)


def test_bow_ignores_word_order():
    torch.manual_seed(0)
    enc = build_encoder(VOCAB, _cfg("bow")).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    lengths = torch.tensor([4])
    flipped = ids.flip(1)
    torch.testing.assert_close(enc(ids, lengths).summary, enc(flipped, lengths).summary)
    # but order-aware families do not
    rnn = build_encoder(VOCAB, _cfg("lstm")).eval()
    assert not torch.allclose(rnn(ids, lengths).summary, rnn(flipped, lengths).summary)


def test_family_table_and_unknown_name():
    assert set(FAMILIES) == {"linear", "bow", "cnn", "rnn"}
    assert {"lstm", "gru", "rnn"} <= set(ALIASES)
    with pytest.raises(SeqlabError, match="choose one of: linear, bow, cnn"):
        check_family_name("transformer")


def test_lstm_init_sets_forget_gate_bias():
    enc = build_encoder(VOCAB, _cfg("lstm"))
    bias = enc.rnn.bias_ih_l0.detach().chunk(4)
    assert torch.all(bias[1] == 1) and torch.all(bias[0] == 0)
    assert torch.all(enc.embedding.weight[0] == 0)


def test_concat_pooling_joins_each_summary_in_order():
    torch.manual_seed(0)
    joined = build_encoder(VOCAB, _cfg("gru", bidirectional=True, pooling="max+mean")).eval()
    ids, lengths = _batch()
    out = joined(ids, lengths)
    assert joined.summary_dim == 2 * joined.state_dim
    for part, kind in zip(out.summary.split(joined.state_dim, dim=-1), ("max", "mean")):
        single = build_encoder(VOCAB, _cfg("gru", bidirectional=True, pooling=kind)).eval()
        single.load_state_dict(joined.state_dict())
        torch.testing.assert_close(part, single(ids, lengths).summary)
    for bad in ("max+max", "max+median"):
        with pytest.raises(SeqlabError, match="join them with"):
            build_encoder(VOCAB, _cfg("gru", pooling=bad))


def test_pool_embeddings_adds_the_max_of_the_token_vectors_to_the_summary():
    """RCNN-style summary: the states' summary, then the max over real steps of the token
    embeddings, so a single cue word's vector reaches the head without the RNN."""
    torch.manual_seed(0)
    rcnn = build_encoder(VOCAB, _cfg("lstm", bidirectional=True, pooling="max", pool_embeddings=True)).eval()
    plain = build_encoder(VOCAB, _cfg("lstm", bidirectional=True, pooling="max")).eval()
    plain.load_state_dict(rcnn.state_dict())  # same weights: pooling the embeddings adds none
    assert rcnn.summary_dim == plain.summary_dim + 16
    ids, lengths = _batch()
    out = rcnn(ids, lengths)
    states_part, embedding_part = out.summary.split([plain.summary_dim, 16], dim=-1)
    torch.testing.assert_close(states_part, plain(ids, lengths).summary)
    vectors = rcnn.embedding(ids).masked_fill(~out.mask[..., None], float("-inf"))
    torch.testing.assert_close(embedding_part, vectors.max(dim=1).values)
    # the embedding path matters: a token's vector raised past every other one shows up as is
    with torch.no_grad():
        rcnn.embedding.weight[ids[0, 0]] = 5.0
    assert torch.all(rcnn(ids, lengths).summary[0, plain.summary_dim:] == 5.0)
