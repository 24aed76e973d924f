"""seqlab.introspect: the inspect document of the live page, for each family and task shape,
on small untrained models (the shapes and the exactness of what it reports do not need
training): every layer and direction, cnn windows, bow shares, prefix verdicts, occlusion,
tags, next tokens, attention, and the size limits."""

from __future__ import annotations

import pytest
import torch

from seqlab.bundle import Bundle
from seqlab.config import build_config
from seqlab.data.stream import TextSource
from seqlab.errors import SeqlabError
from seqlab.introspect import InspectLimits, inspect
from seqlab.tasks import make_task

REVIEWS = [{"text": "the movie my friend has not seen is good", "label": "pos"},
           {"text": "the movie my friend has seen is not good", "label": "neg"},
           {"text": "a dull film and far too long", "label": "neg"},
           {"text": "a wonderful moving film", "label": "pos"}] * 3
TEXT = "the movie my friend has not seen is good"


def _bundle(tmp_path, task_name: str, family: str, train, **settings) -> Bundle:
    cfg = build_config(task=task_name, family=family, settings={
        "model.embed_dim": 8, "model.hidden_dim": 6, "model.filters": 5, "model.dropout": 0.0,
        "data.tokenizer": "word", **settings})
    task = make_task(cfg)
    task.fit_vocab(train)
    torch.manual_seed(0)
    return Bundle(tmp_path, cfg, task, task.build_model().eval(), {})


def _classifier(tmp_path, family: str, **settings) -> Bundle:
    return _bundle(tmp_path, "classify", family, REVIEWS, **settings)


@torch.no_grad()
def _probs(bundle: Bundle, ids: list[int]) -> torch.Tensor:
    return torch.softmax(bundle.model(torch.tensor([ids]), torch.tensor([len(ids)])), dim=-1)[0]


@pytest.mark.parametrize("bidirectional,layers", [(False, 2), (True, 2)])
def test_recurrent_document_has_every_layer_and_direction(tmp_path, bidirectional, layers):
    bundle = _classifier(tmp_path, "gru", **{"model.bidirectional": bidirectional, "model.layers": layers,
                                             "model.pooling": "last"})
    doc = inspect(bundle, TEXT)
    n = len(TEXT.split())
    assert doc["tokens"] == TEXT.split() and not doc["truncated"]
    names = [layer["name"] for layer in doc["layers"]]
    expected = ([f"layer {i} {d}" for i in (1, 2) for d in ("forward", "backward")] if bidirectional
                else ["layer 1", "layer 2"])
    assert names == expected
    for layer in doc["layers"]:
        assert layer["units"] == 6 and layer["shown"] == list(range(6))
        assert len(layer["values"]) == n and all(len(row) == 6 for row in layer["values"])
    # the top layer (both directions side by side) is what the encoder's contract returns
    ids = torch.tensor([[bundle.task.tokenizer.token_to_id(w) for w in TEXT.split()]])
    states = bundle.model.encoder(ids, torch.tensor([n])).states[0]
    top = [layer["values"] for layer in doc["layers"][-(2 if bidirectional else 1):]]
    joined = torch.cat([torch.tensor(v) for v in top], dim=-1)
    assert torch.allclose(joined, states, atol=1e-3)


@pytest.mark.parametrize("family,settings", [
    ("gru", {"model.bidirectional": True, "model.pooling": "last+max+mean"}),  # backward reread per prefix
    ("lstm", {"model.bidirectional": True, "model.layers": 2, "model.pooling": "max"}),  # every prefix reread
    ("rnn", {"model.bidirectional": False, "model.layers": 2, "model.pooling": "last+mean"}),  # one reading
    ("lstm", {"model.bidirectional": True, "model.pooling": "max", "model.pool_embeddings": True}),  # RCNN
    ("cnn", {}), ("bow", {})])
def test_prefix_verdicts_equal_the_model_on_each_prefix_and_occlusion_drops(tmp_path, family, settings):
    bundle = _classifier(tmp_path, family, **settings)
    doc = inspect(bundle, TEXT)
    out = doc["outputs"]
    ids = [bundle.task.tokenizer.token_to_id(w) for w in TEXT.split()]
    steps = torch.tensor(out["steps"]["values"])
    assert steps.shape == (len(ids), 2)
    for t in (0, 3, len(ids) - 1):
        assert torch.allclose(steps[t], _probs(bundle, ids[: t + 1]), atol=1e-3)
    label = bundle.labels.index(out["prediction"]["label"])
    full = _probs(bundle, ids)
    assert out["prediction"]["probabilities"][bundle.labels[label]] == pytest.approx(float(full[label]), abs=1e-4)
    attribution = out["attribution"]
    assert len(attribution["values"]) == len(ids)
    for t in (0, 5):
        if family == "bow":  # occlusion: the drop in p(label) without token t
            assert attribution["method"] == "occlusion"
            without = _probs(bundle, ids[:t] + ids[t + 1:])
            assert attribution["values"][t] == pytest.approx(float(full[label] - without[label]), abs=1e-3)
        else:  # gradient x input ~ the change in p(label) when token t's vector grows by a small share
            assert attribution["method"] == "gradient x input"
            eps = 1e-3

            def grow(module, args, vectors, t=t, eps=eps):
                vectors = vectors.clone()
                vectors[:, t] *= 1 + eps
                return vectors

            hook = bundle.model.encoder.token_embedding.register_forward_hook(grow)
            grown = _probs(bundle, ids)
            hook.remove()
            assert attribution["values"][t] == pytest.approx(float(grown[label] - full[label]) / eps, abs=2e-3)


