"""Deterministic, stratified train/validation/test splits of example lists.

Stratification keeps each label's share about equal across parts (within one example per
label), which matters for small or imbalanced datasets. The method: shuffle each label's
examples, give each one its relative position (i + 0.5) / n inside its label, order all
examples by that position and cut the ordered list at the target sizes. Part sizes are
exact (largest remainder of N * fraction) and every part with a positive fraction gets at
least one example. The same input list and seed always give the same split; each part is
shuffled, so no part comes out sorted by label.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from seqlab.errors import SeqlabError

SPLIT_PARTS = ("train", "validation", "test")


def _part_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Split n into integer sizes proportional to fractions, at least 1 where positive."""
    raw = [n * f for f in fractions]
    sizes = [math.floor(r) for r in raw]
    # Largest remainder: hand out what flooring lost, biggest fractional parts first.
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - sizes[i], reverse=True)[
        : n - sum(sizes)
    ]:
        sizes[i] += 1
    for i, f in enumerate(fractions):
        if f > 0 and sizes[i] == 0:  # borrow one from the largest part
            sizes[max(range(len(sizes)), key=sizes.__getitem__)] -= 1
            sizes[i] = 1
    return sizes


def _stratified_order(codes: np.ndarray, names: Sequence[str], rng: random.Random) -> np.ndarray:
    """Positions ordered so that any contiguous slice holds each label in proportion; `codes`
    gives each example's label as an index into `names`."""
    n = len(codes)
    position, tiebreak, member = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    filled = 0
    for code in sorted(range(len(names)), key=lambda c: names[c]):  # independent of first-seen order
        members = np.flatnonzero(codes == code).tolist()
        rng.shuffle(members)
        m = len(members)
        for i, ex in enumerate(members):
            position[filled], tiebreak[filled], member[filled] = (i + 0.5) / m, rng.random(), ex
            filled += 1
    return member[np.lexsort((tiebreak, position))]


def label_codes(examples: Sequence[dict[str, Any]], key: str | None) -> tuple[np.ndarray, list[str]]:
    """Each example's str(example[key]) as an index into the returned names (one name, "",
    when not every example has the key)."""
    if key is None or not all(key in ex for ex in examples):
        return np.zeros(len(examples), dtype=np.int64), [""]
    names: dict[str, int] = {}
    codes = np.array([names.setdefault(str(ex[key]), len(names)) for ex in examples], dtype=np.int64)
    return codes, list(names)


def split_positions(codes: np.ndarray, names: Sequence[str], fractions: Sequence[float], seed: int
                    ) -> list[list[int]]:
    """The stratified split of examples given only their label codes: len(fractions) shuffled
    lists of example positions (what `carve_validation` cuts, for data kept on disk)."""
    if any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise SeqlabError(f"split fractions {tuple(fractions)} must be >= 0 and add up to 1")
    needed = sum(1 for f in fractions if f > 0)
    if len(codes) < needed:
        raise SeqlabError(
            f"too few examples to split: {len(codes)}, need at least {needed}; "
            "add data or give the splits as files"
        )
    rng = random.Random(seed)
    ordered = _stratified_order(np.asarray(codes), names, rng)
    parts, start = [], 0
    for size in _part_sizes(len(ordered), fractions):
        part = ordered[start : start + size].tolist()
        rng.shuffle(part)
        parts.append(part)
        start += size
    return parts


def _split(
    examples: Sequence[dict[str, Any]], fractions: Sequence[float], seed: int, key: str | None
) -> list[list[dict[str, Any]]]:
    """Cut the stratified order into len(fractions) shuffled parts."""
    codes, names = label_codes(examples, key)
    return [[examples[i] for i in part] for part in split_positions(codes, names, fractions, seed)]


def carve_validation(
    examples: Sequence[dict[str, Any]],
    fraction: float = 0.1,
    seed: int = 0,
    key: str | None = "label",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split a training list into (train, validation), stratified by `key` when present.

    Used when a dataset ships no validation split (IMDB). Raises SeqlabError when there
    are fewer than 2 examples or the fraction is not strictly between 0 and 1.
    """
    if not 0 < fraction < 1:
        raise SeqlabError(f"validation fraction must be between 0 and 1, got {fraction}")
    train, validation = _split(examples, (1 - fraction, fraction), seed, key)
    return train, validation


def stratified_split(
    examples: Sequence[dict[str, Any]],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    key: str | None = "label",
) -> dict[str, list[dict[str, Any]]]:
    """Split one list into {"train", "validation", "test"} with the given fractions."""
    if len(fractions) != 3:
        raise SeqlabError(f"give 3 split fractions (train, validation, test), got {len(fractions)}")
    return dict(zip(SPLIT_PARTS, _split(examples, fractions, seed, key)))
