"""The family contract and what every family shares.

A neural family is an `Encoder`: `(token ids (B, T), lengths (B,)) -> Encoded`, with per-step
states for many-to-many tasks and a sequence summary for many-to-one tasks. Tasks put their
heads on top and read only what the contract below exposes (sizes, whether the encoder
carries a state, how far back a stateless causal encoder sees); nothing outside a family
tests which family it is.

A task may feed per-step features of its own beside the token ids (the tagger's character
features of each word): built with `extra_dim=X`, a family reads `extra` (B, T, X) appended
to its token embeddings via `embed` below. With extra_dim=0 (the default) nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from seqlab.vocab import PAD_ID

if TYPE_CHECKING:
    from seqlab.config import ModelConfig


@dataclass
class Encoded:
    states: torch.Tensor  # (B, T, state_dim): one vector per input step
    summary: torch.Tensor  # (B, summary_dim): one vector per sequence
    mask: torch.Tensor  # (B, T) bool, True at real (non-pad) steps
    state: Any = None  # recurrent state after the last step (carried across lm windows)


@dataclass
class Trace:
    """One reading of a batch laid open for the live page (seqlab.introspect): the per-step
    states of each layer (and direction) by name, and views a family adds of its own, each a
    tensor with batch first (cnn: the window that wins max-over-time pooling; bow: each
    token's share of the bag)."""

    layers: dict[str, torch.Tensor]  # name -> (B, T, H) per-step states
    views: dict[str, torch.Tensor] = field(default_factory=dict)


class Encoder(nn.Module):
    """What every neural family is. Built as `Encoder(vocab_size, cfg, causal=, extra_dim=)`:
    `cfg` is the run's model settings (the shared ones and the family's own dataclass), `causal`
    asks for step outputs that never see a later token (lm, decoders), `extra_dim` is the size
    of per-step features a task feeds beside the ids (see `embed`).

    Subclasses set in __init__:
        vocab_size   rows of the token embedding
        state_dim    size of each per-step state (Encoded.states[..., :])
        summary_dim  size of the sequence summary (Encoded.summary)
    and may override:
        stateful     True when forward takes an initial `state` and returns the final one
                     (recurrent: carried across lm windows, set by a decoder's bridge)
        token_embedding  the token-vector table (default: self.embedding)
        context_size for a stateless causal encoder, how many earlier ids step 0 of a window
                     needs to equal one unbroken text (its receptive field minus one)
    """

    @staticmethod
    def order_seen(cfg: ModelConfig) -> str:
        """What word order a model of these settings can see, in a few words (the live page's
        side-by-side column: the lecture's point is that this differs by family)."""
        return "the whole text, in order"

    stateful: ClassVar[bool] = False
    vocab_size: int
    state_dim: int
    summary_dim: int

    @property
    def context_size(self) -> int:
        return 0

    @property
    def token_embedding(self) -> nn.Embedding | nn.EmbeddingBag:
        """The table of token vectors (rows = token ids), for pretrained vectors."""
        return self.embedding

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, state: Any = None,
                extra: torch.Tensor | None = None) -> Encoded:
        raise NotImplementedError

    def trace(self, ids: torch.Tensor, lengths: torch.Tensor, extra: torch.Tensor | None = None) -> Trace:
        """The per-step states of every layer (eval mode; no state carried in). The default is
        the contract's own states; a family with more inside (layers, directions, filter
        widths) overrides this once for all tasks."""
        return Trace({"states": self(ids, lengths, extra=extra).states})

    def prefix_summaries(self, ids: torch.Tensor, chunk: int = 12) -> torch.Tensor:
        """The summary of every prefix of one text, as if the text ended there: ids (1, T) ->
        (T, summary_dim), row t = tokens 0..t (eval mode). The default rereads each prefix,
        in chunks of similar length so short ones are not padded to the longest; a family
        that can reuse one reading overrides it."""
        out = []
        for start in range(0, ids.size(1), chunk):
            lengths = torch.arange(start + 1, min(start + chunk, ids.size(1)) + 1, device=ids.device)
            rows = ids[:, : int(lengths[-1])].expand(len(lengths), -1)
            rows = rows.masked_fill(~length_mask(lengths, rows.size(1)), PAD_ID)  # pad, not later tokens
            out.append(self(rows, lengths).summary)
        return torch.cat(out)


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool mask of real steps."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_max(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over real steps only: (B, T, D), (B, T) -> (B, D)."""
    return states.masked_fill(~mask[..., None], float("-inf")).max(dim=1).values


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real steps only: (B, T, D), (B, T) -> (B, D)."""
    m = mask[..., None].to(states.dtype)
    return (states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def last_step(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The state at each sequence's last real step: (B, T, D) -> (B, D)."""
    index = (lengths - 1).clamp(min=0)[:, None, None].expand(-1, 1, states.size(-1))
    return states.gather(1, index).squeeze(1)


def embed(embedding: nn.Module, ids: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
    """Token embeddings, with the task's per-step features appended when given:
    ids (B, T), extra (B, T, X) -> (B, T, E + X)."""
    x = embedding(ids)
    return x if extra is None else torch.cat([x, extra.to(x.dtype)], dim=-1)


def make_embedding(vocab_size: int, dim: int) -> nn.Embedding:
    """Embedding whose pad row is zero and stays zero, so padding never leaks into outputs."""
    return nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)


def keras_init(module: nn.Module) -> None:
    """Keras-style initialization, measured on IMDB (DESIGN.md) to train an LSTM far faster
    than PyTorch's defaults: embeddings U(+-0.05), Glorot-uniform input weights, orthogonal
    recurrent weights, zero biases, LSTM forget-gate bias 1."""
    for sub in module.modules():
        if isinstance(sub, nn.Embedding | nn.EmbeddingBag):
            nn.init.uniform_(sub.weight, -0.05, 0.05)
            if sub.padding_idx is not None:
                with torch.no_grad():
                    sub.weight[sub.padding_idx].zero_()
        elif isinstance(sub, nn.Linear | nn.Conv1d):
            nn.init.xavier_uniform_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.RNNBase):
            gates = {"LSTM": 4, "GRU": 3}.get(type(sub).__name__, 1)
            for name, param in sub.named_parameters():
                if name.startswith("weight_ih"):
                    for block in param.data.chunk(gates, 0):
                        nn.init.xavier_uniform_(block)
                elif name.startswith("weight_hh"):
                    for block in param.data.chunk(gates, 0):
                        nn.init.orthogonal_(block)
                elif name.startswith("bias"):
                    nn.init.zeros_(param)
                    if gates == 4 and name.startswith("bias_ih"):
                        param.data.chunk(4, 0)[1].fill_(1.0)  # forget gate (i, f, g, o)
