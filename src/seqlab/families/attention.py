"""Attention over an encoder's per-step states, for encoder-decoder models.

Scores between each decoder step (a query) and each source step (a key):
- `dot` (Luong): q . k — keys are first mapped to the query size when the sizes differ
  (a bidirectional encoder's states are twice the decoder's);
- `general` (Luong): q . W k;
- `additive` (Bahdanau): v . tanh(W_q q + W_k k).
Source padding gets no weight (masked before the softmax). All decoder steps are scored at
once, so training runs the attention for a whole target sentence in a few batched matmuls.
"""

from __future__ import annotations

import torch
from torch import nn

from seqlab.errors import SeqlabError

ATTENTIONS = ("none", "dot", "general", "additive")


class Attention(nn.Module):
    def __init__(self, kind: str, query_dim: int, key_dim: int):
        super().__init__()
        if kind not in ATTENTIONS or kind == "none":
            raise SeqlabError(f"unknown attention {kind!r}; choose one of: {', '.join(ATTENTIONS)}")
        self.kind = kind
        if kind == "dot":
            self.key_proj = nn.Linear(key_dim, query_dim, bias=False) if key_dim != query_dim else nn.Identity()
        elif kind == "general":
            self.key_proj = nn.Linear(key_dim, query_dim, bias=False)
        else:
            self.key_proj = nn.Linear(key_dim, query_dim, bias=False)
            self.query_proj = nn.Linear(query_dim, query_dim, bias=True)
            self.v = nn.Linear(query_dim, 1, bias=False)

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        """The part of the score that depends on the source alone, computed once per
        sentence (and kept across decoding steps): (B, S, K) -> (B, S, Q)."""
        return self.key_proj(keys)

    def forward(
        self, queries: torch.Tensor, prepared: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, T, Q), prepared keys (B, S, Q), values (B, S, K), mask (B, S) True at
        real steps -> context (B, T, K), weights (B, T, S)."""
        if self.kind == "additive":
            hidden = torch.tanh(self.query_proj(queries)[:, :, None, :] + prepared[:, None, :, :])  # (B, T, S, Q)
            scores = self.v(hidden).squeeze(-1)  # (B, T, S)
        else:
            scores = torch.bmm(queries, prepared.transpose(1, 2))  # (B, T, S)
        scores = scores.float().masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights.to(values.dtype), values)  # (B, T, K)
        return context, weights
