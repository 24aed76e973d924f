"""Pretrained word vectors: GloVe / word2vec text files and fastText `.vec` files.

    matrix, found = load_vectors("glove.6B.100d.txt.gz", tokenizer_vocab, dim=100)
    apply_vectors(model.encoder.embedding, matrix, freeze=False)   # Kim's CNN-non-static

Format: one word per line followed by its `dim` numbers, separated by spaces; an optional
first line `count dim` (word2vec / fastText header); gzip accepted (`.gz`). Files are read as
a stream (the real ones are gigabytes): only the lines of words in the vocabulary are parsed
into numbers, the others are only checked for their field count. GloVe 840B's few words that
contain spaces are read whole (the word is everything before the last `dim` fields).

Matching: a vocabulary token takes the vector of the same word; failing that, of the first
word that lowercases to it (vocabularies are lowercased by default, word2vec's GoogleNews
vectors are cased). Tokens not found get random vectors N(0, s^2), s the standard deviation
of the vectors found (Kim 2014 matched the pretrained variance the same way), seeded; the
padding token's row is zero. The share reported is over the vocabulary's real words (the
special tokens are not counted).

Errors are one line naming file:line: a vector of the wrong dimension, a number that is not
a number, a header that disagrees with `dim`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from seqlab.errors import SeqlabError
from seqlab.files import check_file, open_text_lines
from seqlab.vocab import PAD, SPECIAL_TOKENS


def _index(vocabulary: Sequence[str] | Mapping[str, int]) -> tuple[dict[str, int], int]:
    """(token -> row, number of rows) from a list (row = position) or a token -> id map."""
    if isinstance(vocabulary, Mapping):
        index = dict(vocabulary)
        size = max(index.values(), default=-1) + 1
    else:
        index = {token: i for i, token in enumerate(vocabulary)}
        size = len(vocabulary)
    if size == 0:
        raise SeqlabError("the vocabulary is empty: nothing to look up in the vector file")
    return index, size


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _header_dim(line: str) -> int | None:
    """The dim of a `count dim` header line, or None when the line is a vector."""
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[1])
    return None


def _split(line: str, dim: int, where: str) -> tuple[str, list[str]]:
    """(word, its dim number fields) or a one-line error naming `where` (file:line)."""
    parts = line.rsplit(" ", dim)
    if len(parts) < dim + 1 or not parts[0]:
        got = len(line.split()) - 1
        raise SeqlabError(
            f"{where}: expected a word and {dim} numbers, got {max(got, 0)} numbers; "
            "wrong --embeddings file or dimension?"
        )
    word = parts[0]
    if " " in word and _is_number(word.rsplit(" ", 1)[1]):  # more numbers than dim
        got = len(line.split()) - 1
        raise SeqlabError(
            f"{where}: expected a word and {dim} numbers, got {got} numbers; "
            "wrong --embeddings file or dimension?"
        )
    return word, parts[1:]


def _parse(fields: list[str], where: str) -> np.ndarray:
    try:
        return np.asarray(fields, dtype=np.float32)
    except ValueError:
        bad = next((f for f in fields if not _is_number(f)), "?")
        raise SeqlabError(f"{where}: {bad[:30]!r} is not a number; is this a text vector file?") from None


def vector_dim(path: str | Path) -> int:
    """The dimension of a vector file: from its header, else from its first vector line."""
    path = Path(path)
    check_file(path)
    for number, line in open_text_lines(path):
        line = line.rstrip()
        if not line:
            continue
        header = _header_dim(line)
        if header is not None:
            return header
        dim = len(line.split()) - 1
        if dim < 1:
            raise SeqlabError(f"{path}:{number}: expected a word and its numbers, got {line[:40]!r}")
        return dim
    raise SeqlabError(f"{path}: the vector file is empty")


def load_vectors(
    path: str | Path,
    vocabulary: Sequence[str] | Mapping[str, int],
    dim: int | None = None,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """(matrix (V, dim) float32 in the vocabulary's row order, share of the vocabulary found).

    dim: the model's embedding size; the file must have it (None: take the file's own)."""
    path = Path(path)
    check_file(path)
    index, size = _index(vocabulary)
    if dim is None:
        dim = vector_dim(path)
    if dim < 1:
        raise SeqlabError(f"embedding dimension must be positive, got {dim}")
    lower: dict[str, list[int]] = {}
    for token, row in index.items():
        lower.setdefault(token.lower(), []).append(row)
    matrix = np.zeros((size, dim), dtype=np.float32)
    exact = np.zeros(size, dtype=bool)
    found = np.zeros(size, dtype=bool)
    first = True
    for number, raw in open_text_lines(path):
        line = raw.rstrip()
        if not line:
            continue
        where = f"{path}:{number}"
        if first:
            first = False
            header = _header_dim(line)
            if header is not None:
                if header != dim:
                    raise SeqlabError(
                        f"{where}: the file's vectors have {header} dimensions, the model's embeddings "
                        f"{dim}; set --embed-dim {header} or use another file"
                    )
                continue
        # cheap check first: most lines are words outside the vocabulary
        word, _, rest = line.partition(" ")
        if rest.count(" ") == dim - 1 and word:
            fields = None
        else:
            word, fields = _split(line, dim, where)
        rows = [index[word]] if word in index else []
        if word in index and exact[index[word]]:
            continue  # a duplicate line: the first one counts
        if not rows:
            rows = [r for r in lower.get(word.lower(), ()) if not found[r]]
            if not rows:
                continue
        vector = _parse(fields if fields is not None else rest.split(" "), where)
        if vector.shape[0] != dim:
            raise SeqlabError(f"{where}: expected a word and {dim} numbers, got {vector.shape[0]} numbers")
        for row in rows:
            matrix[row] = vector
            found[row] = True
        if word in index:
            exact[index[word]] = True
    if first:
        raise SeqlabError(f"{path}: the vector file is empty")
    specials = {index[t] for t in SPECIAL_TOKENS if t in index}
    words = [r for r in range(size) if r not in specials]
    found_words = int(found[words].sum()) if words else 0
    share = found_words / len(words) if words else 0.0
    values = matrix[found]
    scale = float(values.std()) if values.size else 0.0
    scale = scale if scale > 0 and math.isfinite(scale) else 0.1
    rng = np.random.default_rng(seed)
    missing = ~found
    matrix[missing] = rng.normal(0.0, scale, size=(int(missing.sum()), dim)).astype(np.float32)
    if PAD in index:
        matrix[index[PAD]] = 0.0
    return matrix, share


def apply_vectors(embedding, matrix: np.ndarray, *, freeze: bool = False) -> None:
    """Copy `matrix` (V, dim) into the first V rows of a torch nn.Embedding / EmbeddingBag;
    rows past V (the bow family's hashed bigram buckets) keep their own initialization.
    `freeze` keeps the V copied rows fixed during training (Kim's CNN-static): the whole
    table's gradient is turned off, or, when it has extra rows, the copied rows' gradient is
    zeroed by a hook (so Adam never moves them: zero gradients keep its moments at zero)."""
    import torch

    weight = embedding.weight
    rows, dim = matrix.shape
    if weight.shape[1] != dim or weight.shape[0] < rows:
        raise SeqlabError(
            f"the embedding table is {tuple(weight.shape)}, the vectors {tuple(matrix.shape)}: "
            "the vocabulary or --embed-dim differ"
        )
    with torch.no_grad():
        weight[:rows].copy_(torch.from_numpy(matrix).to(weight.dtype))
    if weight.shape[0] == rows:
        weight.requires_grad_(not freeze)
    elif freeze:
        def keep_vectors(grad: torch.Tensor) -> torch.Tensor:
            grad = grad.clone()
            grad[:rows] = 0
            return grad

        weight.register_hook(keep_vectors)
