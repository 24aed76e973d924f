"""many-to-one: classify a whole sequence (sentiment of a review, language of a name).

Examples: {"text": str, "label": str}. Model: family encoder -> sequence summary -> linear
layer over the labels. Metrics: accuracy, macro-F1, per-class report, confusion matrix.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seqlab.config import RunConfig
from seqlab.data.batching import pad_sequences
from seqlab.errors import SeqlabError
from seqlab.families import build_encoder
from seqlab.graphs import Graph, example_ids
from seqlab.tasks.base import (
    Reading,
    StepOutput,
    Task,
    drop_words,
    label_report,
    word_dropout_from_counts,
    word_dropout_table,
)


class SequenceClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, n_labels: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.summary_dim, n_labels)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(ids, lengths).summary)  # (B, n_labels)


class ClassifyTask(Task):
    runtime_layout = "classifier"  # which seqlab.onnx runner runs its exported graphs
    name = "classify"
    verbs = frozenset({"predict", "probe", "trace", "attribute"})
    accepts_estimators = True
    # Long documents keep their first 1000 tokens, not DataConfig's 400: IMDB's reviews (17.7% longer
    # than 400 tokens) lost 1-1.5 points of test accuracy at 400 with the default cnn and bow
    # (0.876 / 0.884 vs 0.894 / 0.892 at 1000, BENCHMARKS.md), and sentences never reach either
    # length, so only long-document data changes (length-bucketed batches pad little: work grows
    # with the tokens actually kept, +16% on IMDB).
    # Small sets are refit on training + validation data once validation has picked the epoch
    # count (`--refit auto`: under 20,000 examples; seqlab.api.REFIT_AUTO_BELOW). 10-fold CV,
    # without -> with the refit: CR cnn 0.797 -> 0.802, gru 0.789 -> 0.800; MPQA cnn 0.858 -> 0.863,
    # gru 0.862 -> 0.864 (BENCHMARKS.md, the *-refit recipes); TREC's test over 5 seeds moved
    # within its seed spread (cnn 0.904 -> 0.899, gru 0.879 -> 0.886).
    defaults = {"data.max_length": 1000, "train.refit": "auto"}
    # The best general recipe per family, chosen on CR, MPQA, SUBJ, TREC (3-fold CV) and names,
    # with IMDB's presets as the starting point (bench/suite.py, BENCHMARKS.md "the sentence
    # suite"): a bidirectional encoder max-pooled over time, word dropout 1/(1+c), Adam at
    # 0.003 and a moving average of the weights, up to 10 epochs with early stopping. Mean
    # accuracy over the five sets, default -> recipe: lstm 0.823 -> 0.845, cnn 0.837 -> 0.847,
    # bow 0.797 -> 0.821 (20 epochs: small sets were still improving at 10) -> 0.840 with
    # hashed bigrams in 2**16 buckets (names +7 points from character pairs, TREC +3, MPQA -1.8;
    # a quarter of BowSettings' 2**18: a sentence set has ~30k distinct bigrams, and Adam's dense
    # step over the bucket table is most of a CPU step; configs/imdb-bow.yaml keeps 2**18).
    family_defaults = {
        "rnn": {"model.bidirectional": True, "model.pooling": "max", "model.dropout": 0.4,
                "model.word_dropout": 1.0, "train.ema": 0.999, "train.lr": 0.003, "train.batch_size": 50,
                "train.epochs": 10},
        # lr 1e-3 for up to 20 epochs, patience 5 (suite recipe e20-p5-ema-lr1e-3): better than
        # lr 3e-3 / 10 epochs / patience 3 on every final cell (CR 0.797 vs 0.789, TREC 0.908 vs 0.900)
        "cnn": {"model.word_dropout": 1.0, "train.ema": 0.999, "train.lr": 0.001, "train.batch_size": 50,
                "train.epochs": 20, "train.patience": 5},
        "bow": {"model.word_dropout": 1.0, "train.ema": 0.999, "train.lr": 0.003, "train.epochs": 20,
                "model.bigrams": True, "model.hash_buckets": 2**16},
        # NBSVM's features: uni+bigram presence (punctuation included) scaled by naive-Bayes
        # log-count ratios, then logistic regression. Suite mean 0.793 vs 0.789 for tf-idf and
        # 0.783 for unigram tf-idf on the cheap protocol; IMDB test 0.913 vs 0.910 (BENCHMARKS.md,
        # "nb-binary-bi-punct"). NBSVM's interpolation towards naive Bayes is on by default for
        # word n-grams (seqlab.linear.NB_BETA): 10-fold CR 0.8186 vs 0.812, IMDB 0.914 vs 0.913.
        # Naive Bayes itself (`--classifier mnb`) loses 4 points on TREC and 5 on IMDB.
        "linear": {"model.ngram_max": 2, "model.nb": True, "model.features": "binary"},
    }
    monitor = ("val_accuracy", "max")
    loss_targets = "labels"

    def __init__(self, cfg: RunConfig):
        super().__init__(cfg)
        self.labels: list[str] = []
        self.unk_prob: torch.Tensor | None = None  # word dropout, training only

    # -- data ----------------------------------------------------------------------------
    def read_source(self) -> dict[str, list[dict]]:
        if self.cfg.data.source == "demo":  # the generated order-sensitive corpus, no download
            from seqlab.data.builtin import make_corpus

            return make_corpus(seed=0)
        return super().read_source()

    disk_target = "label"

    def disk_reader(self, path: Path) -> str | None:
        from seqlab.data.formats import guess_format

        fmt = self.cfg.data.format or guess_format(path)
        return {"csv": "table", "tsv": "table", "jsonl": "table", "fasttext": "fasttext"}.get(fmt)

    def disk_encode(self, examples: list[dict]) -> list[dict]:
        ids = self.tokenizer.encode_batch([ex["text"] for ex in examples], self.cfg.data.max_length)
        return [{"ids": seq} for seq in ids]

    def read_named(self, name: str) -> dict[str, list[dict]]:
        from seqlab.data.datasets import load_dataset

        return load_dataset(name, self.cfg.data.data_dir, label_column=self.cfg.data.label_column)

    def read_path(self, path: str) -> dict[str, list[dict]]:
        from seqlab.data.formats import read_classification

        d = self.cfg.data
        return read_classification(path, text_column=d.text_column, label_column=d.label_column,
                                   encoding=d.encoding, fmt=d.format)

    def fit_vocab(self, train) -> None:
        from seqlab.data.ondisk import FileSplit, examples_of, fitted_once
        from seqlab.data.tokenize import TextTokenizer

        self.unk_prob = None
        alpha = self.cfg.model.word_dropout
        if isinstance(train, FileSplit):  # one streamed pass for the tokenizer, counts from the encoded ids
            keep = train.keep()
            d = self.cfg.data

            def fit() -> dict[str, str]:
                texts = (ex["text"] for ex in examples_of(train.source, keep, "fitting the vocabulary"))
                return {"tokenizer": self.fit_tokenizer(texts).to_json()}

            fitted = fitted_once(train, f"classify|{d.tokenizer}|{d.lowercase}|{d.max_vocab}|{d.min_freq}", fit)
            self.tokenizer = TextTokenizer.from_json(fitted["tokenizer"])
            if alpha:
                counts = self.encoded(train.source).token_counts(self.tokenizer.vocab_size, keep)
                self.unk_prob = word_dropout_from_counts(counts, alpha)
            self.labels = sorted(train.label_set())
        else:
            self.tokenizer = self.fit_tokenizer(ex["text"] for ex in train)
            if alpha:
                texts = self.tokenizer.encode_batch([ex["text"] for ex in train], self.cfg.data.max_length)
                self.unk_prob = word_dropout_table(texts, self.tokenizer.vocab_size, alpha)
            self.labels = sorted({ex["label"] for ex in train})
        if len(self.labels) < 2:
            raise SeqlabError(f"the training data has only one label ({self.labels}); need at least two")
        warn_near_duplicate_labels(self.labels)

    def encode(self, examples) -> list[dict]:
        from seqlab.data.ondisk import EncodedSplit, FileSplit

        if isinstance(examples, FileSplit):
            unseen = sorted(examples.label_set() - set(self.labels))
            if unseen:
                raise SeqlabError(f"labels {unseen} were not seen in training; known labels: {', '.join(self.labels)}")
            return EncodedSplit(self.encoded(examples.source), examples.positions, self.labels)
        index = {label: i for i, label in enumerate(self.labels)}
        ids = self.tokenizer.encode_batch([ex["text"] for ex in examples], self.cfg.data.max_length)
        items = []
        for i, (ex, seq) in enumerate(zip(examples, ids)):
            label = ex.get("label")
            if label is not None and label not in index:
                raise SeqlabError(f"label {label!r} was not seen in training; known labels: {', '.join(self.labels)}")
            # int32 arrays: a Python list of ints costs ~8x more (IMDB: ~250 MB saved)
            items.append({"ids": np.asarray(seq, dtype=np.int32), "label": index.get(label, -1), "index": i})
        return items

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        ids, lengths = pad_sequences([it["ids"] for it in items])
        return {
            "ids": ids,
            "lengths": lengths,
            "labels": torch.tensor([it["label"] for it in items]),
            "index": torch.tensor([it["index"] for it in items]),
        }

    def fit_estimator(self, estimator, train: list[dict]):
        """Fit an estimator family (linear) on the training texts: (model, seconds)."""
        model, seconds = estimator.fit(self.cfg, [ex["text"] for ex in train], [ex["label"] for ex in train])
        self.labels = list(model.labels_)
        warn_near_duplicate_labels(self.labels)
        return model, seconds

    # -- model ---------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        encoder = build_encoder(self.tokenizer.vocab_size, self.cfg.model)
        return SequenceClassifier(encoder, len(self.labels))

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], state=None) -> StepOutput:
        ids = drop_words(batch["ids"], self.unk_prob) if model.training else batch["ids"]
        logits = model(ids, batch["lengths"])  # (B, n_labels)
        return StepOutput(F.cross_entropy(logits, batch["labels"]), logits)

    def make_metrics(self):
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        n = len(self.labels)
        return MetricCollection(
            {
                "accuracy": MulticlassAccuracy(n, average="micro"),
                "macro_f1": MulticlassF1Score(n, average="macro"),
            }
        )

    def update_metrics(self, metrics, out: StepOutput, batch: dict[str, torch.Tensor]) -> None:
        metrics.update(out.outputs, batch["labels"])

    # -- inference -----------------------------------------------------------------------
    @torch.no_grad()
    def predict_proba(self, model: nn.Module, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """(N, n_labels) probabilities, in the order of `texts`."""
        if not isinstance(model, nn.Module):  # the scikit-learn linear baseline
            return model.predict_proba(texts)
        return self._probs(model, self.encode([{"text": t} for t in texts]), batch_size)

    @torch.no_grad()
    def _probs(self, model: nn.Module, items, batch_size: int = 256) -> np.ndarray:
        """(N, n_labels) probabilities of encoded items, in their order."""
        model.eval()
        probs = np.zeros((len(items), len(self.labels)), dtype=np.float32)
        for batch in self.loader(items, shuffle=False, batch_size=batch_size, shard=False):
            p = torch.softmax(model(batch["ids"], batch["lengths"]).float(), dim=-1)
            probs[batch["index"].numpy()] = p.numpy()
        return probs

    def predict(self, model: nn.Module, texts: list[str]) -> list[dict[str, Any]]:
        probs = self.predict_proba(model, texts)
        return [
            {
                "label": self.labels[int(row.argmax())],
                "probabilities": {lab: round(float(p), 6) for lab, p in zip(self.labels, row)},
            }
            for row in probs
        ]

    # -- the live page -------------------------------------------------------------------
    def trace_input(self, model, text: str, max_tokens: int) -> Reading:
        if isinstance(model, nn.Module):
            return super().trace_input(model, text, max_tokens)
        words = text.split()  # an estimator reads whole texts with its own vectorizer
        return Reading(words[:max_tokens], None, truncated=len(words) > max_tokens)

    def trace_outputs(self, model, reading: Reading) -> dict[str, Any]:
        """p(class | prefix) after each token (the attributions are `trace_attribution`).

        The head reads each prefix's summary (Encoder.prefix_summaries: the text as if it
        ended at t) rather than each step's state: that is exact for every family and
        pooling, and for a bidirectional RNN (whose backward state at t has read the tokens
        after t) it is the only honest prefix verdict."""
        n = len(reading.tokens)
        if reading.ids is None:
            probs = self._variant_probs(model, reading, [list(range(t + 1)) for t in range(n)])  # (T, C)
        else:
            with torch.no_grad():
                summaries = self.input_encoder(model).prefix_summaries(reading.ids)
                probs = torch.softmax(model.head(summaries).float(), dim=-1).numpy()
        full = probs[-1]
        label = int(full.argmax())
        return {
            "labels": self.labels,
            "prediction": {"label": self.labels[label],
                           "probabilities": {lab: round(float(p), 6) for lab, p in zip(self.labels, full)}},
            "steps": {"kind": "prefix_probabilities", "values": np.round(probs.astype(np.float64), 4).tolist()},
        }

    def trace_attribution(self, model, reading: Reading) -> dict[str, Any]:
        """Each token's share of the predicted class. Gradient x input (Denil et al. 2014):
        d p(label) / d token vector . token vector, one backward pass, when the encoder's token
        table yields one vector per token (rnn, cnn); else occlusion, the drop in p(label)
        when the token is left out (bow averages its table's rows inside one EmbeddingBag
        call; linear reads whole texts)."""
        n = len(reading.tokens)
        if reading.ids is not None:
            seen: list[torch.Tensor] = []

            def leaf(module, args, out):  # the token vectors as a leaf to differentiate by
                if out.dim() == 3:  # (1, T, E): one vector per token (frozen tables too)
                    seen.append(out.detach().requires_grad_())
                    return seen[-1]
                return None

            hook = self.input_encoder(model).token_embedding.register_forward_hook(leaf)
            try:
                with torch.enable_grad():
                    logits = model(reading.ids, reading.lengths)
                    vectors = seen[0] if seen else None
                    if vectors is not None:
                        label = int(logits[0].argmax())
                        p = torch.softmax(logits.float(), dim=-1)[0, label]
                        [grad] = torch.autograd.grad(p, vectors)
                        values = (grad * vectors)[0].sum(dim=-1).tolist()
                        return {"method": "gradient x input", "label": self.labels[label],
                                "values": [round(float(v), 4) for v in values]}
            finally:
                hook.remove()
        full = self._variant_probs(model, reading, [list(range(n))])[0]
        label = int(full.argmax())
        if n == 1:
            return {"method": "occlusion", "label": self.labels[label], "values": [round(float(full[label]), 4)]}
        without = self._variant_probs(model, reading, [[i for i in range(n) if i != t] for t in range(n)])
        return {"method": "occlusion", "label": self.labels[label],
                "values": [round(float(full[label] - w), 4) for w in without[:, label]]}

    @torch.no_grad()
    def _variant_probs(self, model, reading: Reading, keep: list[list[int]], chunk: int = 12) -> np.ndarray:
        """Class probabilities of variants of the text, each the tokens at `keep[i]`: (N, C).
        Run in chunks of similar length, so short prefixes are not padded to the longest."""
        if reading.ids is None:
            return model.predict_proba([" ".join(reading.tokens[i] for i in rows) for rows in keep])
        order = sorted(range(len(keep)), key=lambda i: len(keep[i]))
        out = np.zeros((len(keep), len(self.labels)), dtype=np.float32)
        for start in range(0, len(order), chunk):
            rows = order[start:start + chunk]
            ids, lengths = pad_sequences([reading.ids[0, keep[i]].numpy() for i in rows])
            out[rows] = torch.softmax(model(ids, lengths).float(), dim=-1).numpy()
        return out

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        return f"{output['label']}\t{output['probabilities'][output['label']]:.3f}\t{text}"

    def evaluate(self, model: nn.Module, examples, out_dir: Path | None = None) -> dict[str, Any]:
        from seqlab.data.ondisk import FileSplit

        if isinstance(examples, FileSplit):  # scored from the encoded ids, texts left on disk
            items = self.encode(examples)
            return classification_metrics(self.labels, items.gold(), self._probs(model, items), out_dir)
        probs = self.predict_proba(model, [ex["text"] for ex in examples])
        return classification_metrics(self.labels, [ex["label"] for ex in examples], probs, out_dir)

    def evaluate_exported(self, runner, examples: list[dict], out_dir: Path | None = None) -> dict[str, Any]:
        probs = runner.predict_proba([ex["text"] for ex in examples])
        return classification_metrics(self.labels, [ex["label"] for ex in examples], probs, out_dir)

    def export_graphs(self, model) -> list[Graph]:
        ids, lengths = example_ids(self.tokenizer.vocab_size)
        return [Graph("model", model, {"ids": ids, "lengths": lengths}, ["logits"],
                      {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}})]

    # -- persistence ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"labels": self.labels}

    def load_vocab(self, directory: Path, state: dict[str, Any]) -> None:
        from seqlab.families import family_of

        if family_of(self.cfg.model.family).neural:  # an estimator keeps its own vocabulary
            super().load_vocab(directory, state)
        self.labels = list(state["labels"])


def classification_metrics(
    labels: list[str], gold: list[str], probs: np.ndarray, out_dir: Path | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix (+ PNG)."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({g for g in gold if g not in index})
    if unknown:
        raise SeqlabError(f"labels {unknown} were not seen in training; known labels: {', '.join(labels)}")
    y_true = np.array([index[g] for g in gold])
    y_pred = probs.argmax(axis=1)
    report = label_report(labels, y_true, y_pred, out_dir)
    metrics = {"accuracy": float((y_true == y_pred).mean()), "macro_f1": report.pop("macro_f1"),
               "examples": int(len(y_true)), **report}
    return metrics


def _label_key(label: str) -> str:
    text = str(label).strip().lower()
    try:
        return repr(float(text))  # 1, 1.0 and 01 are one number
    except ValueError:
        return text


def warn_near_duplicate_labels(labels: list[str]) -> None:
    """Labels that differ only by case, spaces or number format (pos/Pos, 1/1.0) are learned
    as different classes: say so once, on stderr (often a data-entry slip)."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(_label_key(label), []).append(str(label))
    clashes = [g for g in groups.values() if len(g) > 1]
    if clashes:
        shown = "; ".join(" / ".join(repr(x) for x in g) for g in clashes[:3])
        print(f"seqlab: warning: labels that differ only by case or number format are different classes: {shown}",
              file=sys.stderr, flush=True)
