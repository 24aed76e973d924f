"""many-to-many, synchronized, next token: language modeling, and generation by sampling.

Data: one text per split (a named corpus such as tinyshakespeare, or any plain-text file,
first 90% train / last 10% validation), streamed as token ids from a memmap in windows of
`train.seq_len` for truncated BPTT (data/stream.py). Character level by default (Unicode
code points, the most frequent `data.max_vocab` kept, the rest <unk>); word level with
`--tokenizer word` (each line end becomes <eos>, printed back as a newline).

Model: a causal family encoder -> per-step linear layer over the vocabulary. The state
carried from one window to the next is the recurrent state for lstm/gru/rnn, and for the
stateless cnn/bow the last few ids of the previous window (their receptive field), so every
family sees one unbroken text per row. The carried state lives here, per mode (training /
validation), detached between windows and reset when a batch says it starts a pass.

Metrics: cross-entropy in nats per token (per character at char level), bits per
character, perplexity. Decoding (sampling with temperature / top-k) is seqlab.decode's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seqlab.data.stream import (
    StreamWindows,
    TextSource,
    as_source,
    encode_stream,
    split_file,
    window_loader,
)
from seqlab.data.tokenize import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from seqlab.errors import SeqlabError
from seqlab.families import build_encoder
from seqlab.graphs import Graph, example_ids, flat_state
from seqlab.tasks.base import (
    Reading,
    StepOutput,
    Task,
    make_step_fn,
    nll_metrics,
    summed_nll,
    top_tokens,
)

# Rows a split is read in for validation and evaluation. Each row starts with no context, so
# few long rows keep that cold-start cost small (16 rows of Tiny Shakespeare's 111k
# validation characters: well under 1% of the loss) while batching still pays.
EVAL_ROWS = 16
_CLOSING = set(".,;:!?)]}'\"%")  # word level: no space before these when printing


def detach_state(state: Any) -> Any:
    """Cut the graph between windows (truncated BPTT); works for h, (h, c) and id tensors."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, tuple | list):
        return type(state)(detach_state(s) for s in state)
    return state


def unit_scale_embeddings(encoder: nn.Module) -> None:
    """Start token embeddings at N(0, 1), the scale of char-rnn's one-hot inputs, instead of
    the families' Keras U(+-0.05). Measured (2x256 LSTM, batch 32, Tiny Shakespeare): with
    the small init the loss sat at the unigram plateau (3.3 nats) for ~100 steps; with unit
    scale it was at 2.55 by step 50 and 2.13 by step 150 (vs 2.57)."""
    with torch.no_grad():
        for sub in encoder.modules():
            if isinstance(sub, nn.Embedding | nn.EmbeddingBag):
                sub.weight.normal_(0.0, 1.0)
                if sub.padding_idx is not None:
                    sub.weight[sub.padding_idx].zero_()


class LanguageModel(nn.Module):
    def __init__(self, encoder: nn.Module, vocab_size: int):
        super().__init__()
        self.encoder = encoder
        # ids a stateless causal encoder must see before a window to match one unbroken text;
        # None for an encoder that carries its own state (recurrent)
        self.context = None if encoder.stateful else encoder.context_size
        self.head = nn.Linear(encoder.state_dim, vocab_size)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor, state=None) -> tuple[torch.Tensor, Any]:
        """ids (B, T) -> per-step states (B, T, D) and the state to carry to the next window."""
        if self.context is None:  # recurrent: the encoder carries (h) or (h, c)
            enc = self.encoder(ids, lengths, state)
            return enc.states, enc.state
        full = ids if state is None else torch.cat([state, ids], dim=1)  # (B, c + T)
        enc = self.encoder(full, lengths + (full.size(1) - ids.size(1)))
        carry = full[:, -self.context :] if self.context else full[:, :0]  # (B, <= c)
        return enc.states[:, -ids.size(1) :], carry

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, state=None) -> tuple[torch.Tensor, Any]:
        states, state = self.encode(ids, lengths, state)
        return self.head(states), state  # (B, T, V): scores of the token after each step


