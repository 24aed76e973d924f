"""Pretrained word vectors: text formats, matching, streaming errors, copying into a model."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from seqlab.data.embeddings import apply_vectors, load_vectors, vector_dim
from seqlab.errors import SeqlabError

VOCAB = ["<pad>", "<unk>", "<bos>", "<eos>", "the", "movie", "great", "zzz"]
VECTORS = {"the": [0.1, 0.2, 0.3], "movie": [1.0, -1.0, 0.5], "great": [2.0, 0.0, -2.0], "other": [9, 9, 9]}


def write_vectors(path: Path, rows: dict[str, list[float]], header: bool = False) -> Path:
    lines = [f"{len(rows)} 3"] if header else []
    lines += [w + " " + " ".join(str(x) for x in v) for w, v in rows.items()]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name,header", [("glove.txt", False), ("wiki.vec", True), ("vectors.txt.gz", True)])
def test_formats_give_the_same_matrix(tmp_path, name, header):
    path = write_vectors(tmp_path / name, VECTORS, header=header)
    matrix, found = load_vectors(path, VOCAB, 3)
    assert matrix.shape == (8, 3) and matrix.dtype == np.float32
    assert found == pytest.approx(3 / 4)  # the, movie, great of 4 real words
    np.testing.assert_allclose(matrix[VOCAB.index("movie")], [1.0, -1.0, 0.5])
    assert not matrix[0].any()  # padding row is zero
    assert matrix[VOCAB.index("zzz")].any()  # random, not zero
    assert vector_dim(path) == 3


def test_dict_vocabulary_case_fallback_and_duplicates(tmp_path):
    rows = {"The": [5, 5, 5], "the": [1, 1, 1], "Movie": [2, 2, 2]}
    path = tmp_path / "cased.txt"
    path.write_text("The 5 5 5\nthe 1 1 1\nMovie 2 2 2\nmovie 3 3 3\nthe 7 7 7\n")
    matrix, found = load_vectors(path, {"<pad>": 0, "the": 1, "movie": 2, "film": 3})
    assert rows and matrix.shape == (4, 3)
    np.testing.assert_allclose(matrix[1], [1, 1, 1])  # the exact word wins over "The"; first line kept
    np.testing.assert_allclose(matrix[2], [3, 3, 3])  # exact "movie" replaces the "Movie" fallback
    assert found == pytest.approx(2 / 3)


def test_lowercase_fallback_alone(tmp_path):
    path = tmp_path / "cased.txt"
    path.write_text("Paris 1 2 3\n")
    matrix, found = load_vectors(path, ["<pad>", "paris"], 3)
    np.testing.assert_allclose(matrix[1], [1, 2, 3])
    assert found == 1.0


def test_word_with_spaces_is_read_whole(tmp_path):
    path = tmp_path / "glove840.txt"
    path.write_text(". . . 0.5 0.5 0.5\nthe 1 2 3\n")
    matrix, _ = load_vectors(path, ["<pad>", ". . .", "the"], 3)
    np.testing.assert_allclose(matrix[1], [0.5, 0.5, 0.5])


def test_wrong_dimension_names_the_line(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("the 1 2 3\nmovie 1 2\n")
    with pytest.raises(SeqlabError) as err:
        load_vectors(path, VOCAB, 3)
    assert str(err.value).startswith(f"{path}:2: expected a word and 3 numbers, got 2 numbers")
    assert "\n" not in str(err.value)
    path.write_text("the 1 2 3\nunrelated 1 2 3 4\n")  # also for words outside the vocabulary
    with pytest.raises(SeqlabError, match=r"v\.txt:2: expected a word and 3 numbers, got 4"):
        load_vectors(path, VOCAB, 3)


def test_header_disagreeing_with_dim(tmp_path):
    path = write_vectors(tmp_path / "v.vec", VECTORS, header=True)
    with pytest.raises(SeqlabError, match=r"v\.vec:1: the file's vectors have 3 dimensions, the model's embeddings 100"):
        load_vectors(path, VOCAB, 100)


def test_malformed_number_names_the_line(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("the 1 2 3\n\nmovie 1 x2 3\n")
    with pytest.raises(SeqlabError, match=r"v\.txt:3: 'x2' is not a number"):
        load_vectors(path, VOCAB, 3)


def test_missing_empty_and_corrupt_files(tmp_path):
    with pytest.raises(SeqlabError, match="no such file"):
        load_vectors(tmp_path / "none.txt", VOCAB, 3)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(SeqlabError, match="empty"):
        load_vectors(tmp_path / "empty.txt", VOCAB, 3)
    (tmp_path / "bad.txt.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(SeqlabError, match="bad.txt.gz"):
        load_vectors(tmp_path / "bad.txt.gz", VOCAB, 3)


def test_missing_words_are_seeded_and_scaled(tmp_path):
    path = write_vectors(tmp_path / "v.txt", VECTORS)
    a, _ = load_vectors(path, VOCAB, 3, seed=1)
    b, _ = load_vectors(path, VOCAB, 3, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, load_vectors(path, VOCAB, 3, seed=2)[0])


def test_apply_vectors_and_freeze(tmp_path):
    matrix, _ = load_vectors(write_vectors(tmp_path / "v.txt", VECTORS), VOCAB, 3)
    emb = torch.nn.Embedding(8, 3, padding_idx=0)
    apply_vectors(emb, matrix, freeze=True)
    assert torch.equal(emb.weight.detach(), torch.from_numpy(matrix))
    assert not emb.weight.requires_grad
    apply_vectors(emb, matrix)
    assert emb.weight.requires_grad
    with pytest.raises(SeqlabError, match="embed-dim"):
        apply_vectors(torch.nn.Embedding(8, 4), matrix)


def test_apply_vectors_to_a_bag_with_bigram_rows(tmp_path):
    matrix, _ = load_vectors(write_vectors(tmp_path / "v.txt", VECTORS), VOCAB, 3)
    bag = torch.nn.EmbeddingBag(8 + 5, 3, mode="mean")
    extra = bag.weight.detach()[8:].clone()
    apply_vectors(bag, matrix, freeze=True)
    assert torch.equal(bag.weight.detach()[:8], torch.from_numpy(matrix))
    assert torch.equal(bag.weight.detach()[8:], extra)
    bag(torch.tensor([[4, 5, 9, 10]])).sum().backward()
    assert not bag.weight.grad[:8].any() and bag.weight.grad[9].any()
