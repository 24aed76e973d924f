"""Training options: --embeddings / --freeze-embeddings and --cv K. Pretrained word vectors
initialize the input tokens' table of any neural family, the share found is reported, frozen rows never move, and the
embedding size follows the file unless set."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

import seqlab
from helpers import run_cli

WORDS = ["good", "bad", "film", "plot", "great", "awful", "the", "a"]


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(60):
        words = list(rng.choice(WORDS, size=5))
        label = "pos" if words.count("good") + words.count("great") >= words.count("bad") + words.count("awful") else "neg"
        rows.append(f"{' '.join(words)},{label}")
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\n" + "\n".join(rows) + "\n")
    vectors = tmp_path / "vectors.vec.gz"
    lines = [f"{len(WORDS) - 2} 6"] + [f"{w} " + " ".join(f"{x:.4f}" for x in rng.normal(size=6))
                                       for w in WORDS[:-2]]
    with gzip.open(vectors, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return csv, vectors


def _vector_of(path, word):
    with gzip.open(path, "rt") as fh:
        for line in fh:
            parts = line.split()
            if parts[0] == word:
                return torch.tensor([float(x) for x in parts[1:]])
    raise KeyError(word)


@pytest.mark.parametrize("family", ["cnn", "gru", "bow"])
def test_frozen_vectors_initialize_and_stay(family, data, tmp_path):
    csv, vectors = data
    bundle = seqlab.train(out=tmp_path / family, data=str(csv), family=family, embeddings=str(vectors),
                          freeze_embeddings=True, epochs=2, progress=False, max_vocab=None)
    assert bundle.cfg.model.embed_dim == 6  # from the file
    found = bundle.metrics["pretrained_vectors_found"]
    assert 0.4 < found < 1.0  # 6 of 8 words, plus the special tokens that no file has
    table = bundle.model.encoder.token_embedding.weight
    tok = bundle.task.tokenizer
    torch.testing.assert_close(table[tok.token_to_id("good")], _vector_of(vectors, "good"))


def test_cli_reports_the_share_and_refuses_a_wrong_size(data, tmp_path, capsys):
    csv, vectors = data
    code, _, err = run_cli(capsys, "train", "--data", str(csv), "--family", "cnn", "--embeddings", str(vectors),
                           "--epochs", "1", "--no-progress", "--out", str(tmp_path / "a"))
    assert code == 0 and "of the" in err and "vocabulary found in" in err
    code, _, err = run_cli(capsys, "train", "--data", str(csv), "--family", "cnn", "--embeddings", str(vectors),
                           "--embed-dim", "8", "--epochs", "1", "--out", str(tmp_path / "b"))
    assert code == 2 and err.count("\n") == 1 and "seqlab: error:" in err


def test_cv_from_the_cli(data, tmp_path, capsys):
    csv, _ = data
    out = tmp_path / "cv"
    code, stdout, err = run_cli(capsys, "train", "--data", str(csv), "--family", "linear", "--cv", "3",
                                "--out", str(out))
    assert code == 0, err
    assert "3-fold cross-validation: accuracy" in stdout and "±" in stdout
    assert (out / "crossval.md").is_file() and not (out / "config.json").exists()
    code, _, err = run_cli(capsys, "train", "--data", str(csv), "--family", "linear", "--cv", "1",
                           "--out", str(tmp_path / "x"))
    assert code == 2 and "--cv must be at least 2" in err


def test_classify_recipe_per_family_applies_only_to_classify_and_yields_to_the_user():
    from seqlab.config import build_config, recipe_summary

    lstm = build_config(task="classify", data="x.csv", family="lstm")
    assert (lstm.model.bidirectional, lstm.model.pooling, lstm.train.ema, lstm.train.lr) == (True, "max", 0.999, 0.003)
    assert lstm.model.cell == "lstm" and lstm.train.epochs == 10
    cnn = build_config(task="classify", data="x.csv", family="cnn")
    assert cnn.model.dropout == 0.5 and cnn.model.word_dropout == 1.0  # the family's, then the recipe's
    lm = build_config(task="lm", data="x.txt", family="lstm")
    assert not lm.model.bidirectional and lm.train.ema == 0.0  # a causal task keeps its own defaults
    mine = build_config(task="classify", data="x.csv", family="gru", settings={"bidirectional": False, "ema": 0})
    assert not mine.model.bidirectional and mine.train.ema == 0
    text = recipe_summary("classify", "x.csv", "gru", {"model.bidirectional"})
    assert "classify recipe for gru" in text and "bidirectional" not in text and "ema=0.999" in text


def test_classifiers_keep_long_documents_to_1000_tokens_unless_told():
    from seqlab.config import build_config, recipe_summary

    for family in ("bow", "cnn", "lstm"):
        assert build_config(task="classify", data="x.csv", family=family).data.max_length == 1000
    assert build_config(task="tag", data="x.conllu", family="lstm").data.max_length == 400  # not a classifier
    assert build_config(task="classify", data="names", family="cnn").data.max_length == 32  # the dataset's own
    mine = build_config(task="classify", data="x.csv", family="cnn", settings={"max_length": 200})
    assert mine.data.max_length == 200
    assert "classify defaults: max_length=1000" in recipe_summary("classify", "x.csv", "cnn", set())


def test_train_says_which_recipe_it_used(data, tmp_path, capsys):
    csv, _ = data
    code, stdout, _ = run_cli(capsys, "train", "--data", str(csv), "--family", "bow", "--epochs", "1",
                              "--no-progress", "--out", str(tmp_path / "r"))
    recipe = stdout.split("recipe:")[1]
    assert code == 0 and "classify recipe for bow: word_dropout=1.0" in recipe and "epochs" not in recipe