class LMTask(Task):
    runtime_layout = "language-model"  # which seqlab.onnx runner runs its exported graphs
    name = "lm"
    verbs = frozenset({"predict", "generate", "inspect", "trace"})
    causal_input = "ids"
    # Language models read characters as written (case and all code points) by default.
    defaults = {"data.tokenizer": "char", "data.lowercase": False, "train.lr": 0.002}
    monitor = ("val_loss", "min")


    @property
    def char_level(self) -> bool:
        return self.cfg.data.tokenizer == "char"

    @property
    def headline_metrics(self) -> tuple[str, ...]:  # what `seqlab train` prints
        if self.char_level:
            return ("nats_per_char", "bits_per_char", "perplexity")
        return ("nats_per_token", "perplexity")

    # -- data ----------------------------------------------------------------------------
    no_data_hint = "pass --data with a corpus name (tinyshakespeare) or a text file"

    def load_splits(self) -> dict[str, TextSource]:
        """A corpus's splits, or a text file's first 90% / last 10%; --limit keeps the first
        `limit` characters of each split (quick runs). Nothing is read into memory here."""
        d = self.cfg.data
        splits = self.read_source()
        if d.test_data:
            splits["test"] = TextSource(path=Path(d.test_data), encoding=d.encoding)
        if d.limit:
            for s in splits.values():
                s.stop = s.start + d.limit if s.stop is None else min(s.stop, s.start + d.limit)
        return splits

    def read_named(self, name: str) -> dict[str, TextSource]:
        return {split: TextSource(text=text) for split, text in super().read_named(name).items()}

    def read_path(self, path: str) -> dict[str, TextSource]:
        if Path(path).is_dir():
            raise SeqlabError(f"{path}: a folder; --task lm reads one plain-text file")
        return split_file(Path(path), self.cfg.data.encoding, self.cfg.data.validation_fraction)

    def fit_vocab(self, train) -> None:
        self.tokenizer = self.fit_tokenizer(iter(as_source(train)))

    def encode(self, examples) -> np.ndarray:
        """A split's text -> its token ids, an np.memmap (N,) built once per corpus."""
        return encode_stream(as_source(examples), self.tokenizer, eos_per_line=not self.char_level)

    def windows(self, ids: np.ndarray, *, train: bool, shard: bool = True) -> StreamWindows:
        rows = self.cfg.train.batch_size if train else EVAL_ROWS
        what = "training text" if train else "evaluation text"
        dist = {} if shard else {"rank": 0, "world_size": 1}
        return StreamWindows(ids, rows, self.cfg.train.seq_len, what=what, **dist)

    def loader(self, items, *, shuffle: bool, batch_size: int | None = None, shard: bool = True):
        """Windows in stream order (never shuffled: the order carries the state)."""
        return window_loader(self.windows(items, train=shuffle, shard=shard))

    # -- model ---------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        encoder = build_encoder(self.tokenizer.vocab_size, self.cfg.model, causal=True)
        unit_scale_embeddings(encoder)
        return LanguageModel(encoder, self.tokenizer.vocab_size)

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], state=None) -> StepOutput:
        """`state`: (rows, model state) after the previous window of the same pass, carried by
        the caller (training and validation each keep their own); a pass's first window
        (`reset`) or a change of rows starts fresh."""
        rows = batch["ids"].size(0)
        carried = None if bool(batch["reset"]) or state is None or state[0] != rows else state[1]
        logits, after = model(batch["ids"], batch["lengths"], carried)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch["targets"].flatten())
        return StepOutput(loss, logits, (rows, detach_state(after)))

    def make_metrics(self):
        from torchmetrics import MeanMetric, MetricCollection

        key = "nats_per_char" if self.char_level else "nats_per_token"
        return MetricCollection({key: MeanMetric()})

    def update_metrics(self, metrics, out: StepOutput, batch: dict[str, torch.Tensor]) -> None:
        n = batch["targets"].numel()
        for metric in metrics.values():
            metric.update(out.loss.detach(), weight=n)  # token-weighted: the last window may be shorter

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: nn.Module, examples, out_dir: Path | None = None) -> dict[str, Any]:
        """Cross-entropy of the whole split, state carried through every row."""
        windows = self.windows(self.encode(examples), train=False, shard=False)
        model.eval()
        device = next(model.parameters()).device

        def scored():
            state = None
            for k in range(len(windows)):
                batch = windows[k]
                logits, state = model(batch["ids"].to(device), batch["lengths"].to(device), state)
                yield logits, batch["targets"].to(device)

        nats, tokens = summed_nll(scored())
        return self.loss_metrics(nats, tokens)

    def evaluate_exported(self, runner, examples, out_dir: Path | None = None) -> dict[str, Any]:
        windows = self.windows(self.encode(examples), train=False, shard=False)

        def scored():
            state = None
            for k in range(len(windows)):
                batch = windows[k]
                logits, state = runner.scores(batch["ids"].numpy(), state)
                yield torch.from_numpy(logits), batch["targets"]

        nats, tokens = summed_nll(scored())
        return self.loss_metrics(nats, tokens)

    def export_graphs(self, model) -> list[Graph]:
        """A language model as two graphs: `prime` reads a text from no state, `step` reads new
        ids from a carried state; both give the scores after every step and the state after the
        last. The state is the recurrent (h) or (h, c) of a stateful encoder, batch on axis 1, or
        for a stateless causal one the last few ids it must see again (LanguageModel.context),
        batch on axis 0."""

        model = model.eval()
        with torch.no_grad():
            ids, lengths = example_ids(self.tokenizer.vocab_size, batch=2, steps=5)
            lengths = torch.full_like(lengths, ids.size(1))  # a language model's rows are full windows
            ids = ids.clamp(min=4)
            _, state = model(ids, lengths)
        n_state = len(flat_state(state))
        names = [f"state{i}" for i in range(n_state)]
        state_axes = ({1: "batch"} if model.context is None else {0: "batch", 1: "context"})
        out_names = ["scores", *[f"{n}_out" for n in names]]

        class Prime(nn.Module):
            def __init__(self):
                super().__init__()
                self.lm = model

            def forward(self, ids, lengths):
                scores, after = self.lm(ids, lengths)
                return (scores, *flat_state(after))

        class Step(nn.Module):
            def __init__(self):
                super().__init__()
                self.lm = model

            def forward(self, ids, lengths, *state):
                scores, after = self.lm(ids, lengths, tuple(state) if n_state > 1 else state[0])
                return (scores, *flat_state(after))

        dynamic = {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "scores": {0: "batch", 1: "time"}}
        step_ids = ids[:, :3].flip(1).contiguous()
        step_inputs = {"ids": step_ids, "lengths": torch.full_like(lengths, 3),
                       **dict(zip(names, flat_state(state)))}
        step_dynamic = {**dynamic, **{n: state_axes for n in names}, **{f"{n}_out": state_axes for n in names}}
        return [Graph("prime", Prime(), {"ids": ids, "lengths": lengths}, out_names,
                      {**dynamic, **{f"{n}_out": state_axes for n in names}}),
                Graph("step", Step(), step_inputs, out_names, step_dynamic)]

    def loss_metrics(self, nats: float, tokens: int) -> dict[str, Any]:
        out: dict[str, Any] = {**nll_metrics(nats), "tokens": tokens}
        if self.char_level:
            out.update(nll_metrics(nats, per="char"))
        return out

    # -- inference -----------------------------------------------------------------------
    def unknown_tokens(self, text: str) -> list[str]:
        """Characters (or words) of `text` outside the vocabulary, each once, in order."""
        seen = dict.fromkeys(t for t in self.tokenizer.tokens(text) if self.tokenizer.token_to_id(t) is None)
        return list(seen)

    def _banned(self) -> list[int]:
        # specials never occur as targets; <unk> would print nothing. Word level keeps <eos>:
        # it is the line break.
        return [PAD_ID, UNK_ID, BOS_ID] + ([EOS_ID] if self.char_level else [])

    def step_fn(self, model: nn.Module):
        """decode's step function over this model (state: the model's carried state)."""
        return make_step_fn(model, model, self._banned())

    def start_ids(self, prime: str) -> list[int]:
        if prime:
            ids = self.tokenizer.encode(prime)
            if ids:
                return ids
        # no prime: start as after a line break, the most neutral context a text has
        newline = self.tokenizer.token_to_id("\n") if self.char_level else EOS_ID
        return [newline if newline is not None else UNK_ID]

    def token_text(self, token: int, previous: str) -> str:
        """How one generated token prints, given the text printed just before it."""
        if self.char_level:
            return self.tokenizer.id_to_token(token)
        if token == EOS_ID:
            return "\n"
        word = self.tokenizer.id_to_token(token)
        glue = not previous or previous.endswith(("\n", " ")) or word[0] in _CLOSING
        return word if glue else " " + word

    def generate(
        self, model: nn.Module, prime: str = "", length: int = 200, temperature: float = 1.0,
        top_k: int | None = None, seed: int | None = None, warn: Callable[[str], None] | None = None,
    ) -> Iterator[str]:
        """Yield the continuation of `prime` piece by piece (a character, or a word with its
        leading space). Characters outside the vocabulary are read as <unk>, with a `warn`.
        Bad settings fail here, before anything is generated."""
        from seqlab import decode

        decode.check_sampling(temperature, top_k)
        if length < 0:  # no upper bound: the text is streamed as it is sampled
            raise SeqlabError(f"--length must be 0 or more (got {length})")
        unknown = self.unknown_tokens(prime) if prime else []
        if unknown and warn is not None:
            what = "characters" if self.char_level else "words"
            shown = " ".join(repr(u) for u in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
            warn(f"the prime has {len(unknown)} {what} outside the model's vocabulary, read as <unk>: {shown}")
        tokens = decode.generate(self.step_fn(model), None, self.start_ids(prime), length,
                                 temperature, top_k, seed)
        return self._pieces(tokens, prime)

    def _pieces(self, tokens: Iterator[int], previous: str) -> Iterator[str]:
        for token in tokens:
            piece = self.token_text(token, previous)
            previous = piece
            yield piece

    @torch.no_grad()
    def predict(self, model: nn.Module, texts: list[str]) -> list[dict[str, Any]]:
        """Per text: how surprising it is (nats per token after the first) and the model's
        five most likely next tokens."""
        outputs = []
        step = self.step_fn(model)
        for text in texts:
            ids = self.tokenizer.encode(text) or self.start_ids("")
            logits, _ = model(torch.tensor([ids]), torch.tensor([len(ids)]))  # (1, T, V)
            nats = (F.cross_entropy(logits[0, :-1].float(), torch.tensor(ids[1:]), reduction="mean").item()
                    if len(ids) > 1 else None)
            last, _ = step(torch.tensor([ids]), None)
            probs = torch.softmax(last[0], dim=-1)
            top = probs.topk(min(5, probs.numel()))
            outputs.append({
                "nats_per_token": nats,
                "next": [{"token": self.tokenizer.id_to_token(int(i)), "probability": round(float(p), 6)}
                         for p, i in zip(top.values, top.indices)],
            })
        return outputs

    @torch.no_grad()
    def trace_outputs(self, model: nn.Module, reading: Reading) -> dict[str, Any]:
        """Per step: the five likeliest next tokens, and how surprising the token that came
        next was (nats; None after the last)."""
        logits, _ = model(reading.ids, reading.lengths)  # (1, T, V)
        logp = torch.log_softmax(logits[0].float(), dim=-1)
        ids = reading.ids[0]
        surprise = [round(float(-logp[t, ids[t + 1]]), 4) for t in range(len(ids) - 1)] + [None]
        return {"next": top_tokens(logp.exp(), self.tokenizer.id_to_token), "surprise": surprise}

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        nats = output["nats_per_token"]
        guesses = " ".join(f"{g['token']!r}:{g['probability']:.2f}" for g in output["next"])
        return f"{'-' if nats is None else f'{nats:.3f}'}\tnext {guesses}\t{text}"

    # -- persistence ---------------------------------------------------------------------
