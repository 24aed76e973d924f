"""Extending seqlab without touching src/: a new family and a new task, each defined here and
registered with one line in its table, then trained, saved, loaded and used through
`seqlab.train`, `seqlab.load` and the command line (ARCHITECTURE.md's numbered steps).

The family is the lecture's "MLP" of "RNNs vs MLPs": each step sees a fixed window of the last
`window` tokens' embeddings, concatenated, through one hidden layer; no state, finite
receptive field. The task is a toy many-to-one shape: does the text contain a keyword?
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import seqlab
from helpers import run_cli
from seqlab.config import setting
from seqlab.data.batching import pad_sequences
from seqlab.families import FAMILIES, Family
from seqlab.families.base import (
    Encoded,
    Encoder,
    keras_init,
    length_mask,
    make_embedding,
    masked_max,
)
from seqlab.tasks import TASKS
from seqlab.tasks.base import StepOutput, Task


# -- a new family: one class and its settings ---------------------------------------------
@dataclass
class WindowSettings:
    window: int = setting(3, "window: tokens each step sees (the fixed-window MLP)", min=1)


class WindowMLP(Encoder):
    """Step t reads the embeddings of tokens t-w+1..t (zeros before the start), concatenated:
    (B, T, w * E) -> tanh(W x) (B, T, H). Summary: max over the real steps."""

    def __init__(self, vocab_size: int, cfg, *, causal: bool = False, extra_dim: int = 0):
        super().__init__()
        self.vocab_size, self.window = vocab_size, cfg.window
        self.embedding = make_embedding(vocab_size, cfg.embed_dim)
        self.mlp = nn.Linear(cfg.window * (cfg.embed_dim + extra_dim), cfg.hidden_dim)
        self.state_dim = self.summary_dim = cfg.hidden_dim
        keras_init(self)

    @property
    def context_size(self) -> int:
        return self.window - 1

    def forward(self, ids, lengths, state=None, extra=None) -> Encoded:
        mask = length_mask(lengths, ids.size(1))
        x = self.embedding(ids)  # (B, T, E)
        if extra is not None:
            x = torch.cat([x, extra.to(x.dtype)], dim=-1)
        padded = F.pad(x, (0, 0, self.window - 1, 0))  # (B, w - 1 + T, E)
        windows = torch.cat([padded[:, i : i + ids.size(1)] for i in range(self.window)], dim=-1)
        states = torch.tanh(self.mlp(windows))  # (B, T, H)
        return Encoded(states, masked_max(states, mask), mask)


# -- a new task: fields, head, loss, metrics, decoding ------------------------------------
@dataclass
class KeywordSettings:
    keyword: str = setting("good", "keyword task: the word whose presence is predicted")


class KeywordTask(Task):
    """many-to-one toy: 1 if the text contains the keyword, else 0 (labels come from the text)."""

    name = "keyword"
    verbs = frozenset({"predict"})
    settings = KeywordSettings
    monitor = ("val_accuracy", "max")
    headline_metrics = ("accuracy",)
    validation_key = None

    def read_path(self, path: str) -> dict[str, list[dict]]:
        return {"train": [{"text": line} for line in Path(path).read_text().splitlines() if line.strip()]}

    def fit_vocab(self, train: list[dict]) -> None:
        self.tokenizer = self.fit_tokenizer(ex["text"] for ex in train)

    def encode(self, examples: list[dict]) -> list[dict]:
        ids = self.tokenizer.encode_batch([ex["text"] for ex in examples], self.cfg.data.max_length)
        return [{"ids": seq, "label": int(self.cfg.model.keyword in ex["text"].split()), "index": i}
                for i, (ex, seq) in enumerate(zip(examples, ids))]

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        ids, lengths = pad_sequences([it["ids"] for it in items])
        return {"ids": ids, "lengths": lengths, "labels": torch.tensor([it["label"] for it in items]),
                "index": torch.tensor([it["index"] for it in items])}

    def build_model(self) -> nn.Module:
        from seqlab.families import build_encoder
        from seqlab.tasks.classify import SequenceClassifier

        return SequenceClassifier(build_encoder(self.tokenizer.vocab_size, self.cfg.model), 2)

    def step(self, model, batch, state=None) -> StepOutput:
        logits = model(batch["ids"], batch["lengths"])
        return StepOutput(F.cross_entropy(logits, batch["labels"]), logits)

    def make_metrics(self):
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy

        return MetricCollection({"accuracy": MulticlassAccuracy(2, average="micro")})

    def update_metrics(self, metrics, out: StepOutput, batch) -> None:
        metrics.update(out.outputs, batch["labels"])

    @torch.no_grad()
    def _probs(self, model, texts: list[str]) -> np.ndarray:
        model.eval()
        items = self.encode([{"text": t} for t in texts])
        out = np.zeros((len(texts), 2), dtype=np.float32)
        for batch in self.loader(items, shuffle=False, shard=False):
            out[batch["index"].numpy()] = torch.softmax(model(batch["ids"], batch["lengths"]), -1).numpy()
        return out

    def predict(self, model, texts: list[str]) -> list[dict[str, Any]]:
        return [{"has_keyword": bool(p[1] > 0.5), "probability": round(float(p[1]), 6)}
                for p in self._probs(model, texts)]

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        return f"{output['has_keyword']}\t{output['probability']:.3f}\t{text}"

    def evaluate(self, model, examples: list[dict], out_dir=None) -> dict[str, Any]:
        probs = self._probs(model, [ex["text"] for ex in examples])
        gold = np.array([self.cfg.model.keyword in ex["text"].split() for ex in examples])
        return {"accuracy": float(((probs[:, 1] > 0.5) == gold).mean()), "examples": len(examples)}


@pytest.fixture
def registered(monkeypatch):
    # the one line per table (monkeypatch undoes it after the test)
    monkeypatch.setitem(FAMILIES, "window", Family(WindowMLP, WindowSettings))
    monkeypatch.setitem(TASKS, "keyword", KeywordTask)


@pytest.fixture
def corpus(tmp_path) -> Path:
    rng = random.Random(0)
    words = "the a movie was good bad plot acting fine dull story".split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(400)]
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


TINY = {"model.embed_dim": 16, "model.hidden_dim": 32, "train.epochs": 4, "train.batch_size": 16,
        "train.lr": 0.01, "train.progress": False, "data.max_vocab": None}


def test_new_family_and_task_through_python(registered, corpus, tmp_path):
    bundle = seqlab.train(out=tmp_path / "kw", task="keyword", data=str(corpus), family="window",
                          **{**TINY, "model.window": 2})
    assert bundle.metrics["validation"]["accuracy"] > 0.9  # the window MLP learns the keyword
    loaded = seqlab.load(tmp_path / "kw")
    assert loaded.cfg.model.window == 2 and loaded.family == "window"
    texts = ["the movie was good", "a dull story"]
    assert loaded.predict(texts) == bundle.predict(texts)
    assert [o["has_keyword"] for o in loaded.predict(texts)] == [True, False]


def test_new_family_works_with_existing_tasks(registered, corpus, tmp_path):
    """The window MLP is causal with a finite receptive field: a language model too."""
    bundle = seqlab.train(out=tmp_path / "lm", task="lm", data=str(corpus), family="window",
                          **{**TINY, "train.epochs": 1, "train.seq_len": 20})
    assert bundle.model.context == 2  # read from the contract (context_size), not the family's name
    assert len(seqlab.load(tmp_path / "lm").generate("the", length=10, seed=0)) > len("the")


def test_new_family_and_task_through_the_cli(registered, corpus, tmp_path, capsys):
    out = tmp_path / "cli"
    code, _, err = run_cli(capsys, "train", "--task", "keyword", "--data", str(corpus), "--family", "window",
                           "--window", "2", "--keyword", "bad", "--epochs", "3", "--embed-dim", "16",
                           "--lr", "0.01", "--no-progress", "--out", str(out))
    assert code == 0, err
    code, stdout, _ = run_cli(capsys, "predict", str(out), "a bad plot", "--json")
    assert code == 0 and '"has_keyword": true' in stdout
    with pytest.raises(SystemExit):
        run_cli(capsys, "train", "--help")
    usage = capsys.readouterr().out
    assert "--window WINDOW" in usage and "--keyword KEYWORD" in usage  # flags generated from the settings
    code, _, err = run_cli(capsys, "train", "--task", "keyword", "--data", str(corpus), "--family", "window",
                           "--window", "0", "--out", str(tmp_path / "bad"))
    assert code == 2 and "--window (model.window) must be at least 1" in err
