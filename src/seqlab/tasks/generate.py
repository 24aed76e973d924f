"""one-to-many: write a whole sequence for one input (a surname for a language).

Examples: {"condition": str, "text": str}. Model: a recurrent family read as a decoder,
character by character. The condition's embedding sets the decoder's initial hidden state
(through a tanh layer, one slice per layer; an LSTM's cell state too) and is also fed beside
every input character, so the condition cannot fade over a long name. Training is teacher
forced: input <bos> + text, target text + <eos>.

Guidance (classifier-free guidance, Ho & Salimans 2022): with `--condition-dropout p`, training
hides the condition of a share p of the examples behind a "null" condition, so the same
network also learns the unconditional distribution; sampling with `guidance w` then uses
(1 + w) * conditional scores - w * unconditional scores, favoring what is typical of the
condition rather than of names in general. w = 0 is plain sampling.

Metrics: validation cross-entropy per character (nats; the <eos> counts as one), and for
samples: novelty (share not in the training texts) and, with a classifier bundle,
conditioning accuracy (share of samples it assigns to the requested condition, averaged
over conditions). Decoding is seqlab.decode's batched sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from seqlab.config import RunConfig, setting
from seqlab.data.batching import pad_sequences
from seqlab.data.tokenize import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from seqlab.errors import SeqlabError
from seqlab.families import build_encoder, family_names, family_of
from seqlab.families.rnn import StateBridge
from seqlab.graphs import Graph, flat_state
from seqlab.tasks.base import (
    IGNORE,
    StepOutput,
    Task,
    make_step_fn,
    nll_metrics,
    summed_nll,
    update_token_mean,
)


@dataclass
class GenerateSettings:
    # share of training examples whose condition is hidden (learns the unconditional model
    # that sampling with guidance contrasts against)
    condition_dropout: float = setting(0.0, "generate: hide the condition of this share of training examples "
                                       "(enables --guidance)", min=0, below=1)
    guidance: float = setting(0.0, "generate: default guidance weight of the trained model's sampling", min=0)


class ConditionalDecoder(nn.Module):
    def __init__(self, encoder: nn.Module, n_conditions: int, condition_dim: int, layers: int, cell: str):
        super().__init__()
        self.decoder = encoder  # a causal RecurrentEncoder built with extra_dim=condition_dim
        self.condition = nn.Embedding(n_conditions + 1, condition_dim)  # the last row: no condition
        self.bridge = StateBridge(condition_dim, cell, layers, encoder.state_dim)
        self.head = nn.Linear(encoder.state_dim, encoder.vocab_size)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, conditions: torch.Tensor, state=None):
        """ids (B, T) -> scores of the next character after each step (B, T, V), and the state."""
        cond = self.condition(conditions)  # (B, C)
        if state is None:
            state = self.bridge(cond)
        extra = cond[:, None, :].expand(-1, ids.size(1), -1)  # (B, T, C): fed at every step
        enc = self.decoder(ids, lengths, state, extra=extra)
        return self.head(enc.states), enc.state


class GenerateTask(Task):
    runtime_layout = "conditional-decoder"  # which seqlab.onnx runner runs its exported graphs
    name = "generate"
    verbs = frozenset({"predict", "sample"})
    settings = GenerateSettings
    causal_input = "ids"
    # Conditional generation writes short texts (names) one character at a time. Names:
    # condition dropout 0.15 + guidance 1.0 measured 0.77 conditioning accuracy at temperature
    # 0.8 against 0.56 for plain sampling (bench/generate.py, BENCHMARKS.md).
    defaults = {"data.tokenizer": "char", "data.lowercase": False, "data.max_length": 32, "train.lr": 0.002,
                "model.condition_dropout": 0.15, "model.guidance": 1.0}
    monitor = ("val_loss", "min")
    headline_metrics = ("nats_per_char", "perplexity")

    no_data_hint = "pass --data names, or a CSV/JSONL file with condition and text columns"
    validation_key = "condition"

    def __init__(self, cfg: RunConfig):
        super().__init__(cfg)
        self.conditions: list[str] = []

    # -- data ----------------------------------------------------------------------------
    def read_named(self, name: str) -> dict[str, list[dict]]:
        from seqlab.data.datasets import as_generate

        return as_generate(super().read_named(name))

    def read_path(self, path: str) -> dict[str, list[dict]]:
        from seqlab.data.datasets import as_generate
        from seqlab.data.formats import read_classification

        d = self.cfg.data
        try:
            return as_generate(read_classification(path, text_column=d.text_column,
                                                   label_column=d.condition_column, encoding=d.encoding,
                                                   fmt=d.format))
        except SeqlabError as exc:  # the reader's hints name the classifier's flag; ours is another
            raise SeqlabError(str(exc).replace("--label-column", "--condition-column")) from None

    def fit_vocab(self, train: list[dict]) -> None:
        self.tokenizer = self.fit_tokenizer(ex["text"] for ex in train)
        self.conditions = sorted({ex["condition"] for ex in train})

    def condition_id(self, condition: str) -> int:
        try:
            return self.conditions.index(condition)
        except ValueError:
            raise SeqlabError(f"condition {condition!r} was not seen in training; known conditions: "
                              f"{', '.join(self.conditions)}") from None

    def encode(self, examples: list[dict]) -> list[dict]:
        limit = self.cfg.data.max_length
        texts = self.tokenizer.encode_batch([ex["text"] for ex in examples], limit)
        items = []
        for ex, ids in zip(examples, texts):
            if not ids:
                continue  # nothing to learn from an empty text
            items.append({"ids": [BOS_ID, *ids], "targets": [*ids, EOS_ID],
                          "condition": self.condition_id(ex["condition"])})
        return items

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        ids, lengths = pad_sequences([it["ids"] for it in items])
        targets, _ = pad_sequences([it["targets"] for it in items], pad_id=IGNORE)
        return {"ids": ids, "lengths": lengths, "targets": targets,
                "conditions": torch.tensor([it["condition"] for it in items])}

    # -- model ---------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        m = self.cfg.model
        family = family_of(m.family)
        if not (family.neural and family.implementation.stateful):
            stateful = ", ".join(n for n in family_names() if family_of(n).neural and family_of(n).implementation.stateful)
            raise SeqlabError(f"--task generate needs a family that starts from a state ({stateful}), not "
                              f"{m.family!r}: the condition sets the decoder's initial hidden state")
        condition_dim = m.embed_dim
        encoder = build_encoder(self.tokenizer.vocab_size, m, causal=True, extra_dim=condition_dim)
        return ConditionalDecoder(encoder, len(self.conditions), condition_dim, m.layers, m.cell)

    def input_encoder(self, model: nn.Module):
        return model.decoder

    @property
    def null_condition(self) -> int:
        return len(self.conditions)

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], state=None) -> StepOutput:
        conditions = batch["conditions"]
        p = self.cfg.model.condition_dropout
        if model.training and p > 0:  # learn the unconditional model too (for guidance)
            hide = torch.rand(conditions.shape, device=conditions.device) < p
            conditions = conditions.masked_fill(hide, self.null_condition)
        logits, _ = model(batch["ids"], batch["lengths"], conditions)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch["targets"].flatten(), ignore_index=IGNORE)
        return StepOutput(loss, logits)

    def make_metrics(self):
        from torchmetrics import MeanMetric, MetricCollection

        return MetricCollection({"nats_per_char": MeanMetric()})

    def update_metrics(self, metrics, out: StepOutput, batch: dict[str, torch.Tensor]) -> None:
        update_token_mean(metrics, out.loss, batch["targets"])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, examples: list[dict], out_dir: Path | None = None) -> dict[str, Any]:
        """Cross-entropy per character of the split (teacher forced)."""
        model.eval()
        batches = self.loader(self.encode(examples), shuffle=False, batch_size=256, shard=False)
        nats, _ = summed_nll((model(b["ids"], b["lengths"], b["conditions"])[0], b["targets"]) for b in batches)
        return {**nll_metrics(nats, per="char"), "examples": len(examples)}

    def evaluate_exported(self, runner, examples: list[dict], out_dir: Path | None = None) -> dict[str, Any]:
        batches = self.loader(self.encode(examples), shuffle=False, batch_size=256, shard=False)
        nats, _ = summed_nll((torch.from_numpy(runner.teacher_forced(b["ids"].numpy(), b["conditions"].numpy())),
                              b["targets"]) for b in batches)
        return {**nll_metrics(nats, per="char"), "examples": len(examples)}

    def export_graphs(self, model) -> list[Graph]:
        """A conditional generator as two graphs: `start` maps condition ids to the decoder's
        starting state; `step` reads new ids beside their condition from a state and gives the
        scores after every step and the state after the last. Sampling and guidance stay in
        Python (seqlab.onnx)."""

        model = model.eval()
        conditions = torch.tensor([0, len(self.conditions)])  # a condition and the null one
        with torch.no_grad():
            start = flat_state(model.bridge(model.condition(conditions)))
        names = [f"state{i}" for i in range(len(start))]

        class Start(nn.Module):
            def __init__(self):
                super().__init__()
                self.gen = model

            def forward(self, conditions):
                return tuple(flat_state(self.gen.bridge(self.gen.condition(conditions))))

        class Step(nn.Module):
            def __init__(self):
                super().__init__()
                self.gen = model

            def forward(self, ids, lengths, conditions, *state):
                scores, after = self.gen(ids, lengths, conditions, tuple(state) if len(state) > 1 else state[0])
                return (scores, *flat_state(after))

        ids = torch.tensor([[BOS_ID, 5, 6], [BOS_ID, 7, 8]])
        state_axes = {n: {1: "batch"} for n in names}
        return [
            Graph("start", Start(), {"conditions": conditions}, names, {"conditions": {0: "batch"}, **state_axes}),
            Graph("step", Step(), {"ids": ids, "lengths": torch.tensor([3, 3]), "conditions": conditions,
                                   **dict(zip(names, start))},
                  ["scores", *[f"{n}_out" for n in names]],
                  {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "conditions": {0: "batch"},
                   "scores": {0: "batch", 1: "time"}, **state_axes, **{f"{n}_out": {1: "batch"} for n in names}}),
        ]

    # -- inference -----------------------------------------------------------------------
    def sample(
        self, model: nn.Module, condition: str, n: int = 10, temperature: float = 1.0,
        top_k: int | None = None, seed: int | None = None, prime: str = "", max_length: int | None = None,
        guidance: float | None = None,
    ) -> list[str]:
        """`n` texts for `condition`, each starting with `prime` (may be empty). `guidance`
        w > 0 samples from (1 + w) * conditional - w * unconditional scores (needs a model
        trained with --condition-dropout)."""
        from seqlab import decode

        if not 1 <= n <= decode.MAX_TEXTS:
            raise SeqlabError(f"-n must be at least 1 and at most {decode.MAX_TEXTS:,} (got {n})")
        decode.check_length(max_length)
        if guidance is None:  # the model's default (trained with condition dropout: 1.0)
            guidance = self.cfg.model.guidance if self.cfg.model.condition_dropout else 0.0
        if guidance < 0:
            raise SeqlabError(f"--guidance must be 0 or more (got {guidance})")
        if guidance and not self.cfg.model.condition_dropout:
            raise SeqlabError("--guidance needs a model trained with --condition-dropout (e.g. 0.1): this one "
                              "never learned the unconditional distribution")
        decode.check_sampling(temperature, top_k)
        cond = torch.full((n,), self.condition_id(condition), dtype=torch.long)
        if guidance:  # rows n..2n-1 read the same text without the condition
            cond = torch.cat([cond, torch.full((n,), self.null_condition, dtype=torch.long)])
        prime_ids = self.tokenizer.encode(prime) if prime else []
        start = torch.tensor([[BOS_ID, *prime_ids]] * n)
        device = next(model.parameters()).device

        def forward(new_ids: torch.Tensor, lengths: torch.Tensor, state):
            if guidance:
                new_ids, lengths = torch.cat([new_ids, new_ids]), torch.cat([lengths, lengths])
            logits, after = model(new_ids, lengths, cond.to(device), state)
            if guidance:
                conditional, unconditional = logits.float().chunk(2)
                logits = (1 + guidance) * conditional - guidance * unconditional
            return logits, after

        # nothing but the start read so far: an empty text is no answer, so no <eos> yet
        step = make_step_fn(model, forward, [PAD_ID, UNK_ID, BOS_ID], [] if prime_ids else [EOS_ID])

        limit = max_length or self.cfg.data.max_length or 32
        rows = decode.sample_batch(step, None, start, limit, temperature, top_k, seed, stop_id=EOS_ID)
        return [prime + self.text_of(row) for row in rows]

    def text_of(self, ids: list[int]) -> str:
        """Token ids -> text: characters joined as they are, words with spaces."""
        if self.cfg.data.tokenizer == "char":
            return "".join(self.tokenizer.id_to_token(i) for i in ids)
        return self.tokenizer.decode(ids)

    def predict(self, model: nn.Module, texts: list[str]) -> list[dict[str, Any]]:
        """Per text: which condition makes it most likely (nats per character under each)."""
        outputs = []
        with torch.no_grad():
            for text in texts:
                ids = self.tokenizer.encode(text)
                n = len(self.conditions)
                inp = torch.tensor([[BOS_ID, *ids]] * n)
                tgt = torch.tensor([[*ids, EOS_ID]] * n)
                logits, _ = model(inp, torch.full((n,), inp.size(1)), torch.arange(n))
                nats = F.cross_entropy(logits.transpose(1, 2).float(), tgt, reduction="none").mean(dim=1)
                order = nats.argsort().tolist()
                outputs.append({"condition": self.conditions[order[0]],
                                "nats_per_char": {self.conditions[i]: round(float(nats[i]), 4) for i in order}})
        return outputs

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        best = output["condition"]
        return f"{best}\t{output['nats_per_char'][best]:.3f} nats/char\t{text}"

    # -- persistence ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"conditions": self.conditions}

    def load_vocab(self, directory: Path, state: dict[str, Any]) -> None:
        super().load_vocab(directory, state)
        self.conditions = list(state.get("conditions", []))


def generation_metrics(
    bundle, train_texts: set[str], classifier=None, per_condition: int = 100,
    temperature: float = 0.8, seed: int = 0, guidance: float | None = None, prior: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Sample `per_condition` texts for every condition: novelty (share not among
    `train_texts`) and, given a classifier bundle trained on the same split, conditioning
    accuracy (share it assigns to the requested condition, averaged over conditions).

    With `prior` (each label's share of the classifier's training data) the judge's
    decision is also taken under a uniform prior, argmax p(label | text) / prior(label):
    the samples are balanced over conditions, so a judge that favors the frequent labels
    of its training data (English, Russian) is biased against rare ones (Scottish)."""
    import numpy as np

    task, model = bundle.task, bundle.model
    per: dict[str, dict[str, float]] = {}
    novel = total = 0
    for k, condition in enumerate(task.conditions):
        samples = task.sample(model, condition, per_condition, temperature, seed=seed + k, guidance=guidance)
        novel += sum(s not in train_texts for s in samples)
        total += len(samples)
        entry: dict[str, float] = {"novelty": sum(s not in train_texts for s in samples) / len(samples)}
        if classifier is not None:
            probs = classifier.predict_proba(samples)  # (n, labels)
            names = classifier.labels
            entry["accuracy"] = float(np.mean([names[i] == condition for i in probs.argmax(axis=1)]))
            if prior is not None:
                weights = np.array([prior.get(name, 0.0) for name in names]).clip(min=1e-12)
                uniform = (probs / weights).argmax(axis=1)
                entry["accuracy_uniform_prior"] = float(np.mean([names[i] == condition for i in uniform]))
        per[condition] = entry
    out: dict[str, Any] = {"novelty": novel / max(total, 1), "samples": total, "temperature": temperature,
                           "guidance": task.cfg.model.guidance if guidance is None else guidance,
                           "per_condition": per}
    if classifier is not None:
        out["conditioning_accuracy"] = sum(e["accuracy"] for e in per.values()) / len(per)
        if prior is not None:
            out["conditioning_accuracy_uniform_prior"] = (
                sum(e["accuracy_uniform_prior"] for e in per.values()) / len(per))
    return out
