"""The generated order-sensitive demo corpus (no download).

Short English movie-review sentences whose sentiment depends on word order. Every sentence
has a twin with exactly the same multiset of words and the opposite label, and both twins
are in the same split, so within any split a bag-of-words model sees every bag once as
"pos" and once as "neg": a unigram model scores 0.5 on the test split by construction,
while order-aware models (n-grams, CNNs, RNNs) can learn the task.

Constructions (each sentence pair swaps where a word sits, never which words occur):
1. negation scope:  "the movie my friend has not seen is good"   (pos)
                    "the movie my friend has seen is not good"   (neg)
   with a negative adjective the labels flip ("... has seen is not bad" is pos).
2. contrast, the second clause decides:
                    "the acting was awful but the plot was good" (pos)
                    "the acting was good but the plot was awful" (neg)
   also with "although A , B" and "A , yet B".
3. correction "not A , B":  "it was not awful , it was great" (pos) / swapped (neg).
4. expectation vs outcome:  "my friend said the film was bad , but it was moving" (pos),
   "i expected the show to be great , but it was dull" (neg).
Optional adverbs ("really", "truly", ...) travel with their adjective, so twins keep equal
bags; with an adverb the negation-scope pairs are not separable by bigrams alone.

`PROBE_PAIRS` holds (positive, negative) minimal pairs for the `probe` verb. Some use
fillers that never occur in the corpus (documentary, episode, screenplay, my uncle, ...),
one uses a construction the corpus lacks ("A , not B"), and some are written with natural
capitalization and punctuation.
"""

from __future__ import annotations

import random

from seqlab.errors import SeqlabError

# Slot fillers. Words listed under HELD_OUT in comments below appear only in PROBE_PAIRS.
WORKS = ["movie", "film", "show", "series", "sequel", "remake", "comedy", "thriller", "drama"]
ASPECTS = [
    "acting",
    "plot",
    "ending",
    "soundtrack",
    "script",
    "cast",
    "dialogue",
    "music",
    "story",
    "direction",
    "pacing",
    "humor",
    "camera work",
    "first half",
    "second half",
]
PEOPLE = [
    "my friend",
    "my sister",
    "my brother",
    "my mom",
    "my dad",
    "the critic",
    "my neighbor",
    "my roommate",
    "my teacher",
    "everyone",
]
VERBS = ["seen", "watched", "liked", "recommended", "reviewed", "mentioned", "rented", "praised"]
POSITIVE = [
    "good",
    "great",
    "wonderful",
    "brilliant",
    "moving",
    "excellent",
    "funny",
    "beautiful",
    "fantastic",
    "superb",
    "charming",
    "clever",
]
NEGATIVE = [
    "bad",
    "awful",
    "boring",
    "dull",
    "terrible",
    "horrible",
    "weak",
    "bland",
    "predictable",
    "poor",
    "stupid",
    "tedious",
]
ADVERBS = ["really", "truly", "very", "quite", "so"]
# HELD_OUT (probe-only) fillers: documentary, episode, cartoon, screenplay, performance,
# my uncle, my cousin, watched-as-"enjoyed".

# (positive, negative) minimal pairs with identical bags of words.
PROBE_PAIRS: list[tuple[str, str]] = [
    ("The movie my friend has not seen is good", "The movie my friend has seen is not good"),
    ("the film my sister has seen is not bad", "the film my sister has not seen is bad"),
    (
        "The documentary my uncle has not watched was great",
        "The documentary my uncle has watched was not great",
    ),
    (
        "the episode my cousin has enjoyed is not boring",
        "the episode my cousin has not enjoyed is boring",
    ),
    ("the acting was awful but the plot was good", "the acting was good but the plot was awful"),
    (
        "The soundtrack was boring, but the ending was wonderful.",
        "The soundtrack was wonderful, but the ending was boring.",
    ),
    (
        "although the screenplay was weak , the performance was superb",
        "although the screenplay was superb , the performance was weak",
    ),
    ("it was not awful , it was great", "it was not great , it was awful"),
    ("It was not dull, it was brilliant.", "It was not brilliant, it was dull."),
    ("the cartoon was not tedious , it was funny", "the cartoon was not funny , it was tedious"),
    (
        "the critic said the show was bad , but it was moving",
        "the critic said the show was moving , but it was bad",
    ),
    (
        "I expected the sequel to be terrible, but it was excellent.",
        "I expected the sequel to be excellent, but it was terrible.",
    ),
    # A construction the corpus never uses: "A , not B" (the first adjective decides).
    ("the movie was good , not bad", "the movie was bad , not good"),
]


def _adjective(rng: random.Random, polarity: str, p_adverb: float = 0.3) -> list[str]:
    """An adjective phrase of the given polarity: optional adverb + adjective."""
    words = [rng.choice(POSITIVE if polarity == "pos" else NEGATIVE)]
    if rng.random() < p_adverb:
        words.insert(0, rng.choice(ADVERBS))
    return words


