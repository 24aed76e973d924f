"""many-to-many, delayed: read a whole source sentence, then write its translation.

Examples: {"source": str, "target": str}. Each side has its own tokenizer fit on the
training pairs (BPE by default, or words; tokens keep their leading space so outputs
detokenize exactly, and are scored as raw text).

Model (Seq2Seq): any family encodes the source (a bidirectional GRU/LSTM by default; `bow`
is the order-free baseline); a recurrent decoder starts from the encoder's summary
(StateBridge) and reads the target shifted right (teacher forcing). With `--attention
dot|general|additive` each decoder state queries the encoder's states (Luong's placement:
the step's own state is the query, so training runs the decoder over a whole sentence in
one fused recurrent call and scores all steps at once) and the output is
tanh(W [state; context]). With `--attention none` the summary is the decoder's only view of
the source: fed as its initial state and beside every input token.

Decoding (seqlab.decode): batched greedy, or beam search over a batch of sentences. Metrics: BLEU and
chrF from sacrebleu on detokenized output against the raw references (with sacrebleu's
signature), validation cross-entropy per target token and perplexity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from seqlab.config import RunConfig, setting
from seqlab.data.batching import pad_sequences
from seqlab.data.parallel import read_parallel, read_parallel_tsv
from seqlab.data.tokenize import BOS_ID, EOS_ID, PAD_ID, UNK_ID, TextTokenizer
from seqlab.errors import SeqlabError
from seqlab.families import build_encoder
from seqlab.families.attention import ATTENTIONS, Attention
from seqlab.families.rnn import StateBridge, select_rows
from seqlab.graphs import Graph, example_ids, flat_state
from seqlab.tasks.base import (
    IGNORE,
    Reading,
    StepOutput,
    Task,
    make_step_fn,
    nll_metrics,
    summed_nll,
    update_token_mean,
)

TARGET_TOKENIZER = "target_tokenizer.json"


@dataclass
class TranslateSettings:
    attention: str = setting("general", "translate: none, dot, general or additive", choices=ATTENTIONS)
    # hypotheses ranked by log-probability / length**length_penalty
    beam: int = setting(5, "translate: beam width used for testing (1 = greedy)", min=1)
    length_penalty: float = setting(1.0, "translate: rank beams by log-prob / length**P", min=0)


@dataclass
class Memory:
    """What the decoder reads of an encoded source batch."""

    states: torch.Tensor  # (B, S, K) encoder per-step states (the attention's values)
    prepared: torch.Tensor | None  # (B, S, Q) keys mapped for scoring, None without attention
    mask: torch.Tensor  # (B, S) True at real source tokens
    summary: torch.Tensor  # (B, D)

    def select(self, index: torch.Tensor) -> Memory:
        pick = lambda t: None if t is None else t.index_select(0, index.to(t.device))  # noqa: E731
        return Memory(pick(self.states), pick(self.prepared), pick(self.mask), pick(self.summary))


class Seq2Seq(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, attention: str, cell: str, layers: int,
                 dropout: float = 0.0):
        super().__init__()
        self.encoder = encoder  # family encoder over source ids
        self.decoder = decoder  # causal RecurrentEncoder over target ids (+ summary without attention)
        hidden = decoder.state_dim
        self.bridge = StateBridge(encoder.summary_dim, cell, layers, hidden)
        self.attention = None if attention == "none" else Attention(attention, hidden, encoder.state_dim)
        if self.attention is not None:
            self.combine = nn.Linear(hidden + encoder.state_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, decoder.vocab_size)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Memory:
        enc = self.encoder(src, src_lengths)
        prepared = None if self.attention is None else self.attention.prepare(enc.states)
        return Memory(enc.states, prepared, enc.mask, enc.summary)

    def decode(self, tgt: torch.Tensor, tgt_lengths: torch.Tensor, memory: Memory, state=None):
        """tgt (B, T) -> next-token scores (B, T, V), the decoder state, attention (B, T, S)."""
        if state is None:
            state = self.bridge(memory.summary)
        extra = None
        if self.attention is None:  # the summary is all the decoder sees of the source
            extra = memory.summary[:, None, :].expand(-1, tgt.size(1), -1)
        dec = self.decoder(tgt, tgt_lengths, state, extra=extra)
        out, weights = dec.states, None
        if self.attention is not None:
            context, weights = self.attention(out, memory.prepared, memory.states, memory.mask)
            out = self.dropout(torch.tanh(self.combine(torch.cat([out, context], dim=-1))))
        return self.head(out), dec.state, weights

    def forward(self, src, src_lengths, tgt, tgt_lengths) -> torch.Tensor:
        logits, _, _ = self.decode(tgt, tgt_lengths, self.encode(src, src_lengths))
        return logits


def select_state(state: tuple[Any, Memory], index: torch.Tensor) -> tuple[Any, Memory]:
    """Beam search's row picker for the (decoder state, memory) pair."""
    rnn_state, memory = state
    return (None if rnn_state is None else select_rows(rnn_state, index)), memory.select(index)


