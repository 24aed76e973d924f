"""Bag of words: the mean of token embeddings (optionally plus hashed bigrams), then an MLP.

Order-free by construction: permuting the tokens of a sequence leaves the summary unchanged
(bigrams put back a little local order, as in fastText). Per-step states are each token's own
embedding through the same MLP (for tagging), or, when causal, the mean over the previous
`context` tokens (a language-model baseline that sees an unordered window).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from seqlab.config import one_of, setting
from seqlab.families.base import Encoded, Encoder, Trace, keras_init, length_mask, masked_mean

if TYPE_CHECKING:
    from seqlab.config import ModelConfig

_BIGRAM_PRIME = 1_000_003
CAUSAL_CONTEXT = 8


@dataclass
class BowSettings:
    bigrams: bool = setting(False, "bow: add hashed bigram features (fastText style)", search=one_of(False, True))
    # 2**18 buckets x 128 dims is 33M dense-Adam parameters: minutes per trial on sentence sets
    hash_buckets: int = setting(2**18, "bow: buckets for hashed bigrams", min=1, search=one_of(2**14, 2**16))


class BagOfWords(Encoder):

    @staticmethod
    def order_seen(cfg: ModelConfig) -> str:
        return "adjacent word pairs (hashed bigrams)" if cfg.bigrams else "none: a bag of words"
    def __init__(self, vocab_size: int, cfg: ModelConfig, *, causal: bool = False, extra_dim: int = 0):
        super().__init__()
        self.vocab_size = vocab_size
        self.buckets = cfg.hash_buckets if cfg.bigrams else 0
        self.causal = causal
        # EmbeddingBag averages without materializing (B, T, E); pad (id 0) is left out of the mean
        self.bag = nn.EmbeddingBag(vocab_size + self.buckets, cfg.embed_dim, mode="mean", padding_idx=0)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.embed_dim + extra_dim, cfg.hidden_dim), nn.ReLU(), nn.Dropout(cfg.dropout)
        )
        self.state_dim = self.summary_dim = cfg.hidden_dim
        keras_init(self)

    @property
    def context_size(self) -> int:
        return CAUSAL_CONTEXT - 1 if self.causal else 0

    @property
    def token_embedding(self) -> nn.EmbeddingBag:
        return self.bag  # rows past the vocabulary are the hashed bigrams

    def _bigram_ids(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hash each adjacent pair into one of `buckets` extra rows: (B, T) -> (B, T-1)."""
        hashed = (ids[:, :-1] * _BIGRAM_PRIME + ids[:, 1:]) % self.buckets + self.vocab_size
        return hashed.masked_fill(~mask[:, 1:], 0)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, state=None, extra=None) -> Encoded:
        mask = length_mask(lengths, ids.size(1))  # (B, T)
        emb = F.embedding(ids, self.bag.weight, padding_idx=0)  # (B, T, E); pad rows are zero
        if extra is not None:  # the task's per-token features stay per token: (B, T, E + X)
            emb = torch.cat([emb, extra.to(emb.dtype)], dim=-1)
        if self.causal:
            # mean of the last CAUSAL_CONTEXT embeddings up to and including step t
            csum = emb.cumsum(dim=1)
            shifted = torch.nn.functional.pad(csum, (0, 0, CAUSAL_CONTEXT, 0))[:, : ids.size(1)]
            count = torch.arange(1, ids.size(1) + 1, device=ids.device).clamp(max=CAUSAL_CONTEXT)
            states = self.mlp((csum - shifted) / count[None, :, None])
            return Encoded(states, states[:, -1], mask)
        bag_ids = ids
        if self.buckets and ids.size(1) > 1:
            bag_ids = torch.cat([ids, self._bigram_ids(ids, mask)], dim=1)  # (B, 2T-1)
        bag = self.bag(bag_ids)  # (B, E)
        if extra is not None:
            bag = torch.cat([bag, masked_mean(extra.to(bag.dtype), mask)], dim=-1)  # (B, E + X)
        summary = self.mlp(bag)  # (B, H)
        return Encoded(self.mlp(emb), summary, mask)

    def trace(self, ids: torch.Tensor, lengths: torch.Tensor, extra=None) -> Trace:
        """Each token's features through the MLP (the per-step states), and the view
        "bag share" (B, T, E): each token's embedding divided by the bag's size, so the shares
        of a text sum to its bag vector (hashed bigrams' rows, when on, are left out)."""
        layers = {"token features": self(ids, lengths, extra=extra).states}
        if self.causal:
            return Trace(layers)
        mask = length_mask(lengths, ids.size(1))
        emb = F.embedding(ids, self.bag.weight, padding_idx=0)  # (B, T, E)
        n = lengths.clamp(min=1).to(emb.dtype)
        if self.buckets:
            n = n + (lengths - 1).clamp(min=0).to(emb.dtype)  # the bag also averages T-1 bigram rows
        share = emb * mask[..., None] / n[:, None, None]
        return Trace(layers, {"bag share": share})