def _negation_scope(rng: random.Random) -> tuple[list[str], list[str]]:
    """Negation on the relative clause (keeps the adjective) or on the main verb (flips it)."""
    have, be = rng.choice([("has", "is"), ("had", "was"), ("has", "was")])
    head = ["the", rng.choice(WORKS)] + (["that"] if rng.random() < 0.3 else [])
    head += rng.choice(PEOPLE).split()
    verb = rng.choice(VERBS)
    polarity = rng.choice(["pos", "neg"])
    adj = _adjective(rng, polarity)
    keeps = head + [have, "not", verb, be] + adj  # main clause unnegated: adjective decides
    flips = head + [have, verb, be, "not"] + adj  # main clause negated: opposite label
    return (keeps, flips) if polarity == "pos" else (flips, keeps)


def _contrast(rng: random.Random) -> tuple[list[str], list[str]]:
    """Two clauses, the second one decides; the twin swaps the adjective phrases."""
    first, second = rng.sample(ASPECTS, 2)
    be = rng.choice(["was", "is"])
    good, bad = _adjective(rng, "pos"), _adjective(rng, "neg")
    frame = rng.choice(["but", "although", "yet"])

    def sentence(a: list[str], b: list[str]) -> list[str]:
        left = ["the", *first.split(), be, *a]
        right = ["the", *second.split(), be, *b]
        if frame == "but":
            return left + ["but"] + right
        if frame == "although":
            return ["although"] + left + [","] + right
        return left + [",", "yet"] + right

    return sentence(bad, good), sentence(good, bad)


def _correction(rng: random.Random) -> tuple[list[str], list[str]]:
    """ "not A , B": the corrected (second) adjective decides."""
    be = rng.choice(["was", "is"])
    subject = rng.choice([["it"], ["the", rng.choice(WORKS)], ["this", rng.choice(WORKS)]])
    prefix = ["honestly", ","] if rng.random() < 0.15 else []
    good, bad = _adjective(rng, "pos"), _adjective(rng, "neg")

    def sentence(a: list[str], b: list[str]) -> list[str]:
        return prefix + subject + [be, "not", *a, ",", "it", be, *b]

    return sentence(bad, good), sentence(good, bad)


def _expectation(rng: random.Random) -> tuple[list[str], list[str]]:
    """What someone said or expected versus what it was: the outcome decides."""
    work = rng.choice(WORKS)
    good, bad = _adjective(rng, "pos"), _adjective(rng, "neg")
    frame = rng.choice(["said", "thought", "expected"])
    who = rng.choice(PEOPLE).split()

    def sentence(a: list[str], b: list[str]) -> list[str]:
        if frame == "said":
            start = who + ["said", "the", work, "was", *a]
        elif frame == "thought":
            start = who + ["thought", "the", work, "would", "be", *a]
        else:
            start = ["i", "expected", "the", work, "to", "be", *a]
        return start + [",", "but", "it", "was", *b]

    return sentence(bad, good), sentence(good, bad)


CONSTRUCTIONS = [
    (_negation_scope, 0.35),
    (_contrast, 0.25),
    (_correction, 0.2),
    (_expectation, 0.2),
]


def make_corpus(
    n_train: int = 4000, n_validation: int = 500, n_test: int = 1000, seed: int = 0
) -> dict[str, list[dict]]:
    """Generate the order-sensitive corpus: {"train"|"validation"|"test": [{"text", "label"}]}.

    Split sizes must be even (examples come in twins, both in the same split). Texts are
    lowercase, tokens separated by single spaces, unique across all splits, and shuffled
    within each split. The same seed always gives the same corpus.
    """
    sizes = {"train": n_train, "validation": n_validation, "test": n_test}
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size % 2:
            raise SeqlabError(
                f"builtin corpus: {name} size must be an even number >= 0 (examples come in "
                f"twins), got {size!r}"
            )
    rng = random.Random(seed)
    makers = [make for make, _ in CONSTRUCTIONS]
    weights = [weight for _, weight in CONSTRUCTIONS]
    n_pairs = sum(sizes.values()) // 2
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    attempts = 0
    while len(pairs) < n_pairs:
        attempts += 1
        if attempts > 50 * n_pairs + 1000:
            raise SeqlabError(
                f"builtin corpus: could not generate {n_pairs} distinct sentence pairs; "
                "ask for fewer examples"
            )
        (make,) = rng.choices(makers, weights)
        pos, neg = (" ".join(words) for words in make(rng))
        if pos in seen or neg in seen:
            continue
        seen.update((pos, neg))
        pairs.append((pos, neg))

    rng.shuffle(pairs)
    corpus: dict[str, list[dict]] = {}
    start = 0
    for name, size in sizes.items():
        chunk = pairs[start : start + size // 2]
        start += size // 2
        examples = [
            {"text": text, "label": label}
            for pair in chunk
            for text, label in zip(pair, ("pos", "neg"))
        ]
        rng.shuffle(examples)
        corpus[name] = examples
    return corpus
