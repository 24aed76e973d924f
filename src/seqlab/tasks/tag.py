"""many-to-many, synchronized: one tag per input word (part-of-speech tagging, BIO chunks).

Examples: {"tokens": [...], "tags": [...], "id": ...} from CoNLL-U, two-column token<TAB>tag
files or the `ud-ewt` dataset. Words come already tokenized, so the vocabulary maps whole
words (a `tokenizers` WordLevel model with no pre-tokenizer; `predict` splits text on
whitespace). Model: optional char CNN per word (its output appended to the word embedding,
see families/base.embed) -> family encoder per-step states -> linear layer per step.
Metrics: token accuracy (`upos_accuracy` / `xpos_accuracy` as well), accuracy on words outside
the training vocabulary, per-tag precision/recall/F1, confusion matrix, BIO chunk F1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seqlab.config import ModelConfig, RunConfig, setting
from seqlab.data.batching import pad_sequences
from seqlab.data.tokenize import (
    PAD_ID,
    SPECIAL_TOKENS,
    UNK,
    UNK_ID,
    TextTokenizer,
    train_vocabulary,
)
from seqlab.errors import SeqlabError
from seqlab.families import build_encoder
from seqlab.families.base import keras_init, make_embedding, masked_max
from seqlab.graphs import Graph, example_ids
from seqlab.tasks.base import (
    IGNORE,
    Reading,
    StepOutput,
    Task,
    drop_words,
    label_report,
    top_tokens,
    word_dropout_from_counts,
    word_dropout_table,
)

MAX_WORD_CHARS = 20  # longer words keep their first and last 10 characters (prefix + suffix)
CHAR_MIN_COUNT = 2  # rarer characters map to <unk>, so its embedding row gets trained
MAX_CHARS = 1000
CHAR_WIDTH = 3  # char CNN filter width (Ma & Hovy 2016)


@dataclass
class TagSettings:
    # a char CNN over each word, appended to its embedding (helps unseen words)
    char_features: bool = setting(False, "tag: char CNN features per word (default on)")
    char_dim: int = setting(50, "tag: character embedding size", min=1)
    # measured better than 64 on EWT
    char_filters: int = setting(100, "tag: char CNN features per word", min=1)


# -- model -----------------------------------------------------------------------------------
class CharCNN(nn.Module):
    """Spell out each word: char embeddings -> same-padded 1D conv -> max over its characters.

    (B, T, L) char ids -> (B, T, F), zero at pad words. Only real words are convolved. The pad
    char embedding is zero, as is the convolution's own padding, and the max covers real
    characters only, so a word's features do not depend on how long the batch's longest is.
    """

    def __init__(self, n_chars: int, dim: int, filters: int):
        super().__init__()
        self.embedding = make_embedding(n_chars, dim)
        self.conv = nn.Conv1d(dim, filters, CHAR_WIDTH, padding=CHAR_WIDTH // 2)
        self.out_dim = filters
        keras_init(self)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        words = chars[..., 0] != PAD_ID  # (B, T): real words have at least one character
        spelled = chars[words]  # (N, L)
        h = self.conv(self.embedding(spelled).transpose(1, 2)).transpose(1, 2)  # (N, L, F)
        feats = F.relu(masked_max(h, spelled != PAD_ID))  # (N, F)
        out = feats.new_zeros(*chars.shape[:2], self.out_dim)  # (B, T, F)
        out[words] = feats
        return out


class Tagger(nn.Module):
    """Word (+ char) features -> family encoder states (B, T, D) -> tag scores (B, T, n_tags)."""

    def __init__(self, vocab_size: int, n_tags: int, n_chars: int, cfg: ModelConfig):
        super().__init__()
        self.chars = CharCNN(n_chars, cfg.char_dim, cfg.char_filters) if cfg.char_features else None
        extra = self.chars.out_dim if self.chars is not None else 0
        self.encoder = build_encoder(vocab_size, cfg, extra_dim=extra)
        self.head = nn.Linear(self.encoder.state_dim, n_tags)

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor, chars: torch.Tensor | None = None
    ) -> torch.Tensor:
        extra = None
        if self.chars is not None:
            if chars is None:
                raise ValueError("this tagger reads characters: pass chars (B, T, L)")
            extra = self.chars(chars)  # (B, T, F)
        return self.head(self.encoder(ids, lengths, extra=extra).states)  # (B, T, n_tags)


# -- vocabularies ----------------------------------------------------------------------------
def fit_word_tokenizer(
    words: Iterable[str], *, lowercase: bool, max_vocab: int | None, min_freq: int
) -> TextTokenizer:
    """A WordLevel vocabulary of whole words: no pre-tokenizer, since the words are given
    (UD's "n't", "U.S." or "2 1/2" stay one token each). Saved as the library's own JSON."""
    from tokenizers import Tokenizer, models, normalizers

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    steps = [normalizers.NFC()] + ([normalizers.Lowercase()] if lowercase else [])
    tok.normalizer = normalizers.Sequence(steps)
    train_vocabulary(tok, words, max_vocab=max_vocab, min_freq=min_freq, what="sentences")
    return TextTokenizer(tok, "word")


def spell(word: str, index: dict[str, int]) -> list[int]:
    """A word's character ids (unknown characters -> <unk>), prefix + suffix of long words."""
    if len(word) > MAX_WORD_CHARS:
        half = MAX_WORD_CHARS // 2
        word = word[:half] + word[-half:]
    return [index.get(c, UNK_ID) for c in word]


def bio_chunks(tags: list[str]) -> set[tuple[int, int, str]]:
    """(start, end, type) spans of BIO tags; an I-X not continuing an X chunk starts one
    (as conlleval does)."""
    chunks: set[tuple[int, int, str]] = set()
    start, kind = None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and label == kind
        if start is not None and not continues:
            chunks.add((start, i, kind))
            start, kind = None, None
        if prefix == "B" or (prefix == "I" and not continues):
            start, kind = i, label
    return chunks


def is_bio(labels: list[str]) -> bool:
    return any(t.startswith("B-") for t in labels) and all(
        t == "O" or t.startswith(("B-", "I-")) for t in labels
    )


# -- the task --------------------------------------------------------------------------------
class TagTask(Task):
    runtime_layout = "tagger"  # which seqlab.onnx runner runs its exported graphs
    name = "tag"
    verbs = frozenset({"predict", "trace"})
    settings = TagSettings
    # Tagging reads both directions and spells out each word (the char CNN sees the original
    # case, so words stay lowercased: measured better on UD-EWT slices, with and without char
    # features); it takes more, smaller steps than classification (measured: 2 epochs of 1.35k
    # sentences). Word dropout 0.25 with lr decay 0.95 took UD-EWT test UPOS from 0.9467 to
    # 0.9524 and unseen-word accuracy from 0.764 to 0.797 (bench/tag.py bilstm-char-wd).
    defaults = {"model.bidirectional": True, "model.char_features": True, "model.word_dropout": 0.25,
                "train.batch_size": 32, "train.lr": 0.002, "train.lr_decay": 0.95}
    monitor = ("val_accuracy", "max")
    loss_targets = "tags"

    def __init__(self, cfg: RunConfig):
        super().__init__(cfg)
        self.labels: list[str] = []
        self.chars: list[str] = []
        # which tags these are: names the headline metric (upos_accuracy); None for tag files
        self.tag_set: str | None = cfg.data.tag_column
        self.unk_prob: torch.Tensor | None = None  # word dropout, training only

    @property
    def headline_metrics(self) -> tuple[str, ...]:
        head = (f"{self.tag_set}_accuracy",) if self.tag_set else ("accuracy",)
        return (*head, "unseen_accuracy", "macro_f1", *(("chunk_f1",) if is_bio(self.labels) else ()))

    # -- data ----------------------------------------------------------------------------
    no_data_hint = "pass --data ud-ewt, a .conllu file or a token<TAB>tag file"
    validation_key = None

    def read_named(self, name: str) -> dict[str, list[dict]]:
        from seqlab.data.datasets import get_spec, resolve

        d = self.cfg.data
        return get_spec(name).loader(resolve(name, d.data_dir), tag_column=d.tag_column)

    def read_path(self, path: str) -> dict[str, list[dict]]:
        from seqlab.data.conllu import guess_tag_format, read_tagging, read_ud_folder

        d = self.cfg.data
        p = Path(path)
        if p.is_dir():  # a UD treebank folder: <prefix>-{train,dev,test}.conllu(.gz)
            found = sorted(p.glob("*-train.conllu*"))
            if not found:
                raise SeqlabError(f"{p}: no *-train.conllu(.gz) in this folder; give a file")
            prefix = found[0].name.split(".conllu")[0].removesuffix("-train")
            return read_ud_folder(p, prefix, tag_column=d.tag_column, encoding=d.encoding)
        if path == d.source and (d.format or guess_tag_format(path)) != "conllu":
            self.tag_set = None  # a token<TAB>tag file: its tags are whatever it holds
        return {"train": read_tagging(p, fmt=d.format, tag_column=d.tag_column, encoding=d.encoding)}

    disk_target = "tags"

    def disk_reader(self, path: Path) -> str | None:
        from seqlab.data.conllu import guess_tag_format

        fmt = self.cfg.data.format or guess_tag_format(path)
        if fmt == "tsv" and str(path) == self.cfg.data.source:
            self.tag_set = None  # as read_path: a token<TAB>tag file's tags are whatever it holds
        return {"conllu": "conllu", "tsv": "token-tag"}.get(fmt)

    def disk_settings(self) -> str:
        return f"{super().disk_settings()}|{self.cfg.model.char_features}|{''.join(self.chars)}"

    def fit_vocab(self, train) -> None:
        """Words, tags and characters of the training sentences: a list, or a data/ondisk
        FileSplit streamed once (its word-dropout counts come from the encoded ids). Both
        count words up to --max-length, the ones training reads."""
        from seqlab.data.ondisk import FileSplit, examples_of, fitted_once

        d = self.cfg.data
        on_disk = isinstance(train, FileSplit)
        if on_disk:  # one streamed pass, cached per file and split (ondisk.fitted_once)
            fitted = fitted_once(train, f"tag|{d.lowercase}|{d.max_vocab}|{d.min_freq}", lambda: self._fit_tables(
                examples_of(train.source, train.keep(), "fitting the vocabulary")))
        else:
            fitted = self._fit_tables(train)
        self.tokenizer = TextTokenizer.from_json(fitted["tokenizer"])
        self.labels, self.chars = fitted["labels"], fitted["chars"]
        if len(self.labels) < 2:
            raise SeqlabError(f"the training data has only one tag ({self.labels}); need at least two")
        if not on_disk:
            self.unk_prob = self._word_dropout_table(train)
        elif self.cfg.model.word_dropout:
            counts = self.encoded(train.source).token_counts(self.tokenizer.vocab_size, train.keep())
            self.unk_prob = word_dropout_from_counts(counts, self.cfg.model.word_dropout)
        else:
            self.unk_prob = None

    def _fit_tables(self, sentences) -> dict[str, Any]:
        """The word tokenizer (as JSON), the tag set and the character table of the training
        sentences, read once."""
        d = self.cfg.data
        tags: set[str] = set()
        chars: Counter = Counter()

        def words():
            for ex in sentences:
                tags.update(ex["tags"])
                for w in ex["tokens"]:
                    chars.update(w)
                    yield w

        tokenizer = fit_word_tokenizer(words(), lowercase=d.lowercase, max_vocab=d.max_vocab, min_freq=d.min_freq)
        # most frequent first, ties by character: the same table whatever order sentences come in
        ranked = sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CHARS]
        return {"tokenizer": tokenizer.to_json(), "labels": sorted(tags),
                "chars": [c for c, n in ranked if n >= CHAR_MIN_COUNT]}

    def _word_dropout_table(self, train: list[dict]) -> torch.Tensor | None:
        if not self.cfg.model.word_dropout:
            return None
        encoded = self.tokenizer.tokenizer.encode_batch([list(ex["tokens"]) for ex in train], is_pretokenized=True)
        cut = self.cfg.data.max_length  # words past it are never read in training
        return word_dropout_table((e.ids[:cut] for e in encoded), self.tokenizer.vocab_size,
                                  self.cfg.model.word_dropout)

    def encode(self, examples, *, truncate: bool = True) -> list[dict]:
        """Sentences -> items {"ids", "tags", "chars", "index"}. Training cuts sentences to
        --max-length; inference (`truncate=False`) keeps every word so each gets a tag. A
        data/ondisk FileSplit gives its EncodedSplit (the same items, read from disk)."""
        from seqlab.data.ondisk import EncodedSplit, FileSplit

        if isinstance(examples, FileSplit):
            return EncodedSplit(self.encoded(examples.source), examples.positions, self.labels, missing=IGNORE)
        tag_index = {t: i for i, t in enumerate(self.labels)}
        char_index = {c: i + len(SPECIAL_TOKENS) for i, c in enumerate(self.chars)}
        words = [list(ex["tokens"]) for ex in examples]
        for i, ws in enumerate(words):
            if not ws:
                raise SeqlabError(f"sentence {examples[i].get('id', i + 1)}: has no tokens")
        encoded = self.tokenizer.tokenizer.encode_batch(words, is_pretokenized=True)
        cut = self.cfg.data.max_length if truncate else None
        items = []
        for i, (ex, ws, enc) in enumerate(zip(examples, words, encoded)):
            tags = ex.get("tags")
            if tags is not None and len(tags) != len(ws):
                raise SeqlabError(
                    f"sentence {ex.get('id', i + 1)}: {len(ws)} tokens but {len(tags)} tags; "
                    "give one tag per token"
                )
            item = {"ids": enc.ids[:cut], "index": i}
            if tags is not None:
                item["tags"] = [tag_index.get(t, IGNORE) for t in tags[:cut]]
            if self.cfg.model.char_features:
                item["chars"] = [spell(w, char_index) for w in ws[:cut]]
            items.append(item)
        return items

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        ids, lengths = pad_sequences([it["ids"] for it in items])  # (B, T), (B,)
        tags = np.full(ids.shape, IGNORE, dtype=np.int64)  # (B, T)
        for row, it in enumerate(items):
            if "tags" in it:
                tags[row, : len(it["tags"])] = it["tags"]
        batch = {
            "ids": ids,
            "lengths": lengths,
            "tags": torch.from_numpy(tags),
            "index": torch.tensor([it["index"] for it in items]),
        }
        if "chars" in items[0]:
            longest = max(len(w) for it in items for w in it["chars"])
            chars = np.zeros((*ids.shape, longest), dtype=np.int64)  # (B, T, L)
            for row, it in enumerate(items):
                for col, word in enumerate(it["chars"]):
                    chars[row, col, : len(word)] = word
            batch["chars"] = torch.from_numpy(chars)
        return batch

    # -- model ---------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        n_chars = len(SPECIAL_TOKENS) + len(self.chars)
        return Tagger(self.tokenizer.vocab_size, len(self.labels), n_chars, self.cfg.model)

    @staticmethod
    def _scores(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(batch["ids"], batch["lengths"], batch.get("chars"))  # (B, T, n_tags)

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], state=None) -> StepOutput:
        if model.training and self.unk_prob is not None:  # word dropout; the spelling (chars) stays
            batch = {**batch, "ids": drop_words(batch["ids"], self.unk_prob)}
        scores = self._scores(model, batch)  # (B, T, n_tags)
        loss = F.cross_entropy(scores.flatten(0, 1), batch["tags"].flatten(), ignore_index=IGNORE)
        return StepOutput(loss, scores)

    def make_metrics(self):
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy

        # token accuracy over real words: pads carry IGNORE
        return MetricCollection(
            {"accuracy": MulticlassAccuracy(len(self.labels), average="micro", ignore_index=IGNORE)}
        )

    def update_metrics(self, metrics, out: StepOutput, batch: dict[str, torch.Tensor]) -> None:
        metrics.update(out.outputs.flatten(0, 1), batch["tags"].flatten())

    # -- inference -----------------------------------------------------------------------
    @torch.no_grad()
    def predict_ids(self, model: nn.Module, sentences: list[list[str]], batch_size: int = 256):
        """Tag ids per sentence, and which words are outside the vocabulary (<unk>)."""
        model.eval()
        items = self.encode([{"tokens": s} for s in sentences], truncate=False)
        tags: list[list[int]] = [[] for _ in sentences]
        for batch in self.loader(items, shuffle=False, batch_size=batch_size, shard=False):
            best = self._scores(model, batch).argmax(dim=-1)  # (B, T)
            for row, n, i in zip(best.tolist(), batch["lengths"].tolist(), batch["index"].tolist()):
                tags[i] = row[:n]
        return tags, self.unseen_words(items)

    @staticmethod
    def unseen_words(items: list[dict]) -> list[list[bool]]:
        """Per encoded sentence, which words are outside the vocabulary (read as <unk>)."""
        return [[w == UNK_ID for w in it["ids"]] for it in items]

    def predict(self, model: nn.Module, texts: list[str]) -> list[dict[str, Any]]:
        sentences = [text.split() for text in texts]
        tags, _ = self.predict_ids(model, sentences)
        return [
            {"tokens": s, "tags": [self.labels[t] for t in row]} for s, row in zip(sentences, tags)
        ]

    def trace_input(self, model: nn.Module, text: str, max_tokens: int) -> Reading:
        """The words as `predict` splits them; the encoder also reads each word's spelling."""
        words = text.split()
        if not words:
            raise SeqlabError("the text has no words to tag")
        batch = self.collate(self.encode([{"tokens": words[:max_tokens]}], truncate=False))
        with torch.no_grad():
            extra = None if model.chars is None else model.chars(batch["chars"])
        return Reading(words[:max_tokens], batch["ids"], extra, batch, truncated=len(words) > max_tokens)

    @torch.no_grad()
    def trace_outputs(self, model: nn.Module, reading: Reading) -> dict[str, Any]:
        """Per word: the tag, its probability, and the three likeliest tags."""
        probs = torch.softmax(self._scores(model, reading.batch)[0].float(), dim=-1)  # (T, n_tags)
        best = probs.max(dim=-1)
        return {
            "labels": self.labels,
            "tags": [self.labels[int(i)] for i in best.indices],
            "confidence": [round(float(p), 4) for p in best.values],
            "top": top_tokens(probs, lambda i: self.labels[i], 3),
        }

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        return " ".join(f"{w}/{t}" for w, t in zip(output["tokens"], output["tags"]))

    def evaluate(self, model: nn.Module, examples, out_dir: Path | None = None) -> dict[str, Any]:
        from seqlab.data.ondisk import FileSplit, examples_of

        if isinstance(examples, FileSplit):  # the evaluated split is read into memory (file order)
            examples = list(examples_of(examples.source, examples.keep()))
        pred, unseen = self.predict_ids(model, [ex["tokens"] for ex in examples])
        return self._metrics(examples, pred, unseen, out_dir)

    def evaluate_exported(self, runner, examples: list[dict], out_dir: Path | None = None) -> dict[str, Any]:
        sentences = [ex["tokens"] for ex in examples]
        unseen = self.unseen_words(self.encode([{"tokens": s} for s in sentences], truncate=False))
        return self._metrics(examples, runner.tag_ids(sentences), unseen, out_dir)

    def export_graphs(self, model) -> list[Graph]:

        ids, lengths = example_ids(self.tokenizer.vocab_size)
        inputs = {"ids": ids, "lengths": lengths}
        dynamic = {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "scores": {0: "batch", 1: "time"}}
        if model.chars is not None:
            n_chars = model.chars.embedding.num_embeddings
            chars = torch.randint(4, max(n_chars, 5), (*ids.shape, 4), generator=torch.Generator().manual_seed(1))
            chars[:, :, 3] = 0  # words of unequal length
            chars[ids == 0] = 0  # pad words have no characters
            inputs["chars"] = chars
            dynamic["chars"] = {0: "batch", 1: "time", 2: "chars"}
        return [Graph("model", model, inputs, ["scores"], dynamic)]

    def _metrics(self, examples: list[dict], pred: list[list[int]], unseen: list[list[bool]],
                 out_dir: Path | None) -> dict[str, Any]:
        gold = [ex["tags"] for ex in examples]
        for ex, g, p in zip(examples, gold, pred):
            if len(g) != len(p):
                raise SeqlabError(f"sentence {ex.get('id', '?')}: {len(p)} tokens but {len(g)} tags")
        return tagging_metrics(self.labels, gold, pred, unseen, self.tag_set, out_dir)

    # -- persistence ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"labels": self.labels, "chars": self.chars, "tag_set": self.tag_set}

    def load_vocab(self, directory: Path, state: dict[str, Any]) -> None:
        super().load_vocab(directory, state)
        self.labels = list(state["labels"])
        self.chars = list(state.get("chars", []))
        self.tag_set = state.get("tag_set")


