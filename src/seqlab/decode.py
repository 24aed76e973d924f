"""Decoding: turning a model's next-token scores into tokens, shared by every task that
writes sequences (lm sampling from a prime; generate and translate later).

Models stay out of this module. A decoder drives a *step function*

    step_fn(new_ids (1, t) long, state) -> (logits (1, V) for the token after new_ids, state)

which a recurrent model implements by carrying its hidden state, and a stateless causal
model (cnn, bow) by keeping the last window of ids as its "state" and re-running on it
(`windowed` below). Sampling draws from a CPU torch.Generator seeded once, so a seed gives
the same tokens whatever device the model runs on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from seqlab.errors import SeqlabError

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def check_sampling(temperature: float, top_k: int | None) -> None:
    """Temperature must be > 0 (0 would divide by zero: use greedy decoding for that), top_k
    None (no cut) or >= 1."""
    if temperature is None or not temperature > 0:
        raise SeqlabError(f"--temperature must be above 0 (got {temperature}); lower values "
                          "(e.g. 0.5) give safer text, higher values (e.g. 1.2) wilder text")
    if top_k is not None and top_k < 1:
        raise SeqlabError(f"--top-k must be at least 1 (got {top_k}); leave it out to sample "
                          "from every token")


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most likely token of each row: (B, V) -> (B,)."""
    return logits.argmax(dim=-1)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample one token per row from softmax(logits / temperature), keeping only the top_k
    most likely tokens when given: (B, V) -> (B,). top_k=1 is greedy decoding."""
    check_sampling(temperature, top_k)
    scores = logits.detach().float().cpu() / temperature  # (B, V)
    if top_k is not None and top_k < scores.size(-1):
        kth = scores.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU generator from `seed`, or from the OS when seed is None (a different text each run)."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**63)
    return torch.Generator().manual_seed(int(seed))


@torch.no_grad()
def generate(
    step_fn: StepFn,
    start_state: Any,
    prime_ids: Sequence[int],
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    *,
    sample: bool = True,
) -> Iterator[int]:
    """Autoregressive decoding: read `prime_ids`, then yield `length` new token ids one at a
    time (sampled, or greedy with sample=False), each fed back as the next input.

    A generator, so callers can stream text as it is produced."""
    if sample:
        check_sampling(temperature, top_k)
    if length < 0:
        raise SeqlabError(f"--length must be 0 or more (got {length})")
    if not len(prime_ids):
        raise SeqlabError("generation needs at least one start token")
    gen = make_generator(seed)
    logits, state = step_fn(torch.tensor([list(prime_ids)], dtype=torch.long), start_state)
    for i in range(length):
        token = sample_next(logits, temperature, top_k, gen) if sample else greedy(logits)
        yield int(token[0])
        if i + 1 < length:
            logits, state = step_fn(token.view(1, 1), state)


def windowed(forward: Callable[[torch.Tensor], torch.Tensor], window: int) -> StepFn:
    """A step function for a stateless causal model `forward(ids (1, t)) -> logits (1, t, V)`
    that sees at most `window` tokens: the state is the last `window` ids, re-run each step."""

    def step(new_ids: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        ids = new_ids if state is None else torch.cat([state, new_ids.to(state.device)], dim=1)
        ids = ids[:, -window:]  # (1, <= window)
        return forward(ids)[:, -1], ids

    return step


# Beam search (keep the k best partial sequences by summed log-probability, with a length
# penalty) belongs here too; the translate task adds `beam_search(step_fn, ...)` beside
# `generate`, on the same step-function contract.