def test_cnn_windows_win_max_pooling_and_bow_shares_sum_to_the_bag(tmp_path):
    cnn = _classifier(tmp_path, "cnn", **{"model.kernel_sizes": [2, 3]})
    doc = inspect(cnn, TEXT)
    assert [layer["name"] for layer in doc["layers"]] == ["width 2", "width 3"]
    for k, layer in zip((2, 3), doc["layers"]):
        windows, best = doc["views"][f"width {k} window"], doc["views"][f"width {k} max"]
        acts = torch.tensor(layer["values"])  # (T, F)
        assert len(windows) == len(best) == 5
        for f, (start, end) in enumerate(windows):
            assert 0 <= start <= end < len(doc["tokens"]) and end - start < k
            assert best[f] == pytest.approx(float(acts[:, f].max()), abs=1e-3)
    bow = _classifier(tmp_path, "bow", **{"model.bigrams": False})  # the order-free bag (the recipe adds bigrams)
    doc = inspect(bow, TEXT)
    share = torch.tensor(doc["views"]["bag share"]["values"]).sum(dim=0)  # (E,)
    ids = torch.tensor([[bow.task.tokenizer.token_to_id(w) for w in TEXT.split()]])
    assert torch.allclose(share, bow.model.encoder.bag(ids)[0], atol=1e-3)
    shuffled = inspect(bow, " ".join(reversed(TEXT.split())))
    assert shuffled["outputs"]["prediction"] == doc["outputs"]["prediction"]  # order-free


def test_limits_bound_tokens_and_units(tmp_path):
    bundle = _classifier(tmp_path, "gru", **{"model.hidden_dim": 20, "model.bidirectional": False,
                                             "model.pooling": "last"})
    doc = inspect(bundle, " ".join([TEXT] * 3), InspectLimits(max_tokens=7, max_units=4))
    assert doc["truncated"] and len(doc["tokens"]) == 7
    layer = doc["layers"][0]
    assert layer["units"] == 20 and len(layer["shown"]) == 4 and layer["shown"] == sorted(layer["shown"])
    assert len(layer["values"]) == 7 and len(layer["values"][0]) == 4
    assert len(doc["outputs"]["steps"]["values"]) == 7
    with pytest.raises(SeqlabError, match="empty"):
        inspect(bundle, "   ")


def test_tagger_lm_and_translator_outputs(tmp_path):
    sentences = [{"tokens": ["the", "cat", "sat"], "tags": ["DET", "NOUN", "VERB"]},
                 {"tokens": ["a", "dog", "ran"], "tags": ["DET", "NOUN", "VERB"]}] * 3
    tagger = _bundle(tmp_path, "tag", "lstm", sentences, **{"model.char_dim": 4, "model.char_filters": 3})
    out = inspect(tagger, "the dog sat down")["outputs"]
    assert len(out["tags"]) == len(out["confidence"]) == 4
    assert all(t in tagger.labels for t in out["tags"]) and all(0 < c <= 1 for c in out["confidence"])

    lm = _bundle(tmp_path, "lm", "lstm", TextSource(text="the cat sat on the mat. " * 20),
                 **{"data.tokenizer": "char"})
    doc = inspect(lm, "the cat")
    assert len(doc["tokens"]) == 7 and len(doc["outputs"]["next"]) == 7
    assert all(len(top) == 5 for top in doc["outputs"]["next"])
    assert doc["outputs"]["surprise"][-1] is None and doc["outputs"]["surprise"][0] > 0

    pairs = [{"source": "ein hund rennt", "target": "a dog runs"},
             {"source": "zwei katzen", "target": "two cats"}] * 5
    mt = _bundle(tmp_path, "translate", "gru", pairs, **{"model.beam": 3, "model.attention": "general",
                                                        "data.max_length": 8})
    doc = inspect(mt, "ein hund")
    out = doc["outputs"]
    assert len(doc["tokens"]) == 2
    assert [layer["name"] for layer in doc["layers"]] == ["layer 1 forward", "layer 1 backward"]
    assert len(out["n_best"]) == 3 and out["translation"] == out["n_best"][0]["translation"]
    att = out["attention"]
    assert att["source"] == doc["tokens"] and [t.lstrip("\u2581") for t in att["source"]] == ["ein", "hund"]
    assert len(att["weights"]) == len(att["target"]) and all(len(r) == 2 for r in att["weights"])
    assert all(abs(sum(r) - 1) < 1e-2 for r in att["weights"])


def test_linear_classifier_reads_words_with_prefix_verdicts_and_occlusion(tmp_path):
    cfg = build_config(task="classify", family="linear")
    task = make_task(cfg)
    from seqlab.families import family_of

    model, _ = task.fit_estimator(family_of("linear").implementation, REVIEWS)
    bundle = Bundle(tmp_path, cfg, task, model, {})
    doc = inspect(bundle, TEXT)
    assert doc["tokens"] == TEXT.split() and doc["layers"] == [] and doc["views"] == {}
    out = doc["outputs"]
    assert out["attribution"]["method"] == "occlusion" and len(out["attribution"]["values"]) == len(doc["tokens"])
    prefix = model.predict_proba([" ".join(TEXT.split()[:3])])[0]
    assert out["steps"]["values"][2] == pytest.approx(prefix.tolist(), abs=1e-4)
