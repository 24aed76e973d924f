"""Linear bag-of-words baselines: learning, NB scaling, tokenization, save/load without pickle."""

import json
import random

import numpy as np
import pytest

from seqlab.errors import SeqlabError
from seqlab.linear import (
    JSON_NAME,
    WEIGHTS_NAME,
    LinearClassifier,
    LinearConfig,
    tokenize,
)

GOOD = ["good", "great", "wonderful", "brilliant", "moving", "fun"]
BAD = ["bad", "awful", "boring", "dull", "terrible", "weak"]
FILLER = ["the", "movie", "film", "plot", "was", "a", "i", "it", "and", "acting", "really"]


def _reviews(n: int, seed: int, labels=("pos", "neg")):
    rng = random.Random(seed)
    words = {"pos": GOOD, "neg": BAD, "meh": ["okay", "fine", "average", "mixed"]}
    texts, ys = [], []
    for i in range(n):
        label = labels[i % len(labels)]
        tokens = rng.sample(FILLER, 5) + rng.sample(words[label], 2)
        rng.shuffle(tokens)
        texts.append(" ".join(tokens))
        ys.append(label)
    return texts, ys


@pytest.fixture(scope="module")
def data():
    return _reviews(120, seed=0), _reviews(60, seed=1)


def test_tokenize_breaks_apostrophes_and_single_letters():
    text = "I <br />liked it.<br/><BR>A film, don't miss it!"
    assert tokenize(text) == ["i", "liked", "it", "a", "film", "don't", "miss", "it"]
    assert tokenize("A b", lowercase=False) == ["A", "b"]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"features": "count"},
        {"features": "binary"},
        {"ngram_max": 2, "C": 10.0},
        {"features": "binary", "nb": True},
        {"features": "tfidf", "nb": True, "ngram_max": 2},
        {"classifier": "mnb"},
        {"classifier": "mnb", "ngram_max": 2, "alpha": 1.0},
        {"punctuation": False},
    ],
)
def test_fit_predict_learns(data, options):
    (x_train, y_train), (x_test, y_test) = data
    model = LinearClassifier(**options)
    assert model.fit(x_train, y_train) is model
    assert model.labels_ == ["neg", "pos"]
    probs = model.predict_proba(x_test)
    assert probs.shape == (len(x_test), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    predictions = model.predict(x_test)
    assert set(predictions) <= {"neg", "pos"}
    assert model.score(x_test, y_test) >= 0.9
    assert model.n_parameters_ == model.coef_.size + model.intercept_.size
    assert model.coef_.shape == (1, len(model.vocabulary_))


def test_config_fields_and_defaults():
    config = LinearConfig()
    assert config.ngram_max == 1 and config.features == "tfidf" and not config.nb
    model = LinearClassifier(config, ngram_max=2)
    assert model.config.ngram_max == 2 and config.ngram_max == 1


def test_multiclass_softmax_and_one_vs_rest_nb(tmp_path):
    (x_train, y_train) = _reviews(150, seed=2, labels=("pos", "neg", "meh"))
    (x_test, y_test) = _reviews(60, seed=3, labels=("pos", "neg", "meh"))
    for nb in (False, True):
        model = LinearClassifier(features="binary", nb=nb).fit(x_train, y_train)
        assert model.labels_ == ["meh", "neg", "pos"]
        assert model.coef_.shape[0] == 3
        probs = model.predict_proba(x_test)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
        assert model.score(x_test, y_test) >= 0.9
        loaded = LinearClassifier.load(model.save(tmp_path / f"nb{nb}"))
        np.testing.assert_allclose(loaded.predict_proba(x_test), probs, atol=1e-6)


def test_nb_ratio_is_the_log_count_ratio():
    texts = ["good good film", "good plot", "bad film", "bad bad plot"]
    model = LinearClassifier(features="binary", nb=True).fit(texts, ["pos", "pos", "neg", "neg"])
    vocab = model.vocabulary_
    # binarized counts in pos: good 2, film 1, plot 1 (+1 each, incl. bad: 1) -> |p| = 9
    # in neg: bad 2, film 1, plot 1 (+1 each, incl. good: 1) -> |q| = 9
    r = model.nb_ratio_[0]
    assert r[vocab["good"]] == pytest.approx(np.log(3 / 1), rel=1e-6)
    assert r[vocab["bad"]] == pytest.approx(np.log(1 / 3), rel=1e-6)
    assert r[vocab["film"]] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("labels", [("pos", "neg"), ("pos", "neg", "meh")])
def test_nbsvm_interpolation_mixes_naive_bayes_into_each_weight(labels):
    """beta: w' = (1 - beta) * mean|w| + beta * w and b' = beta * b, per one-vs-rest row, from the
    very fit that beta = 1 keeps as it is (the fit itself does not depend on beta)."""
    texts, ys = _reviews(90, seed=4, labels=labels)
    plain = LinearClassifier(features="binary", nb=True, ngram_max=2, beta=1.0).fit(texts, ys)
    mixed = LinearClassifier(features="binary", nb=True, ngram_max=2, beta=0.25).fit(texts, ys)
    w, b = plain.coef_.astype(np.float64), plain.intercept_.astype(np.float64)
    want = 0.75 * np.abs(w).mean(axis=1, keepdims=True) + 0.25 * w
    np.testing.assert_allclose(mixed.coef_, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixed.intercept_, 0.25 * b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mixed.nb_ratio_, plain.nb_ratio_)


def test_interpolation_defaults_to_words_only():
    """Unset beta: Wang & Manning's 0.25 over word n-grams; character n-grams (names) keep the
    plain fit, where naive Bayes is weak; a classifier without nb scaling has nothing to mix."""
    texts, ys = _reviews(90, seed=5)
    for analyzer, beta in (("word", 0.25), ("char", 1.0)):
        auto = LinearClassifier(features="binary", nb=True, analyzer=analyzer).fit(texts, ys)
        pinned = LinearClassifier(features="binary", nb=True, analyzer=analyzer, beta=beta).fit(texts, ys)
        np.testing.assert_array_equal(auto.coef_, pinned.coef_)
    plain = LinearClassifier(features="tfidf", beta=1.0).fit(texts, ys)
    np.testing.assert_array_equal(LinearClassifier(features="tfidf", beta=0.25).fit(texts, ys).coef_, plain.coef_)


def test_punctuation_marks_are_features_unless_turned_off():
    texts, labels = ["it works !", "it works ?", "great !", "broken ?"] * 5, ["pos", "neg", "pos", "neg"] * 5
    with_marks = LinearClassifier(features="count").fit(texts, labels)
    assert {"!", "?"} <= set(with_marks.vocabulary_) and with_marks.score(texts, labels) == 1.0
    without = LinearClassifier(features="count", punctuation=False).fit(texts, labels)
    assert "!" not in without.vocabulary_ and without.predict(["it works !"]) == without.predict(["it works ?"])


def test_a_model_saved_before_the_punctuation_option_loads_without_it(tmp_path):
    texts, labels = ["good film !", "bad film ?", "good plot", "bad plot"] * 3, ["pos", "neg", "pos", "neg"] * 3
    model = LinearClassifier(ngram_max=2, punctuation=False).fit(texts, labels)
    model.save(tmp_path)
    meta = json.loads((tmp_path / JSON_NAME).read_text())
    del meta["config"]["punctuation"], meta["config"]["classifier"], meta["config"]["alpha"]  # an older file
    (tmp_path / JSON_NAME).write_text(json.dumps(meta))
    loaded = LinearClassifier.load(tmp_path)
    assert loaded.config.punctuation is False
    probe = ["good ! film", "bad , plot"]  # with "!" a token, "good film" would no longer be a bigram here
    np.testing.assert_allclose(loaded.predict_proba(probe), model.predict_proba(probe), atol=1e-6)


def test_char_analyzer_learns_what_words_cannot(tmp_path):
    """Names are one word each: word n-grams see only the names met in training; character
    n-grams within the word generalize to new names by their endings."""
    train = ["Ivanov", "Petrov", "Sokolov", "Popov", "Smith", "Baker", "Turner", "Walker"] * 2
    labels = ["ru"] * 4 + ["en"] * 4 + ["ru"] * 4 + ["en"] * 4
    unseen = ["Volkov", "Miller"]
    chars = LinearClassifier(analyzer="char", ngram_max=2, lowercase=False).fit(train, labels)
    assert chars.predict(unseen) == ["ru", "en"] and "ov" in chars.vocabulary_
    words = LinearClassifier(ngram_max=2).fit(train, labels)
    probs = words.predict_proba(unseen)
    np.testing.assert_allclose(probs[0], probs[1])  # both unknown words: the same guess
    loaded = LinearClassifier.load(chars.save(tmp_path))
    assert loaded.config.analyzer == "char" and loaded.predict(unseen) == ["ru", "en"]


def test_mnb_is_multinomial_naive_bayes_on_presence():
    """Against scikit-learn's MultinomialNB fit on binarized n-gram counts: the same posteriors,
    two classes (one score row: Wang & Manning's log-count ratio and log prior ratio) and three."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    for labels in (("pos", "neg"), ("pos", "neg", "meh")):
        (x_train, y_train), (x_test, _) = _reviews(90, seed=4, labels=labels), _reviews(30, seed=5, labels=labels)
        x_train = [t + " good good" if i % 7 == 0 else t for i, t in enumerate(x_train)]  # repeats count once
        model = LinearClassifier(classifier="mnb", ngram_max=2, alpha=0.5).fit(x_train, y_train)
        vectorizer = CountVectorizer(vocabulary=model.vocabulary_, token_pattern=r"(?u)\b\w[\w']*\b|[^\w\s]",
                                     ngram_range=(1, 2), binary=True)
        reference = MultinomialNB(alpha=0.5).fit(vectorizer.transform(x_train), y_train)
        assert list(reference.classes_) == model.labels_
        np.testing.assert_allclose(model.predict_proba(x_test), reference.predict_proba(vectorizer.transform(x_test)),
                                   atol=1e-5)
        assert model.coef_.shape[0] == (1 if len(labels) == 2 else 3) and model.idf_ is None


def test_bigrams_see_word_order():
    texts = ["not bad it was good", "not good it was bad"] * 10
    labels = ["pos", "neg"] * 10
    assert LinearClassifier(features="count").fit(texts, labels).score(texts, labels) == 0.5
    bigram = LinearClassifier(features="count", ngram_max=2).fit(texts, labels)
    assert bigram.score(texts, labels) == 1.0


@pytest.mark.parametrize(
    "options",
    [
        {"ngram_max": 2},
        {"features": "count", "sublinear_tf": False},
        {"features": "binary", "nb": True, "ngram_max": 2},
        {"features": "tfidf", "nb": True, "min_df": 2},
        {"classifier": "mnb", "ngram_max": 2},
        {"punctuation": False},
    ],
)
def test_save_load_round_trip(data, tmp_path, options):
    (x_train, y_train), (x_test, _) = data
    model = LinearClassifier(**options).fit(x_train, y_train)
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([WEIGHTS_NAME, JSON_NAME])
    meta = json.loads((tmp_path / JSON_NAME).read_text())
    assert meta["labels"] == ["neg", "pos"] and meta["config"]["features"] == model.config.features
    loaded = LinearClassifier.load(tmp_path)
    assert loaded.config == model.config and loaded.labels_ == model.labels_
    assert loaded.n_parameters_ == model.n_parameters_
    texts = x_test + ["unseen words only", "", "The <br />MOVIE was GOOD"]
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)
    assert loaded.predict(texts) == model.predict(texts)


@pytest.fixture()
def saved(data, tmp_path):
    (x_train, y_train), _ = data
    LinearClassifier(ngram_max=2).fit(x_train, y_train).save(tmp_path)
    return tmp_path


def test_load_missing_files(saved, tmp_path_factory):
    with pytest.raises(SeqlabError, match="missing"):
        LinearClassifier.load(tmp_path_factory.mktemp("empty"))
    (saved / WEIGHTS_NAME).unlink()
    with pytest.raises(SeqlabError, match=WEIGHTS_NAME):
        LinearClassifier.load(saved)


def test_load_corrupt_json(saved):
    (saved / JSON_NAME).write_text("{not json")
    with pytest.raises(SeqlabError, match=JSON_NAME):
        LinearClassifier.load(saved)
    (saved / JSON_NAME).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(SeqlabError, match=JSON_NAME):
        LinearClassifier.load(saved)


def test_load_bad_config_in_json(saved):
    meta = json.loads((saved / JSON_NAME).read_text())
    meta["config"]["features"] = "embeddings"
    (saved / JSON_NAME).write_text(json.dumps(meta))
    with pytest.raises(SeqlabError, match=JSON_NAME):
        LinearClassifier.load(saved)


def test_load_corrupt_or_mismatched_weights(saved):
    meta = json.loads((saved / JSON_NAME).read_text())
    meta["vocabulary"].popitem()
    meta["vocabulary"] = {t: i for i, t in enumerate(meta["vocabulary"])}
    (saved / JSON_NAME).write_text(json.dumps(meta))
    with pytest.raises(SeqlabError, match=WEIGHTS_NAME):  # coef no longer matches
        LinearClassifier.load(saved)
    (saved / WEIGHTS_NAME).write_bytes(b"\x00garbage")
    with pytest.raises(SeqlabError, match=WEIGHTS_NAME):
        LinearClassifier.load(saved)


@pytest.mark.parametrize(
    "options",
    [
        {"features": "tf"},
        {"ngram_min": 2, "ngram_max": 1},
        {"min_df": 0},
        {"C": 0},
        {"max_features": 0},
        {"colour": "blue"},
        {"classifier": "svm"},
        {"alpha": 0},
        {"analyzer": "bytes"},
        {"beta": 0},
        {"beta": 1.5},
        {"beta": True},
    ],
)
def test_bad_options(options):
    with pytest.raises(SeqlabError):
        LinearClassifier(**options)


def test_bad_fit_inputs():
    with pytest.raises(SeqlabError, match="two labels"):
        LinearClassifier().fit(["a b", "c d"], ["pos", "pos"])
    with pytest.raises(SeqlabError, match="labels"):
        LinearClassifier().fit(["a b", "c d"], ["pos"])
    with pytest.raises(SeqlabError, match="vocabulary"):
        LinearClassifier().fit(["  ", "\t"], ["pos", "neg"])
    with pytest.raises(SeqlabError, match="vocabulary"):
        LinearClassifier(punctuation=False).fit(["!!", "??"], ["pos", "neg"])
    with pytest.raises(SeqlabError, match="not fitted"):
        LinearClassifier().predict(["a"])
    with pytest.raises(SeqlabError, match="single string"):
        LinearClassifier().fit("a text", ["pos"])
