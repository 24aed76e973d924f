"""The numpy half of decoding: padding and length batching as the torch path pads
(data/batching.py), softmax, and the token choices of seqlab.decode (top-k sampling, the
stable best-first order of beam search), so the runners' outputs match torch's."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from seqlab.vocab import PAD_ID

BATCH = 64  # texts per onnxruntime call (sorted by length, so little padding)


def pad(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id lists -> ids (B, T) int64, lengths (B,) int64 (at least 1, as the torch path)."""
    lengths = np.array([max(len(s), 1) for s in seqs], dtype=np.int64)
    ids = np.full((len(seqs), int(lengths.max())), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
    return ids, lengths


def batches(sizes: list[int], batch: int = BATCH) -> Iterator[list[int]]:
    """Index lists of similar length, `batch` at a time."""
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for start in range(0, len(order), batch):
        yield order[start : start + batch]


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    peak = x.max(axis=-1, keepdims=True)
    return x - peak - np.log(np.exp(x - peak).sum(axis=-1, keepdims=True))


def draw(scores: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> np.ndarray:
    """One token per row of scores (B, V): the best with top_k=1 (greedy: torch's token
    exactly), else a draw from the row's softmax at `temperature` over its `top_k` best
    (numpy's generator: a seed repeats an ONNX draw, not the torch path's)."""
    if top_k == 1:
        return scores.argmax(axis=-1)
    logits = scores.astype(np.float64) / temperature
    if top_k is not None and top_k < logits.shape[1]:
        kth = np.sort(logits, axis=1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    return np.array([rng.choice(len(p), p=p) for p in softmax(logits)])


def best_first(values: np.ndarray, width: int) -> np.ndarray:
    """The indices of the `width` largest values, best first, ties in index order: exactly
    np.argsort(-values, kind="stable")[:width], without sorting the whole beam x vocabulary
    (that sort was half the time of a batched beam search)."""
    if width >= values.size:
        return np.argsort(-values, kind="stable")[:width]
    threshold = np.partition(values, values.size - width)[values.size - width]
    candidates = np.flatnonzero(values >= threshold)  # every tie of the threshold, in index order
    return candidates[np.argsort(-values[candidates], kind="stable")][:width]
