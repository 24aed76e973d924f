"""Recurrent encoders: Elman RNN, LSTM or GRU; stacked; optionally bidirectional.

Batches are plain right-padded tensors, not packed sequences (packing measured ~6x slower on
these CPUs, DESIGN.md). Forward-direction outputs at real steps never see the padding that
follows them. A backward direction would start in the padding, so each backward layer runs
on the sequences reversed *within their lengths* and its outputs are flipped back: exact, and
still the fast padded kernel. Cell-specific state (LSTM's (h, c)) stays inside this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from seqlab.config import int_range, one_of, setting
from seqlab.errors import SeqlabError
from seqlab.families.base import (
    Encoded,
    Encoder,
    Trace,
    embed,
    keras_init,
    last_step,
    length_mask,
    make_embedding,
    masked_max,
    masked_mean,
)

if TYPE_CHECKING:
    from seqlab.config import ModelConfig

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
POOLINGS = ("last", "max", "mean")


@dataclass
class RecurrentSettings:
    cell: str = setting("lstm", "recurrent cell: lstm, gru or rnn (translate: the decoder's with a bow/cnn "
                        "encoder)", choices=tuple(CELLS))
    layers: int = setting(1, "stacked recurrent layers", min=1, search=int_range(1, 2))
    bidirectional: bool = setting(False, "read both directions (rnn family)", search=one_of(False, True))
    pooling: str = setting("last", "rnn sequence summary: last, max, mean, or several joined with + (max+mean)",
                           check=lambda spec: parse_pooling(spec), search=one_of("last", "max", "mean", "max+mean"))
    # RCNN (Lai et al. 2015) max-pools over [token embedding ; context states]: max over a
    # concatenation is the concatenation of the maxes, so the embeddings' max joins the summary
    pool_embeddings: bool = setting(False, "rnn summary: also max-pool the token embeddings beside the states "
                                    "(RCNN, Lai et al. 2015), so single cue words reach the head directly",
                                    search=one_of(False, True))


def parse_pooling(spec: str) -> tuple[str, ...]:
    """"max" or a concatenation such as "max+mean" (ULMFiT's concat pooling is
    "last+max+mean"): each summary is computed and the vectors are joined."""
    parts = tuple(p.strip() for p in spec.split("+"))
    bad = [p for p in parts if p not in POOLINGS]
    if bad or len(set(parts)) != len(parts):
        raise SeqlabError(
            f"unknown pooling {spec!r}; choose one of {', '.join(POOLINGS)} or join them with '+' (e.g. max+mean)"
        )
    return parts


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's real steps, leaving its padding in place: (B, T, ...)."""
    steps = torch.arange(x.size(1), device=x.device)[None, :]  # (1, T)
    rev = lengths[:, None] - 1 - steps
    index = torch.where(rev >= 0, rev, steps)  # (B, T)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class RecurrentEncoder(Encoder):

    @staticmethod
    def order_seen(cfg: ModelConfig) -> str:
        return "the whole text, both directions" if cfg.bidirectional else "the whole text, left to right"
    stateful = True  # takes an initial (h) or (h, c) and returns the final one

    def __init__(self, vocab_size: int, cfg: ModelConfig, *, causal: bool = False, extra_dim: int = 0):
        super().__init__()
        self.vocab_size = vocab_size
        if cfg.cell not in CELLS:
            raise SeqlabError(f"unknown cell {cfg.cell!r}; choose one of: {', '.join(CELLS)}")
        if causal and cfg.bidirectional:
            raise SeqlabError("a bidirectional model sees the future; use --no-bidirectional for this task")
        self.bidirectional = cfg.bidirectional
        self.poolings = parse_pooling(cfg.pooling)
        self.embedding = make_embedding(vocab_size, cfg.embed_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        cell = CELLS[cfg.cell]
        in_dim = cfg.embed_dim + extra_dim
        if self.bidirectional:
            # one single-layer module per layer and direction, so layer l+1 reads both
            # directions of layer l
            dims = [in_dim] + [2 * cfg.hidden_dim] * (cfg.layers - 1)
            self.forward_layers = nn.ModuleList(cell(d, cfg.hidden_dim, batch_first=True) for d in dims)
            self.backward_layers = nn.ModuleList(cell(d, cfg.hidden_dim, batch_first=True) for d in dims)
        else:
            self.rnn = cell(
                in_dim,
                cfg.hidden_dim,
                num_layers=cfg.layers,
                batch_first=True,
                dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            )
        self.state_dim = cfg.hidden_dim * (2 if self.bidirectional else 1)
        self.pool_embeddings = cfg.pool_embeddings
        self.summary_dim = self.state_dim * len(self.poolings) + (in_dim if self.pool_embeddings else 0)
        keras_init(self)

    def _run_bidirectional(self, x: torch.Tensor, lengths: torch.Tensor,
                           record: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """`record` (trace) receives each layer's forward and backward outputs by name."""
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i:
                x = self.dropout(x)
            out_f, _ = fwd(x)  # (B, T, H)
            out_b, _ = bwd(reverse_within_length(x, lengths))
            out_b = reverse_within_length(out_b, lengths)
            if record is not None:
                record[f"layer {i + 1} forward"], record[f"layer {i + 1} backward"] = out_f, out_b
            x = torch.cat([out_f, out_b], dim=-1)  # (B, T, 2H)
        return x

    def trace(self, ids: torch.Tensor, lengths: torch.Tensor, extra=None) -> Trace:
        """Every layer's (and direction's) hidden state h per step (an LSTM's cell state c is
        left out). A stacked one-direction module hides its lower layers' outputs, so each
        layer is rerun on its own with the stacked module's own weights."""
        x = embed(self.embedding, ids, extra)
        layers: dict[str, torch.Tensor] = {}
        if self.bidirectional:
            self._run_bidirectional(x, lengths, record=layers)
            return Trace(layers)
        for k in range(self.rnn.num_layers):
            single = type(self.rnn)(x.size(-1), self.rnn.hidden_size, batch_first=True).to(x.device)
            single.load_state_dict({name: getattr(self.rnn, f"{name[:-1]}{k}") for name, _ in
                                    single.named_parameters()})
            x, _ = single(x)
            layers[f"layer {k + 1}"] = x
        return Trace(layers)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, state=None, extra=None) -> Encoded:
        mask = length_mask(lengths, ids.size(1))  # (B, T)
        embedded = embed(self.embedding, ids, extra)  # (B, T, E [+ X])
        x = self.dropout(embedded)
        if self.bidirectional:
            states, final = self._run_bidirectional(x, lengths), None
        else:
            states, final = self.rnn(x, state)  # (B, T, H)
        pooled = [self._pool(kind, states, mask, lengths) for kind in self.poolings]
        if self.pool_embeddings:  # dropped out once, with the summary below
            pooled.append(masked_max(embedded, mask))
        summary = torch.cat(pooled, dim=-1)
        return Encoded(self.dropout(states), self.dropout(summary), mask, final)

    def prefix_summaries(self, ids: torch.Tensor, chunk: int = 12) -> torch.Tensor:
        """A forward direction's state at t has read tokens 0..t only, so one reading gives
        every prefix's share of the summary (cumulative pooling). A single bidirectional
        layer reruns only its backward direction per prefix (t, t-1, ..., 0). Stacked
        bidirectional layers read the backward states below: every prefix is reread."""
        if self.bidirectional and len(self.forward_layers) > 1:
            return super().prefix_summaries(ids, chunk)
        x = embed(self.embedding, ids)  # (1, T, E)
        forward = (self.forward_layers[0](x) if self.bidirectional else self.rnn(x))[0][0]  # (T, H)
        steps = torch.arange(1, ids.size(1) + 1, device=ids.device, dtype=forward.dtype)[:, None]
        parts = {"last": [forward], "max": [forward.cummax(dim=0).values], "mean": [forward.cumsum(dim=0) / steps]}
        if self.bidirectional:
            backward = []  # per prefix t: its backward outputs, position t first (T of (t + 1, H))
            for start in range(0, ids.size(1), chunk):
                lengths = torch.arange(start + 1, min(start + chunk, ids.size(1)) + 1, device=ids.device)
                rows = x[:, : int(lengths[-1])].expand(len(lengths), -1, -1)
                out, _ = self.backward_layers[0](reverse_within_length(rows, lengths))
                backward += [out[i, :n] for i, n in enumerate(lengths.tolist())]
            parts["last"].append(torch.stack([b[-1] for b in backward]))  # backward ends at position 0
            parts["max"].append(torch.stack([b.max(dim=0).values for b in backward]))
            parts["mean"].append(torch.stack([b.mean(dim=0) for b in backward]))
        summaries = [torch.cat(parts[kind], dim=-1) for kind in self.poolings]
        if self.pool_embeddings:
            summaries.append(x[0].cummax(dim=0).values)
        return torch.cat(summaries, dim=-1)

    def _pool(self, kind: str, states: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if kind == "max":
            return masked_max(states, mask)
        if kind == "mean":
            return masked_mean(states, mask)
        if self.bidirectional:
            # forward direction ends at the last real step; backward ends at step 0
            half = states.size(-1) // 2
            return torch.cat([last_step(states[..., :half], lengths), states[:, 0, half:]], dim=-1)
        return last_step(states, lengths)


class StateBridge(nn.Module):
    """A vector -> the starting state of a stacked recurrent decoder: tanh(W v), one slice
    per layer (and an LSTM's cell state too). Used by decoders that start from a condition
    (generate) or from the encoder's summary of the source (translate)."""

    def __init__(self, in_dim: int, cell: str, layers: int, hidden_dim: int):
        super().__init__()
        self.lstm = cell == "lstm"
        self.layers, self.hidden_dim = layers, hidden_dim
        self.proj = nn.Linear(in_dim, (2 if self.lstm else 1) * layers * hidden_dim)

    def forward(self, vector: torch.Tensor):
        """(B, in_dim) -> (layers, B, H), or (h, c) for an LSTM."""
        b = vector.size(0)
        flat = torch.tanh(self.proj(vector))  # (B, parts * L * H)
        parts = flat.view(b, -1, self.layers, self.hidden_dim).permute(1, 2, 0, 3).contiguous()
        return (parts[0], parts[1]) if self.lstm else parts[0]


def select_rows(state, index: torch.Tensor):
    """Rows `index` of a recurrent state, (L, B, H) or (h, c): batch is dim 1."""
    if isinstance(state, tuple):
        return tuple(s.index_select(1, index.to(s.device)) for s in state)
    return state.index_select(1, index.to(state.device))
