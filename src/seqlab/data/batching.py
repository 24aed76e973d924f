"""Length-bucketed batches, padded per batch.

Padding every batch to its own longest sequence (after grouping similar lengths) costs
little: DESIGN.md measured sorting + per-batch cutting 42% faster than padding to a fixed
length, while `pack_padded_sequence` made a CPU LSTM epoch 6.6x slower. So batches are plain
padded tensors plus lengths; the families mask what the padding would otherwise change.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from seqlab.data.tokenize import PAD_ID


def pad_sequences(
    seqs: Sequence[Sequence[int]], pad_id: int = PAD_ID
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists to the longest one -> ids (B, T), lengths (B,)."""
    lengths = torch.tensor([max(len(s), 1) for s in seqs], dtype=torch.long)
    ids = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for row, seq in enumerate(seqs):
        if len(seq):
            ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return ids, lengths


def distributed_rank_and_size() -> tuple[int, int]:
    """(rank, world size) of the running torch.distributed group; (0, 1) outside one."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


GHOST = "ghost"  # an item (and batch) key: a stand-in that counts for nothing (see BucketBatchSampler)


class ListDataset(Dataset):
    """A list of already-encoded examples (dicts); collation is the task's job.

    Index len + i is example i as a ghost (`{GHOST: True}` added): the sampler's stand-in for
    a rank whose share of a global batch is empty."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        if index >= len(self.items):
            return {**self.items[index - len(self.items)], GHOST: True}
        return self.items[index]


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, in a random order that depends only on (seed, epoch).

    Each epoch shuffles all indices, cuts them into pools of `pool_batches` batches, sorts each
    pool by length and slices it into batches, then shuffles the batch order. Depending only on
    (seed, epoch) makes a resumed run see the same batches as an uninterrupted one.

    `batch_size` is the global batch. Under distributed training (W ranks) every rank builds
    the same global batches in the same order and takes its share of each: the batch's
    examples r, r + W, r + 2W, ... (the batch is sorted by length, so the shares pad alike).
    Every rank thus runs as many steps as one process would, each step one global batch.
    A global batch of fewer than W examples (only ever the last) leaves some ranks nothing:
    such a rank gets a ghost (dataset index len + i, see ListDataset), a real example the
    training step weighs by zero and validation skips, since DDP needs every rank to step.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.epoch = 0
        # None: ask torch.distributed when iterating, since Lightning starts the process
        # group after the loaders are built
        self._rank, self._world_size = rank, world_size
        # Lightning calls set_epoch on `batch_sampler.sampler`, not on the batch sampler
        self.sampler = self

    @property
    def rank(self) -> int:
        return self._rank if self._rank is not None else distributed_rank_and_size()[0]

    @property
    def world_size(self) -> int:
        return self._world_size if self._world_size is not None else distributed_rank_and_size()[1]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[np.ndarray]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n)
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self.rank, self.world_size
        for batch in self._all_batches():
            share = batch[rank::world]
            yield share.tolist() if len(share) else [int(batch[0]) + len(self.lengths)]

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)
