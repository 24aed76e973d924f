"""1D convolutions over token embeddings (Kim, 2014): several filter widths, ReLU.

Convolutions are same-padded, so step t's state covers a window around t (for tagging) and
the sequence summary is the max over time of the real steps (for classification). Causal
mode pads on the left only, so step t sees tokens t-k+1..t and never a later one (for lm).
The pad embedding is zero, which equals the convolution's own zero padding: outputs at real
steps do not depend on how much padding follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from seqlab.config import one_of, setting
from seqlab.families.base import (
    Encoded,
    Encoder,
    Trace,
    embed,
    keras_init,
    length_mask,
    make_embedding,
    masked_max,
)

if TYPE_CHECKING:
    from seqlab.config import ModelConfig


@dataclass
class ConvSettings:
    kernel_sizes: list[int] = setting(None, "cnn filter widths, e.g. 3,4,5", default_factory=lambda: [3, 4, 5],
                                      min=1, search=one_of("3,4,5", "2,3,4", "1,2,3", "3,5,7"))
    filters: int = setting(100, "cnn filters per width", min=1, search=one_of(50, 100, 200))


class ConvEncoder(Encoder):

    @staticmethod
    def order_seen(cfg: ModelConfig) -> str:
        return f"windows of up to {max(cfg.kernel_sizes)} tokens"
    def __init__(self, vocab_size: int, cfg: ModelConfig, *, causal: bool = False, extra_dim: int = 0):
        super().__init__()
        self.vocab_size = vocab_size
        self.causal = causal
        self.embedding = make_embedding(vocab_size, cfg.embed_dim)
        self.kernel_sizes = list(cfg.kernel_sizes)
        in_dim = cfg.embed_dim + extra_dim
        self.convs = nn.ModuleList(nn.Conv1d(in_dim, cfg.filters, k) for k in self.kernel_sizes)
        self.dropout = nn.Dropout(cfg.dropout)
        self.state_dim = self.summary_dim = cfg.filters * len(self.kernel_sizes)
        keras_init(self)

    @property
    def context_size(self) -> int:
        return max(self.kernel_sizes) - 1 if self.causal else 0

    def _padding(self, k: int) -> tuple[int, int]:
        return (k - 1, 0) if self.causal else ((k - 1) // 2, k // 2)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, state=None, extra=None) -> Encoded:
        mask = length_mask(lengths, ids.size(1))  # (B, T)
        x = embed(self.embedding, ids, extra).transpose(1, 2)  # (B, E [+ X], T)
        feats = [F.relu(conv(F.pad(x, self._padding(k)))) for k, conv in zip(self.kernel_sizes, self.convs)]
        states = torch.cat(feats, dim=1).transpose(1, 2)  # (B, T, F * n_widths)
        summary = self.dropout(masked_max(states, mask))  # (B, F * n_widths)
        return Encoded(self.dropout(states), summary, mask)

    def trace(self, ids: torch.Tensor, lengths: torch.Tensor, extra=None) -> Trace:
        """Each filter width's activations per step, and per filter the window of tokens
        that wins max-over-time pooling: views "width K window" (B, F, 2) = first and last
        token of the window (clipped to the text) and "width K max" (B, F) its activation."""
        states = self(ids, lengths, extra=extra).states  # (B, T, F * n_widths), eval: no dropout
        mask = length_mask(lengths, ids.size(1))
        layers, views = {}, {}
        for k, feats in zip(self.kernel_sizes, states.split(states.size(-1) // len(self.kernel_sizes), dim=-1)):
            name = f"width {k}"
            layers[name] = feats
            best = feats.masked_fill(~mask[..., None], float("-inf")).max(dim=1)  # over time: (B, F)
            start = best.indices - self._padding(k)[0]  # step t's window starts left of t by the left pad
            last = (lengths - 1)[:, None]
            views[f"{name} window"] = torch.stack([start.clamp(min=0), (start + k - 1).clamp(max=last)], dim=-1)
            views[f"{name} max"] = best.values
        return Trace(layers, views)
