"""Order-sensitivity probe: minimal pairs with the same bag of words and opposite labels.

For each (positive, negative) pair, a bag-of-words model must give both the same score;
a model that reads word order can rank the positive member higher. Pairwise accuracy is the
fraction of pairs ranked right (ties count as half), so chance, and every order-blind
model, sits at 0.5.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path
from typing import Any

from seqlab.errors import SeqlabError

_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
POSITIVE_NAMES = ("pos", "positive", "1", "good", "yes", "true")


def bag_of_words(text: str) -> Counter:
    """Lowercased word counts, the representation the lecture's BoW model sees."""
    return Counter(_WORD.findall(text.lower()))


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """A TSV/CSV file with columns `positive` and `negative`."""
    path = Path(path)
    if not path.is_file():
        raise SeqlabError(f"{path}: no such pairs file")
    with open(path, newline="", encoding="utf-8") as f:
        delimiter = "\t" if path.suffix in (".tsv", ".txt") else ","
        reader = csv.DictReader(f, delimiter=delimiter)
        missing = {"positive", "negative"} - set(reader.fieldnames or [])
        if missing:
            raise SeqlabError(
                f"{path}: needs columns 'positive' and 'negative'; it has: {', '.join(reader.fieldnames or [])}"
            )
        pairs = []
        for line, row in enumerate(reader, 2):
            if not (row["positive"] or "").strip() or not (row["negative"] or "").strip():
                raise SeqlabError(f"{path}:{line}: both 'positive' and 'negative' need text")
            pairs.append((row["positive"], row["negative"]))
    if not pairs:
        raise SeqlabError(f"{path}: no pairs in the file")
    return pairs


def positive_label(labels: list[str], name: str | None = None) -> str:
    if name is not None:
        if name not in labels:
            raise SeqlabError(f"label {name!r} is not one of the model's labels: {', '.join(labels)}")
        return name
    for candidate in labels:
        if candidate.lower() in POSITIVE_NAMES:
            return candidate
    raise SeqlabError(f"cannot tell which label is positive among {labels}; pass --positive-label")


def probe(bundle, pairs: list[tuple[str, str]] | None = None, positive: str | None = None) -> dict[str, Any]:
    """Score each pair with the bundle's classifier; see the module docstring."""
    bundle.require("probe", "the probe compares a classifier's class probabilities; train one with --task classify")
    if pairs is None:
        from seqlab.data.builtin import PROBE_PAIRS

        pairs = list(PROBE_PAIRS)
    label = positive_label(bundle.labels, positive)
    column = bundle.labels.index(label)
    texts = [t for pair in pairs for t in pair]
    probs = bundle.predict_proba(texts)[:, column]
    results, score = [], 0.0
    for i, (pos, neg) in enumerate(pairs):
        p_pos, p_neg = float(probs[2 * i]), float(probs[2 * i + 1])
        score += 1.0 if p_pos > p_neg else 0.5 if p_pos == p_neg else 0.0
        results.append(
            {
                "positive": pos,
                "negative": neg,
                "bow_identical": bag_of_words(pos) == bag_of_words(neg),
                "p_positive": [round(p_pos, 6), round(p_neg, 6)],
            }
        )
    return {"pairwise_accuracy": score / len(pairs), "positive_label": label, "pairs": results}


def bow_table(sentences: list[str]) -> dict[str, Any]:
    """The lecture's bag-of-words table: vocabulary columns, one count row per sentence,
    and the groups of sentences whose vectors are identical."""
    if not sentences:
        raise SeqlabError("give at least one sentence")
    bags = [bag_of_words(s) for s in sentences]
    empty = [i + 1 for i, bag in enumerate(bags) if not bag]
    if empty:
        raise SeqlabError(f"sentence {empty[0]} has no words (blank or only punctuation); give sentences with words")
    vocab = sorted(set().union(*bags))
    rows = [[bag[w] for w in vocab] for bag in bags]
    groups: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(tuple(row), []).append(i)
    identical = [g for g in groups.values() if len(g) > 1]
    return {"vocabulary": vocab, "sentences": sentences, "rows": rows, "identical": identical}


def format_probe(result: dict[str, Any]) -> str:
    lines = [f"{'same BoW':8}  {'p(+|pos)':>8}  {'p(+|neg)':>8}  pair"]
    for pair in result["pairs"]:
        a, b = pair["p_positive"]
        mark = "yes" if pair["bow_identical"] else "no"
        lines.append(f"{mark:8}  {a:8.3f}  {b:8.3f}  + {pair['positive']}\n{'':30}  - {pair['negative']}")
    lines.append(f"pairwise accuracy: {result['pairwise_accuracy']:.3f} (order-blind models score 0.5)")
    return "\n".join(lines)
