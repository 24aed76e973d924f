"""The linear family: scikit-learn's n-gram counts / TF-IDF + logistic regression (seqlab.linear),
behind the family table like the neural families.

It is not an encoder: it is an *estimator* family, fit in one call on whole texts instead of
trained by Lightning, and saved as linear.json + linear.safetensors instead of
model.safetensors. Tasks that accept estimators (classify) fit it through `fit`; bundles save
and load it through `save` / `load` here. scikit-learn is imported only when it is used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from seqlab.config import int_range, log_range, one_of, setting

if TYPE_CHECKING:
    from seqlab.config import ModelConfig, RunConfig

FEATURE_KINDS = ("count", "tfidf", "binary")  # seqlab.linear.FEATURE_KINDS, without importing sklearn
CLASSIFIERS = ("logistic", "mnb")  # seqlab.linear.CLASSIFIERS


@dataclass
class LinearSettings:
    features: str = setting("tfidf", "linear: count, tfidf or binary", choices=FEATURE_KINDS,
                            search=one_of(*FEATURE_KINDS))
    ngram_max: int = setting(1, "linear: longest n-gram", min=1, search=int_range(1, 3))
    min_df: int = setting(1, "linear: drop n-grams seen in fewer training documents", min=1)
    nb: bool = setting(False, "linear: naive-Bayes feature scaling (NBSVM)", search=one_of(False, True))
    C: float = setting(3.0, "linear: inverse regularization strength", above=0, search=log_range(0.01, 100.0))
    classifier: str = setting("logistic", "linear: logistic regression, or mnb (multinomial naive Bayes on n-gram "
                              "presence: best on short sentences, see BENCHMARKS.md)", choices=CLASSIFIERS,
                              search=one_of(*CLASSIFIERS))
    alpha: float | None = setting(None, "linear: naive-Bayes pseudo-count (default 1 for --nb, 0.25 for mnb)",
                                  above=0)
    punctuation: bool = setting(True, "linear: count punctuation marks as tokens", search=one_of(True, False))
    beta: float | None = setting(None, "linear --nb: interpolate each weight towards the mean weight size, "
                                 "(1-beta)*mean|w| + beta*w, NBSVM's naive-Bayes/discriminative mix (default "
                                 "0.25 for word n-grams, 1 = off for character n-grams)", above=0, max=1,
                                 search=one_of(None, 0.5, 1.0))  # None: the auto choice above


def _analyzer(tokenizer: str) -> str:
    """The run's tokenizer choice, for n-gram features: characters for `--tokenizer char`
    (names), words otherwise (a subword vocabulary is a neural family's input, not a feature set)."""
    return "char" if tokenizer == "char" else "word"


class LinearEstimator:
    """Adapter: the family table's face of seqlab.linear.LinearClassifier."""

    @staticmethod
    def order_seen(cfg: ModelConfig) -> str:
        return f"n-grams of up to {cfg.ngram_max} words" if cfg.ngram_max > 1 else "none: a bag of words"

    @staticmethod
    def fit(cfg: RunConfig, texts: list[str], labels: list[str]):
        """A fitted LinearClassifier and the seconds the fit took."""
        from seqlab.linear import LinearClassifier, LinearConfig

        m = cfg.model
        linear_cfg = LinearConfig(features=m.features, ngram_max=m.ngram_max, min_df=m.min_df, nb=m.nb, C=m.C,
                                  classifier=m.classifier, alpha=m.alpha, punctuation=m.punctuation, beta=m.beta,
                                  lowercase=cfg.data.lowercase, analyzer=_analyzer(cfg.data.tokenizer))
        start = time.perf_counter()
        model = LinearClassifier(linear_cfg).fit(texts, labels)
        return model, time.perf_counter() - start

    @staticmethod
    def save(model, directory: Path) -> None:
        model.save(directory)

    @staticmethod
    def load(directory: Path):
        from seqlab.linear import LinearClassifier

        return LinearClassifier.load(directory)
