"""The generated order-sensitive demo corpus: twins, determinism, and the bag-of-words claim."""

import re
from collections import Counter

import pytest

from seqlab.data.builtin import PROBE_PAIRS, make_corpus
from seqlab.errors import SeqlabError
from seqlab.linear import LinearClassifier


@pytest.fixture(scope="module")
def corpus():
    return make_corpus()


def _bag(text: str) -> tuple[str, ...]:
    return tuple(sorted(text.split()))


def _words(text: str) -> Counter:
    return Counter(re.findall(r"[\w']+", text.lower()))


def _xy(examples):
    return [e["text"] for e in examples], [e["label"] for e in examples]


def test_sizes_and_format(corpus):
    assert {name: len(split) for name, split in corpus.items()} == {
        "train": 4000,
        "validation": 500,
        "test": 1000,
    }
    for split in corpus.values():
        for example in split:
            assert set(example) == {"text", "label"}
            assert example["label"] in ("pos", "neg")
            text = example["text"]
            assert text == text.lower() == " ".join(text.split())
            assert len(text.split()) < 20


def test_deterministic_for_a_seed():
    assert make_corpus(200, 20, 40, seed=3) == make_corpus(200, 20, 40, seed=3)
    assert make_corpus(200, 20, 40, seed=3) != make_corpus(200, 20, 40, seed=4)


def test_every_example_has_its_twin_in_the_same_split(corpus):
    for split in corpus.values():
        labels_by_bag: dict[tuple[str, ...], Counter] = {}
        for example in split:
            labels_by_bag.setdefault(_bag(example["text"]), Counter())[example["label"]] += 1
        for counts in labels_by_bag.values():
            # each bag of words occurs equally often as pos and as neg: no unigram signal
            assert counts["pos"] == counts["neg"] >= 1


def test_splits_are_disjoint_and_texts_unique(corpus):
    texts = [set(e["text"] for e in split) for split in corpus.values()]
    assert sum(len(t) for t in texts) == sum(len(split) for split in corpus.values())
    train, validation, test = texts
    assert not (train & validation) and not (train & test) and not (validation & test)


def test_shuffled_within_split(corpus):
    labels = [e["label"] for e in corpus["train"][:100]]
    assert labels != sorted(labels)
    assert 30 <= labels.count("pos") <= 70


def test_small_vocabulary(corpus):
    vocabulary = {w for split in corpus.values() for e in split for w in e["text"].split()}
    assert len(vocabulary) < 300


def test_bad_sizes_raise():
    with pytest.raises(SeqlabError, match="even"):
        make_corpus(n_train=3)
    with pytest.raises(SeqlabError, match="even"):
        make_corpus(n_test=-2)


def test_probe_pairs_are_bag_identical_minimal_pairs(corpus):
    assert 10 <= len(PROBE_PAIRS) <= 16
    assert PROBE_PAIRS[0] == (
        "The movie my friend has not seen is good",
        "The movie my friend has seen is not good",
    )
    for positive, negative in PROBE_PAIRS:
        assert positive != negative
        assert _words(positive) == _words(negative)
    all_texts = {e["text"] for split in corpus.values() for e in split}
    unseen = [p for p in PROBE_PAIRS if p[0].lower() not in all_texts]
    assert len(unseen) >= 4  # held-out fillers and constructions
    assert sum(p[0][0].isupper() for p in PROBE_PAIRS) >= 3  # natural capitalization


def test_unigrams_fail_but_bigrams_learn(corpus):
    x_train, y_train = _xy(corpus["train"])
    x_test, y_test = _xy(corpus["test"])
    unigram = LinearClassifier(features="count").fit(x_train, y_train)
    assert unigram.score(x_test, y_test) <= 0.60  # exactly 0.5: twins get equal scores
    bigram = LinearClassifier(features="count", ngram_max=2).fit(x_train, y_train)
    assert bigram.score(x_test, y_test) >= 0.85