def tagging_metrics(
    labels: list[str],
    gold: list[list[str]],
    pred: list[list[int]],
    unseen: list[list[bool]],
    tag_set: str | None = None,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Token accuracy (overall, on unseen words), per-tag P/R/F1, confusion, BIO chunk F1.
    Gold tags never seen in training count as errors and are reported."""
    index = {t: i for i, t in enumerate(labels)}
    y_true = np.array([index.get(t, -1) for sent in gold for t in sent])
    y_pred = np.array([t for sent in pred for t in sent])
    new = np.array([u for sent in unseen for u in sent], dtype=bool)
    right = y_true == y_pred
    report = label_report(labels, y_true, y_pred, out_dir)
    accuracy = float(right.mean()) if len(right) else 0.0
    metrics: dict[str, Any] = {"accuracy": accuracy}
    if tag_set:
        metrics[f"{tag_set}_accuracy"] = accuracy
    metrics |= {
        "unseen_accuracy": float(right[new].mean()) if new.any() else None,
        "unseen_tokens": int(new.sum()),
        "tokens": int(len(y_true)),
        "examples": len(gold),
        "macro_f1": report.pop("macro_f1"),
        "unknown_gold_tags": sorted({t for sent in gold for t in sent if t not in index}),
    }
    if is_bio(labels):
        named = [[labels[t] for t in sent] for sent in pred]
        g_chunks = [bio_chunks(s) for s in gold]
        p_chunks = [bio_chunks(s) for s in named]
        hits = sum(len(g & p) for g, p in zip(g_chunks, p_chunks))
        n_gold, n_pred = sum(map(len, g_chunks)), sum(map(len, p_chunks))
        precision = hits / n_pred if n_pred else 0.0
        recall = hits / n_gold if n_gold else 0.0
        metrics |= {
            "chunk_precision": precision,
            "chunk_recall": recall,
            "chunk_f1": 2 * precision * recall / (precision + recall) if hits else 0.0,
        }
    metrics.update(report)
    return metrics
