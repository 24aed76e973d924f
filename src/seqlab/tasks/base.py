"""What every task shape shares: the task interface and the batching/prediction plumbing.

A task owns which fields an example has, how examples are encoded and collated, the model
(a family encoder + the task's head), the loss, the metrics and how outputs are decoded. It
holds its fitted vocabularies (tokenizer, labels) so the same object serves training and
inference; Lightning is never imported here.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from seqlab.config import RunConfig
from seqlab.data.batching import GHOST, BucketBatchSampler, ListDataset
from seqlab.data.tokenize import SPECIAL_TOKENS, UNK_ID, TextTokenizer
from seqlab.errors import SeqlabError

N_SPECIAL = len(SPECIAL_TOKENS)
TOKENIZER_FILE = "tokenizer.json"
IGNORE = -100  # target id of padded steps (and of tags unseen in training): ignored by loss and metrics


def limit_examples(splits: dict[str, list], limit: int | None, seed: int) -> dict[str, list]:
    """Keep a random `limit` examples of each split (for quick runs and tests)."""
    if not limit:
        return splits
    out = {}
    for name, examples in splits.items():
        if len(examples) > limit:
            examples = random.Random(seed).sample(examples, limit)
        out[name] = examples
    return out


@dataclass
class Reading:
    """One text as a model reads it, for seqlab.introspect: the tokens shown and a one-row
    batch for the input encoder (ids (1, T), plus the task's per-step features)."""

    tokens: list[str]
    ids: torch.Tensor | None  # (1, T); None for an estimator family (it reads the text itself)
    extra: torch.Tensor | None = None  # (1, T, X) features fed beside the ids (tagger's chars)
    batch: dict[str, torch.Tensor] | None = None  # the task's own batch, when it needs more than ids
    truncated: bool = False
    text: str = ""  # the text read (when not truncated)

    @property
    def lengths(self) -> torch.Tensor:
        return torch.tensor([self.ids.size(1)])


@dataclass
class StepOutput:
    """One forward pass over a batch: the loss, what the metrics read, and the state to carry
    into the next batch (the language model's recurrent state; None elsewhere)."""

    loss: torch.Tensor
    outputs: Any = None
    state: Any = None


class Task:
    """Interface of a task shape; subclasses fill in the data, model and metric parts."""

    name = "task"
    monitor = ("val_loss", "min")  # metric for checkpointing / early stopping
    # what `seqlab train` prints and `/v1/models` reports (the field's standard units)
    headline_metrics: tuple[str, ...] = ("accuracy", "macro_f1")
    # Inference verbs this task supports; Bundle, the CLI, compare and the server dispatch on
    # these, never on the task's name:
    #   predict    one JSON output per input text (every task)
    #   generate   continue a prime, streamed piece by piece (lm)
    #   sample     n texts written for a condition (generate)
    #   translate  source sentences -> target sentences (translate)
    #   probe      minimal-pair order probe and class probabilities (classify)
    #   inspect    per-step states and next-token guesses of one passage (lm)
    #   trace      one text laid open for the live page: per-step states and outputs
    #              (trace_input / trace_outputs below; seqlab.introspect, POST .../inspect)
    #   attribute  each token's share of the output (trace_attribution; POST .../attribute)
    verbs: frozenset[str] = frozenset({"predict"})
    # the task's own model settings (a dataclass of `setting` fields), or None
    settings: type | None = None
    # settings the task implies unless the user, a dataset or a family sets them
    defaults: dict[str, Any] = {}
    # the task's recipe per family table row ("rnn", "cnn", ...), over the family's defaults
    family_defaults: dict[str, dict[str, Any]] = {}
    # whether estimator families (linear: fit in one call on whole texts) can do this task
    accepts_estimators = False
    # the batch field a task reads left to right and predicts the next step of (lm, generate:
    # "ids"; translate: "target_in"): a later token there never changes an earlier step's
    # outputs (StepOutput.outputs, (B, T, ...)). None: the task sees its input whole.
    causal_input: str | None = None
    # ONNX: which runner of seqlab.onnx runs the graphs `export_graphs` builds (recorded in the
    # export's manifest, so the torch-free runtime never imports the task); None: not exportable
    runtime_layout: str | None = None

    # the batch field holding what the loss is a mean over (IGNORE entries left out): the
    # count that makes a rank's share of a global batch weigh what it weighs in one process.
    # A batch without that field (a user's task with its own names) counts its examples.
    loss_targets = "targets"

    # reading data: what to say when none is given, which field validation is stratified by
    no_data_hint = "pass --data with a dataset name or a file/folder path"
    validation_key: str | None = "label"

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.tokenizer: TextTokenizer | None = None  # the input tokenizer, fit on train

    # -- data ----------------------------------------------------------------------------
    def load_splits(self) -> dict[str, list]:
        """{split: examples}: the source's splits, --test-data as test, validation carved from
        train when the source has none (stratified by `validation_key`), --limit applied.
        A data file kept on disk (--on-disk) gives the same splits as positions into the file
        (data/ondisk.FileSplit), its examples left there."""
        d = self.cfg.data
        source = self.disk_source(d.source)
        if source is not None:
            from seqlab.data.ondisk import file_splits

            test = self.disk_source(d.test_data, must=True) if d.test_data else None
            return file_splits(source, validation_fraction=d.validation_fraction, seed=self.cfg.train.seed,
                               limit=d.limit, test=test, stratify=self.validation_key)
        splits = self.read_source()
        if d.test_data:
            splits["test"] = [ex for part in self.read_path(d.test_data).values() for ex in part]
        return self.finish_splits(splits)

    def finish_splits(self, splits: dict[str, list]) -> dict[str, list]:
        from seqlab.data.splits import carve_validation

        d = self.cfg.data
        if "validation" not in splits:
            splits["train"], splits["validation"] = carve_validation(
                splits["train"], d.validation_fraction, seed=self.cfg.train.seed, key=self.validation_key)
        return limit_examples(splits, d.limit, self.cfg.train.seed)

    def read_source(self) -> dict[str, Any]:
        """data.source -> {split: examples}: a named dataset made for this task, or a path."""
        from seqlab.data.datasets import DATASETS, check_task

        d = self.cfg.data
        if not d.source:
            raise SeqlabError(f"no data given: {self.no_data_hint}")
        if d.source in DATASETS:
            check_task(d.source, self.name)
            return self.read_named(d.source)
        if Path(d.source).exists():
            return self.read_path(d.source)
        names = [n for n, spec in DATASETS.items() if self.name in spec.tasks]
        raise SeqlabError(f"{d.source}: no such file or folder, and not a dataset name for --task {self.name} "
                          f"({', '.join(names)})")

    # -- data kept on disk (data/ondisk.py) ------------------------------------------------
    # what an example's target is there: "label" (one per example) or "tags" (one per token);
    # None: the task reads its data into memory
    disk_target: str | None = None

    def disk_reader(self, path: Path) -> str | None:
        """Which data/ondisk reader reads the file `path` for this task (None: not on disk)."""
        return None

    def disk_settings(self) -> str:
        """What `disk_encode` depends on besides the file (part of the encoded corpus's key)."""
        tokenizer = hashlib.sha256(self.tokenizer.to_json().encode()).hexdigest()
        return f"{tokenizer}|{self.cfg.data.max_length}"

    def disk_encode(self, examples: list[dict]) -> list[dict]:
        """Raw examples -> {"ids", ("chars")} each, for the encoded corpus."""
        return self.encode(examples)

    def disk_source(self, path: str | None, *, must: bool = False):
        """The data/ondisk.DataFile to keep on disk, or None to read `path` into memory:
        --on-disk yes, or auto and a file over ondisk.AUTO_BYTES (`must`: the training data
        is on disk, so its test file is too)."""
        from seqlab.data.ondisk import DataFile, use_on_disk
        from seqlab.families import family_of

        d = self.cfg.data
        reader = None
        if path and self.disk_target and Path(path).is_file() and family_of(self.cfg.model.family).neural:
            reader = self.disk_reader(Path(path))
        if reader is None or d.on_disk == "no" or not (must or use_on_disk(d.on_disk, Path(path))):
            if d.on_disk == "yes" and path:
                raise SeqlabError(f"--on-disk yes: cannot keep {path} on disk for --task {self.name} "
                                  f"--family {self.cfg.model.family}; it takes one data file "
                                  "(classify: csv, tsv, jsonl, fasttext; tag: conllu, token<TAB>tag) and a "
                                  "neural family; leave out --on-disk")
            return None
        return DataFile(Path(path), reader, d.format, d.text_column, d.label_column, d.tag_column, d.encoding,
                        progress=self.cfg.train.progress)

    def encoded(self, source):
        """`source`'s data/ondisk.EncodedCorpus for the fitted vocabulary (built once per key)."""
        from seqlab.data.ondisk import EncodedCorpus

        corpora = self.__dict__.setdefault("_corpora", {})
        if source not in corpora:
            corpora[source] = EncodedCorpus.build(source, self.disk_settings(), self.disk_encode,
                                                  target=self.disk_target, vocab_size=self.tokenizer.vocab_size)
        return corpora[source]

    def read_named(self, name: str) -> dict[str, Any]:
        from seqlab.data.datasets import load_dataset

        return load_dataset(name, self.cfg.data.data_dir)

    def read_path(self, path: str) -> dict[str, Any]:
        """A user's file or folder -> {split: examples} (often just train)."""
        raise NotImplementedError

    def fit_tokenizer(self, texts: Iterable[str], **options: Any) -> TextTokenizer:
        """A tokenizer fit on training texts with the data section's settings."""
        d = self.cfg.data
        return TextTokenizer.fit(texts, level=d.tokenizer, lowercase=d.lowercase, max_vocab=d.max_vocab,
                                 min_freq=d.min_freq, **options)

    def fit_vocab(self, train: list) -> None:
        raise NotImplementedError

    def encode(self, examples: list) -> list[dict]:
        """Examples -> items with at least "ids" (token ids), for the bucketed loader."""
        raise NotImplementedError

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loader(
        self, items: list[dict], *, shuffle: bool, batch_size: int | None = None, shard: bool = True
    ) -> DataLoader:
        """Bucketed batches; `shard=False` keeps every batch in this process (inference)."""
        lengths = getattr(items, "lengths", None)  # data on disk knows them from its index
        sampler = BucketBatchSampler(
            [len(it["ids"]) for it in items] if lengths is None else lengths,
            batch_size or self.cfg.train.batch_size,
            shuffle=shuffle,
            seed=self.cfg.train.seed,
            **({} if shard else {"rank": 0, "world_size": 1}),
        )
        # a private generator: creating the loader's iterator must not consume the global RNG
        # (dropout), or a resumed run would diverge from an uninterrupted one
        return DataLoader(
            ListDataset(items), batch_sampler=sampler, collate_fn=self._collate_marked, generator=torch.Generator()
        )

    def _collate_marked(self, items: list[dict]) -> dict[str, Any]:
        """The task's batch, marked when it is a ghost (a rank's empty share of a global batch)."""
        batch = self.collate(items)
        if items[0].get(GHOST):
            batch[GHOST] = True
        return batch

    def loss_count(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """How many terms the step's mean loss averages (0 for a ghost batch)."""
        if batch.get(GHOST):
            return torch.zeros((), dtype=torch.long, device=batch["lengths"].device)
        targets = batch.get(self.loss_targets)
        if targets is None:
            return torch.tensor(len(batch["lengths"]), device=batch["lengths"].device)
        return (targets != IGNORE).sum()

    # -- model ---------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: Any = None) -> StepOutput:
        """The one forward pass of a training or validation batch. `state` is what the previous
        batch's StepOutput carried (kept by the caller, per mode), so the task holds none."""
        raise NotImplementedError

    def input_encoder(self, model: nn.Module):
        """The family encoder that reads this task's input tokens (`self.tokenizer`)."""
        return model.encoder

    def load_pretrained_vectors(self, model: nn.Module) -> float:
        """Copy model.embeddings' vectors into the input encoder's token table (frozen with
        freeze_embeddings); the share of the vocabulary found in the file."""
        from seqlab.data.embeddings import apply_vectors, load_vectors

        m = self.cfg.model
        vocabulary = [self.tokenizer.id_to_token(i) for i in range(self.tokenizer.vocab_size)]
        matrix, found = load_vectors(m.embeddings, vocabulary, m.embed_dim, seed=self.cfg.train.seed)
        apply_vectors(self.input_encoder(model).token_embedding, matrix, freeze=m.freeze_embeddings)
        return found

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss of one batch on its own (no carried state)."""
        return self.step(model, batch).loss

    def make_metrics(self):
        """A torchmetrics MetricCollection updated during validation (synced across ranks)."""
        raise NotImplementedError

    def update_metrics(self, metrics, out: StepOutput, batch: dict[str, torch.Tensor]) -> None:
        """Update the validation metrics from the step's outputs (no second forward pass)."""
        raise NotImplementedError

    def predict(self, model: nn.Module, texts: list[str]) -> list[dict[str, Any]]:
        """One JSON-able output per input text (what `seqlab predict --json` prints)."""
        raise NotImplementedError

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        """One line for people (what `seqlab predict` prints)."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, examples: list, out_dir: Path | None = None) -> dict[str, Any]:
        """Full metrics on a split (and plots into out_dir when given)."""
        raise NotImplementedError

    def export_graphs(self, model: nn.Module) -> list:
        """The ONNX graphs (seqlab.graphs.Graph) of `model`, run by the `runtime_layout` runner."""
        raise SeqlabError(f"ONNX export of a {self.name} model is not written yet")

    def evaluate_exported(self, runner: Any, examples: list, out_dir: Path | None = None) -> dict[str, Any]:
        """The same metrics as `evaluate`, with the model's outputs computed by an exported
        graph (`runner`: the task's seqlab.onnx runner) instead of the torch model."""
        raise SeqlabError(f"seqlab test --runtime onnx cannot test a {self.name} model; leave out --runtime onnx")

    # -- the live page (verb "trace") -----------------------------------------------------
    def trace_input(self, model: nn.Module, text: str, max_tokens: int) -> Reading:
        """`text` as the input encoder reads it, cut to `max_tokens` tokens."""
        return read_tokens(self.tokenizer, text, max_tokens)

    def trace_outputs(self, model: nn.Module, reading: Reading) -> dict[str, Any]:
        """What the task makes of each step of `reading` (JSON-able): the page's outputs."""
        raise SeqlabError(f"a {self.name} model cannot be inspected step by step")

    def trace_attribution(self, model: nn.Module, reading: Reading) -> dict[str, Any]:
        """Each token's share of the output (JSON-able: method, label, values), for tasks
        with the verb "attribute"."""
        raise SeqlabError(f"a {self.name} model has no per-token attributions")

    # -- persistence ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-able fitted state stored in config.json (labels, ...)."""
        return {}

    def save_vocab(self, directory: Path) -> None:
        if self.tokenizer is not None:  # an estimator family (linear) keeps its own vocabulary
            self.tokenizer.save(directory / TOKENIZER_FILE)

    def load_vocab(self, directory: Path, state: dict[str, Any]) -> None:
        self.tokenizer = TextTokenizer.load(directory / TOKENIZER_FILE)


# -- what several tasks share -------------------------------------------------------------
def read_tokens(tokenizer: TextTokenizer, text: str, max_tokens: int) -> Reading:
    """A Reading of `text` by a tokenizer: the surface tokens when they line up with the ids
    (word level: an unknown word shows as typed), else each id's vocabulary entry."""
    ids = tokenizer.encode(text)
    if not ids:
        raise SeqlabError("the text has no tokens this model reads; type some words")
    tokens = tokenizer.tokens(text)
    if len(tokens) != len(ids):
        tokens = [tokenizer.id_to_token(i) for i in ids]
    cut = len(ids) > max_tokens
    return Reading(tokens[:max_tokens], torch.tensor([ids[:max_tokens]]), truncated=cut, text=text)


def top_tokens(probs: torch.Tensor, name: Callable[[int], str], k: int = 5) -> list[list[dict]]:
    """Per step, the `k` most likely entries of (T, V) probabilities: [{"token", "p"}]."""
    top = probs.topk(min(k, probs.size(-1)), dim=-1)
    return [[{"token": name(int(i)), "p": round(float(p), 4)} for p, i in zip(ps, ix)]
            for ps, ix in zip(top.values, top.indices)]


def make_step_fn(model: nn.Module, forward: Callable, banned: Sequence[int],
                 banned_first: Sequence[int] = ()) -> Callable:
    """decode's step function over a model: `forward(new_ids (B, t), lengths (B,), state) ->
    (scores (B, t, V), state)`; the returned step gives the scores after the last new id with
    `banned` ids (and, before any state exists, `banned_first` too) impossible."""
    model.eval()
    device = next(model.parameters()).device
    ban = torch.tensor(list(banned), device=device)
    ban_first = torch.tensor([*banned, *banned_first], device=device)

    def step(new_ids: torch.Tensor, state):
        new_ids = new_ids.to(device)
        lengths = torch.full((new_ids.size(0),), new_ids.size(1), device=device)
        scores, after = forward(new_ids, lengths, state)
        return scores[:, -1].float().index_fill(1, ban_first if state is None else ban, float("-inf")), after

    return step


@torch.no_grad()
def summed_nll(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, int]:
    """Teacher-forced cross-entropy over (scores (B, T, V), targets (B, T)) pairs: nats per
    real target token (IGNORE steps left out) and the token count."""
    total, count = 0.0, 0
    for scores, targets in pairs:
        total += float(F.cross_entropy(scores.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE,
                                       reduction="sum"))
        count += int((targets != IGNORE).sum())
    return total / max(count, 1), count


def nll_metrics(nats: float, *, per: str = "token") -> dict[str, float]:
    """Cross-entropy in the field's units: nats per token (or character), bits per character,
    perplexity (exp of nats, capped so a diverged model does not overflow)."""
    out = {f"nats_per_{per}": nats}
    if per == "char":
        out["bits_per_char"] = nats / math.log(2)
    out["perplexity"] = math.exp(min(nats, 700.0))
    return out


def label_report(labels: list[str], y_true: np.ndarray, y_pred: np.ndarray, out_dir: Path | None = None,
                 ) -> dict[str, Any]:
    """Macro-F1, per-label precision/recall/F1/support and the confusion matrix (+ its PNG in
    out_dir): the block classification and tagging both report."""
    from sklearn.metrics import classification_report, confusion_matrix, f1_score

    all_ids = list(range(len(labels)))
    report = classification_report(y_true, y_pred, labels=all_ids, target_names=labels, output_dict=True,
                                   zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=all_ids)
    if out_dir is not None:
        from seqlab.report import plot_confusion

        plot_confusion(matrix, labels, Path(out_dir) / "confusion.png")
    return {
        "macro_f1": float(f1_score(y_true, y_pred, labels=all_ids, average="macro", zero_division=0)),
        "per_class": {name: {k: round(float(report[name][k]), 4) for k in ("precision", "recall", "f1-score",
                                                                           "support")}
                      for name in labels},
        "confusion_matrix": matrix.tolist(),
    }


def word_dropout_table(id_lists: Iterable[Sequence[int]], vocab_size: int, alpha: float) -> torch.Tensor | None:
    """Per token id, the chance training reads it as <unk>: alpha / (alpha + its count in
    the training data) (Kiperwasser & Goldberg 2016), never for the special tokens. Every
    training token is in the vocabulary, so without this <unk>'s vector is never trained,
    yet it is what every unseen word gets at test time. None when alpha is 0 (off)."""
    if not alpha:
        return None
    counts = np.zeros(vocab_size, dtype=np.float64)
    for ids in id_lists:
        np.add.at(counts, np.asarray(ids, dtype=np.int64), 1.0)
    return word_dropout_from_counts(counts, alpha)


def word_dropout_from_counts(counts: np.ndarray, alpha: float) -> torch.Tensor:
    """word_dropout_table from the token counts themselves (data on disk counts in chunks)."""
    prob = alpha / (alpha + np.asarray(counts, dtype=np.float64))
    prob[:N_SPECIAL] = 0.0
    return torch.tensor(prob, dtype=torch.float32)


def drop_words(ids: torch.Tensor, table: torch.Tensor | None) -> torch.Tensor:
    """ids with each token replaced by <unk> with its word_dropout_table chance (training)."""
    if table is None:
        return ids
    drop = torch.rand(ids.shape, device=ids.device) < table.to(ids.device)[ids]
    return ids.masked_fill(drop, UNK_ID)


def update_token_mean(metrics, loss: torch.Tensor, targets: torch.Tensor) -> None:
    """Feed a batch's mean loss to mean metrics weighted by its real target tokens, so the
    epoch's figure is per token, not per batch."""
    n = int((targets != IGNORE).sum())
    for metric in metrics.values():
        metric.update(loss.detach(), weight=n)


def tokens_in(batch: dict[str, torch.Tensor]) -> int:
    """Real (non-pad) input tokens in a batch, for throughput."""
    return int(batch["lengths"].sum())