class TranslateTask(Task):
    runtime_layout = "encoder-decoder"  # which seqlab.onnx runner runs its exported graphs
    name = "translate"
    verbs = frozenset({"predict", "translate", "trace"})
    settings = TranslateSettings
    causal_input = "target_in"
    # Subwords as written (scored cased on raw text), a bidirectional encoder; the sizes of
    # bench/translate.py's gru-attention run (Multi30k test BLEU 38.97).
    defaults = {"data.tokenizer": "bpe", "data.lowercase": False, "data.max_vocab": 8000, "data.max_length": 100,
                "model.bidirectional": True, "model.embed_dim": 256, "model.hidden_dim": 512, "model.dropout": 0.3,
                "train.label_smoothing": 0.1, "train.lr_decay": 0.9}
    monitor = ("val_loss", "min")
    headline_metrics = ("bleu", "chrf", "perplexity")

    no_data_hint = "pass --data multi30k, --data PAIRS.tsv, or --source F --target F"
    validation_key = None

    def __init__(self, cfg: RunConfig):
        super().__init__(cfg)
        self.target_tokenizer: TextTokenizer | None = None

    @property
    def source_tokenizer(self) -> TextTokenizer | None:  # the task's input tokenizer
        return self.tokenizer

    # -- data ----------------------------------------------------------------------------
    def load_splits(self) -> dict[str, list[dict]]:
        """The source's pairs, plus validation / test pairs given as two files each."""
        d = self.cfg.data
        splits = self.read_source()
        for split, (s, t) in {"validation": (d.valid_source, d.valid_target),
                              "test": (d.test_source, d.test_target)}.items():
            if s or t:
                if not (s and t):
                    flag = "--valid" if split == "validation" else "--test"
                    raise SeqlabError(f"give both sides of the {split} pairs ({flag}-source and {flag}-target)")
                splits[split] = read_parallel(s, t, d.encoding)
        return self.finish_splits(splits)

    def read_source(self) -> dict[str, list[dict]]:
        d = self.cfg.data
        if d.source_file or d.target_file:
            if not (d.source_file and d.target_file):
                raise SeqlabError("give both --source and --target (one sentence per line, aligned)")
            return {"train": read_parallel(d.source_file, d.target_file, d.encoding)}
        return super().read_source()

    def read_path(self, path: str) -> dict[str, list[dict]]:
        if Path(path).is_dir():
            raise SeqlabError(f"{path}: a folder; give a source<TAB>target file or --source F --target F")
        return {"train": read_parallel_tsv(path, self.cfg.data.encoding)}

    def fit_vocab(self, train: list[dict]) -> None:
        if self.cfg.data.tokenizer == "char":
            raise SeqlabError("translate reads words or subwords: use --tokenizer bpe or word")
        self.tokenizer = self.fit_tokenizer((ex["source"] for ex in train), spaces=True)
        self.target_tokenizer = self.fit_tokenizer((ex["target"] for ex in train), spaces=True)

    def encode_sources(self, texts: list[str], warn: Callable[[str], None] | None = None) -> list[list[int]]:
        """Source ids, cut to data.max_length tokens (with a warning naming the inputs cut)."""
        limit = self.cfg.data.max_length
        ids = self.source_tokenizer.encode_batch(texts)
        if limit:
            long = [i for i, seq in enumerate(ids, 1) if len(seq) > limit]
            if long and warn is not None:
                shown = ", ".join(map(str, long[:10])) + (" ..." if len(long) > 10 else "")
                warn(f"{len(long)} source sentence(s) longer than the model's limit of {limit} tokens "
                     f"were cut to it (input {shown}); train with a larger --max-length to read more")
            ids = [seq[:limit] for seq in ids]
        return [seq or [UNK_ID] for seq in ids]

    def encode(self, examples: list[dict]) -> list[dict]:
        limit = self.cfg.data.max_length
        sources = self.encode_sources([ex["source"] for ex in examples])
        targets = self.target_tokenizer.encode_batch([ex.get("target", "") for ex in examples], limit)
        return [{"ids": s, "target_in": [BOS_ID, *t], "target_out": [*t, EOS_ID], "index": i}
                for i, (s, t) in enumerate(zip(sources, targets))]

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        src, src_lengths = pad_sequences([it["ids"] for it in items])
        tgt, tgt_lengths = pad_sequences([it["target_in"] for it in items])
        out, _ = pad_sequences([it["target_out"] for it in items], pad_id=IGNORE)
        return {"ids": src, "lengths": src_lengths, "target_in": tgt, "target_lengths": tgt_lengths,
                "targets": out, "index": torch.tensor([it["index"] for it in items])}

    # -- model ---------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        m = self.cfg.model
        encoder = build_encoder(self.source_tokenizer.vocab_size, m)
        # the decoder is recurrent whatever reads the source: the rnn family's cell (set by
        # --family lstm/gru/rnn, or --cell with a bow/cnn encoder)
        dec_cfg = dataclasses.replace(m, family=m.cell, bidirectional=False, pooling="last")
        extra = encoder.summary_dim if m.attention == "none" else 0
        decoder = build_encoder(self.target_tokenizer.vocab_size, dec_cfg, causal=True, extra_dim=extra)
        return Seq2Seq(encoder, decoder, m.attention, dec_cfg.cell, m.layers, m.dropout)

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], state=None) -> StepOutput:
        logits = model(batch["ids"], batch["lengths"], batch["target_in"], batch["target_lengths"])
        smoothing = self.cfg.train.label_smoothing if model.training else 0.0
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch["targets"].flatten(), ignore_index=IGNORE,
                               label_smoothing=smoothing)
        return StepOutput(loss, logits)

    def make_metrics(self):
        from torchmetrics import MeanMetric, MetricCollection

        return MetricCollection({"nats_per_token": MeanMetric()})

    def update_metrics(self, metrics, out: StepOutput, batch: dict[str, torch.Tensor]) -> None:
        update_token_mean(metrics, out.loss, batch["targets"])

    # -- decoding ------------------------------------------------------------------------
    def _step_fn(self, model: nn.Module):
        """decode's step function; its state is (decoder state, encoded source memory)."""
        def forward(new_ids: torch.Tensor, lengths: torch.Tensor, state):
            rnn_state, memory = state
            logits, rnn_state, _ = model.decode(new_ids, lengths, memory, rnn_state)
            return logits, (rnn_state, memory)

        return make_step_fn(model, forward, [PAD_ID, UNK_ID, BOS_ID])

    def max_output(self, source_length: int) -> int:
        """Longest translation to write for a source of this many tokens."""
        return min(2 * source_length + 10, self.cfg.data.max_length or 200)

    @torch.no_grad()
    def translate_ids(self, model: nn.Module, sources: list[list[int]], beam: int = 1,
                      length_penalty: float = 1.0, batch_size: int = 128) -> list[list[int]]:
        """Target ids for each source: batched greedy decoding (beam 1) or beam search."""
        from seqlab import decode

        if beam < 1:
            raise SeqlabError(f"--beam must be at least 1 (got {beam}); 1 is greedy decoding")
        model.eval()
        device = next(model.parameters()).device
        step = self._step_fn(model)
        out: list[list[int]] = [[] for _ in sources]
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        # a beam search batch holds up to `beam` rows per sentence
        per_batch = batch_size if beam == 1 else max(1, batch_size // beam)
        for start in range(0, len(order), per_batch):
            rows = order[start:start + per_batch]
            src, lengths = pad_sequences([sources[i] for i in rows])
            memory = model.encode(src.to(device), lengths.to(device))
            limits = [self.max_output(len(sources[i])) for i in rows]
            if beam == 1:
                bos = torch.full((len(rows), 1), BOS_ID, dtype=torch.long)
                decoded = decode.sample_batch(step, (None, memory), bos, limits, stop_id=EOS_ID, sample=False)
            else:
                found = decode.beam_search_batch(step, (None, memory), BOS_ID, EOS_ID, beam, limits,
                                                 select=select_state, length_penalty=length_penalty)
                decoded = [hyps[0].tokens for hyps in found]
            for i, ids in zip(rows, decoded):
                out[i] = ids
        return out

    def translate(self, model: nn.Module, texts: list[str], beam: int | None = None,
                  warn: Callable[[str], None] | None = None) -> list[str]:
        beam = self.cfg.model.beam if beam is None else beam
        ids = self.translate_ids(model, self.encode_sources(texts, warn), beam, self.cfg.model.length_penalty)
        return [self.target_tokenizer.decode(seq) for seq in ids]

    @torch.no_grad()
    def translate_nbest(self, model: nn.Module, texts: list[str], beam: int | None = None, n: int = 1,
                        warn: Callable[[str], None] | None = None, batch_size: int = 128) -> list[list[dict]]:
        """The `n` best translations of each text, best first, each with its score (the
        length-normalized log-probability beam search ranks by); the beam is at least `n`
        wide. The first equals translate()'s for the same beam."""
        from seqlab import decode

        beam = max(self.cfg.model.beam if beam is None else beam, n)
        model.eval()
        device = next(model.parameters()).device
        step = self._step_fn(model)
        sources = self.encode_sources(texts, warn)
        out: list[list[dict]] = []
        for start in range(0, len(sources), max(1, batch_size // beam)):
            rows = sources[start:start + max(1, batch_size // beam)]
            src, lengths = pad_sequences(rows)
            memory = model.encode(src.to(device), lengths.to(device))
            found = decode.beam_search_batch(step, (None, memory), BOS_ID, EOS_ID, beam,
                                             [self.max_output(len(r)) for r in rows], select=select_state,
                                             length_penalty=self.cfg.model.length_penalty)
            out += [[{"translation": self.target_tokenizer.decode(h.tokens), "score": round(float(h.score), 6)}
                     for h in hyps[:n]] for hyps in found]
        return out

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: nn.Module, examples: list[dict], out_dir: Path | None = None,
                 beam: int | None = None) -> dict[str, Any]:
        """Cross-entropy / perplexity (teacher forced) and BLEU / chrF of the decoded split."""
        model.eval()
        batches = self.loader(self.encode(examples), shuffle=False, batch_size=128, shard=False)
        nats, _ = summed_nll((model(b["ids"], b["lengths"], b["target_in"], b["target_lengths"]), b["targets"])
                             for b in batches)
        beam = self.cfg.model.beam if beam is None else beam
        metrics = self._metrics(examples, nats, self.translate(model, [ex["source"] for ex in examples], beam), beam)
        if out_dir is not None and self.cfg.model.attention != "none" and examples:
            self.attention_heatmap(model, examples[0]["source"], Path(out_dir) / "attention.png")
        return metrics

    def evaluate_exported(self, runner, examples: list[dict], out_dir: Path | None = None,
                          beam: int | None = None) -> dict[str, Any]:
        batches = self.loader(self.encode(examples), shuffle=False, batch_size=128, shard=False)
        nats, _ = summed_nll((torch.from_numpy(runner.teacher_forced(b["ids"].numpy(), b["lengths"].numpy(),
                                                                     b["target_in"].numpy(),
                                                                     b["target_lengths"].numpy())), b["targets"])
                             for b in batches)
        beam = self.cfg.model.beam if beam is None else beam
        return self._metrics(examples, nats, runner.translate([ex["source"] for ex in examples], beam), beam)

    def export_graphs(self, model) -> list[Graph]:
        """An encoder-decoder as two graphs: `encoder` reads source ids and gives the memory the
        decoder reads (per-step states, attention keys, mask, summary) and the decoder's starting
        state; `step` reads new target ids, the memory and a decoder state, and gives the scores
        after every new id and the state after the last. Beam search and greedy decoding stay in
        Python (seqlab.onnx), picking rows of the memory and state between steps."""

        model = model.eval()
        src, src_lengths = example_ids(self.tokenizer.vocab_size, batch=2, steps=5)
        src = torch.where(src_lengths[:, None] > torch.arange(5)[None, :], src.clamp(min=4), src)
        with torch.no_grad():
            memory = model.encode(src, src_lengths)
            start = flat_state(model.bridge(memory.summary))
        fields = ["states", "mask", "summary"] + (["prepared"] if memory.prepared is not None else [])
        n_state = len(start)
        names = [f"state{i}" for i in range(n_state)]

        class Encode(nn.Module):
            def __init__(self):
                super().__init__()
                self.s2s = model

            def forward(self, src, src_lengths):
                mem = self.s2s.encode(src, src_lengths)
                return (*(getattr(mem, f) for f in fields), *flat_state(self.s2s.bridge(mem.summary)))

        class Step(nn.Module):
            def __init__(self):
                super().__init__()
                self.s2s = model

            def forward(self, tgt, tgt_lengths, *rest):
                values = dict(zip(fields, rest[: len(fields)]))
                mem = Memory(values["states"], values.get("prepared"), values["mask"], values["summary"])
                state = rest[len(fields):]
                scores, after, _ = self.s2s.decode(tgt, tgt_lengths, mem, tuple(state) if n_state > 1 else state[0])
                return (scores, *flat_state(after))

        source_axes = {"states": {0: "batch", 1: "source"}, "mask": {0: "batch", 1: "source"},
                       "summary": {0: "batch"}, "prepared": {0: "batch", 1: "source"}}
        state_axes = {n: {1: "batch"} for n in names}
        encoder = Graph("encoder", Encode(), {"src": src, "src_lengths": src_lengths}, [*fields, *names],
                        {"src": {0: "batch", 1: "source"}, "src_lengths": {0: "batch"},
                         **{f: source_axes[f] for f in fields}, **state_axes})
        tgt = torch.tensor([[BOS_ID, 5, 6], [BOS_ID, 7, 0]])
        step_inputs = {"tgt": tgt, "tgt_lengths": torch.tensor([3, 2]),
                       **{f: getattr(memory, f) for f in fields}, **dict(zip(names, start))}
        out_names = ["scores", *[f"{n}_out" for n in names]]
        step = Graph("step", Step(), step_inputs, out_names,
                     {"tgt": {0: "batch", 1: "time"}, "tgt_lengths": {0: "batch"}, "scores": {0: "batch", 1: "time"},
                      **{f: source_axes[f] for f in fields}, **state_axes,
                      **{f"{n}_out": {1: "batch"} for n in names}})
        return [encoder, step]

    @staticmethod
    def _metrics(examples: list[dict], nats: float, hyps: list[str], beam: int) -> dict[str, Any]:
        import sacrebleu

        refs = [ex["target"] for ex in examples]
        bleu = sacrebleu.metrics.BLEU()
        chrf = sacrebleu.metrics.CHRF()
        bleu_score, chrf_score = bleu.corpus_score(hyps, [refs]), chrf.corpus_score(hyps, [refs])
        return {
            "bleu": bleu_score.score, "chrf": chrf_score.score,
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature()),
            **nll_metrics(nats), "beam": beam,
            "examples": len(examples),
            "samples": [{"source": ex["source"], "reference": ex["target"], "translation": h}
                        for ex, h in list(zip(examples, hyps))[:5]],
        }

    @torch.no_grad()
    def attention_weights(self, model: nn.Module, text: str, beam: int | None = None):
        """(source tokens, translation tokens, weights (T, S)) for one sentence."""
        if model.attention is None:
            raise SeqlabError("this model has no attention (trained with --attention none)")
        src = self.encode_sources([text])[0]
        out = self.translate_ids(model, [src], self.cfg.model.beam if beam is None else beam,
                                 self.cfg.model.length_penalty)[0]
        tgt_in = torch.tensor([[BOS_ID, *out]])
        memory = model.encode(torch.tensor([src]), torch.tensor([len(src)]))
        _, _, weights = model.decode(tgt_in, torch.tensor([tgt_in.size(1)]), memory)
        src_tokens = [self.source_tokenizer.id_to_token(i) for i in src]
        tgt_tokens = [self.target_tokenizer.id_to_token(i) for i in out] + ["<eos>"]
        return src_tokens, tgt_tokens, weights[0].float().cpu().numpy()

    def attention_heatmap(self, model: nn.Module, text: str, path: Path, beam: int | None = None) -> Path:
        from seqlab.report import plot_attention

        src_tokens, tgt_tokens, weights = self.attention_weights(model, text, beam)
        plot_attention(src_tokens, tgt_tokens, weights, path)
        return path

    def trace_outputs(self, model: nn.Module, reading: Reading) -> dict[str, Any]:
        """The beam's n-best translations of the source read, and the attention of the best
        one over the source tokens (None without attention)."""
        # the typed text unless it was cut to the limit (decoding ids drops unknown words)
        text = self.source_tokenizer.decode(reading.ids[0].tolist()) if reading.truncated else reading.text
        beam = self.cfg.model.beam
        nbest = self.translate_nbest(model, [text], beam=beam, n=min(beam, 5))[0]
        attention = None
        if model.attention is not None:
            src, tgt, weights = self.attention_weights(model, text, beam)
            attention = {"source": src, "target": tgt, "weights": [[round(float(w), 4) for w in row]
                                                                   for row in weights]}
        return {"translation": nbest[0]["translation"], "n_best": nbest, "beam": beam, "attention": attention}

    # -- prediction ----------------------------------------------------------------------
    def predict(self, model: nn.Module, texts: list[str]) -> list[dict[str, Any]]:
        return [{"translation": t} for t in self.translate(model, texts)]

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        return output["translation"]

    # -- persistence ---------------------------------------------------------------------
    def save_vocab(self, directory: Path) -> None:
        super().save_vocab(directory)
        self.target_tokenizer.save(directory / TARGET_TOKENIZER)

    def load_vocab(self, directory: Path, state: dict[str, Any]) -> None:
        super().load_vocab(directory, state)
        self.target_tokenizer = TextTokenizer.load(directory / TARGET_TOKENIZER)
