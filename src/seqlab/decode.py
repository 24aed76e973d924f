"""Decoding: turning a model's next-token scores into tokens, shared by every task that
writes sequences: lm samples from a prime, generate samples names for a condition (in
batches), translate decodes greedily or with beam search.

Models stay out of this module. A decoder drives a *step function*

    step_fn(new_ids (B, t) long, state) -> (logits (B, V) for the token after new_ids, state)

which a recurrent model implements by carrying its hidden state, and a stateless causal
model (cnn, bow) by carrying the last ids of its receptive field as its "state"
(tasks/lm.py's LanguageModel). Sampling draws from a CPU torch.Generator seeded once, so a seed gives
the same tokens whatever device the model runs on.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from seqlab.errors import SeqlabError

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]

MAX_LENGTH = 100_000  # tokens one generate call may write (--length); more is a run, not a sample
MAX_TEXTS = 10_000  # texts one conditional sample may write (-n)


def check_length(length: int | None, flag: str = "--length") -> None:
    if length is not None and not 0 <= length <= MAX_LENGTH:
        raise SeqlabError(f"{flag} must be between 0 and {MAX_LENGTH:,} tokens (got {length})")


def check_sampling(temperature: float, top_k: int | None) -> None:
    """Temperature must be > 0 (0 would divide by zero: use greedy decoding for that), top_k
    None (no cut) or >= 1."""
    if temperature is None or not temperature > 0 or not math.isfinite(temperature):
        raise SeqlabError(f"--temperature must be above 0 and finite (got {temperature}); lower values "
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


@torch.no_grad()
def sample_batch(
    step_fn: StepFn,
    start_state: Any,
    prime_ids: torch.Tensor,
    max_length: int | Sequence[int],
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    *,
    stop_id: int,
    sample: bool = True,
) -> list[list[int]]:
    """Decode B sequences at once: read `prime_ids` (B, t), then sample (or, with
    sample=False, pick greedily) up to `max_length` tokens per row, a row ending at
    `stop_id` (not included); `max_length` may differ per row. Rows that have stopped keep
    stepping but their tokens are dropped."""
    if sample:
        check_sampling(temperature, top_k)
    rows = prime_ids.size(0)
    limits = [max_length] * rows if isinstance(max_length, int) else list(max_length)
    if min(limits) < 1:
        raise SeqlabError(f"the maximum length must be at least 1 (got {min(limits)})")
    gen = make_generator(seed)
    out: list[list[int]] = [[] for _ in range(rows)]
    done = torch.zeros(rows, dtype=torch.bool)
    logits, state = step_fn(prime_ids, start_state)
    for _ in range(max(limits)):
        tokens = (sample_next(logits, temperature, top_k, gen) if sample else greedy(logits)).cpu()
        for r in (~done).nonzero().flatten().tolist():
            if int(tokens[r]) == stop_id:
                done[r] = True
            else:
                out[r].append(int(tokens[r]))
                done[r] = len(out[r]) >= limits[r]
        if bool(done.all()):
            break
        logits, state = step_fn(tokens.view(-1, 1), state)
    return out


@dataclass
class Hypothesis:
    tokens: list[int]  # without the start token and without the end token
    log_prob: float  # summed log-probability, the end token included when finished
    score: float  # what the hypotheses are ranked by (length-normalized log_prob)


def length_normalized(log_prob: float, length: int, alpha: float) -> float:
    """Summed log-probability / length**alpha (fairseq's convention; alpha 0 ranks by raw
    log-probability, which favors short outputs; 1 ranks by mean log-probability per token)."""
    return log_prob / max(length, 1) ** alpha


@torch.no_grad()
def beam_search_batch(
    step_fn: StepFn,
    start_state: Any,
    start_id: int,
    stop_id: int,
    beam: int,
    max_lengths: Sequence[int],
    *,
    select: Callable[[Any, torch.Tensor], Any],
    length_penalty: float = 1.0,
) -> list[list[Hypothesis]]:
    """Keep the `beam` best partial outputs of each input by summed log-probability.

    `start_state` holds one row per input (len(max_lengths) rows). `step_fn` gets the last
    token of every live hypothesis of every input (k, 1) and their state; `select(state,
    index)` picks rows of a state (index: (k,) long). The live hypotheses of all inputs run
    as one batch, grouped by input; each input's search is independent of the others: at each
    step its best `live` continuations are taken, those ending in `stop_id` are finished and
    its beam shrinks by one for each, so width 1 is exactly greedy decoding. Returns, per
    input, the finished (or, at its max length, unfinished) hypotheses, best first by
    `length_normalized` score."""
    if beam < 1:
        raise SeqlabError(f"--beam must be at least 1 (got {beam}); 1 is greedy decoding")
    if min(max_lengths, default=1) < 1:
        raise SeqlabError(f"the maximum length must be at least 1 (got {min(max_lengths)})")
    n = len(max_lengths)
    live_tokens: list[list[list[int]]] = [[[]] for _ in range(n)]  # per input, per live row
    live_scores = [torch.zeros(1) for _ in range(n)]
    finished: list[list[Hypothesis]] = [[] for _ in range(n)]
    logits, state = step_fn(torch.full((n, 1), start_id, dtype=torch.long), start_state)
    for step in range(max(max_lengths, default=0)):
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()  # (k, V), rows grouped by input
        vocab = logp.size(1)
        next_rows: list[int] = []
        next_tokens: list[int] = []
        offset = 0
        for i in range(n):
            k = len(live_tokens[i])
            if not k:
                continue
            total = (live_scores[i][:, None] + logp[offset : offset + k]).flatten()  # (k * V)
            best = total.topk(min(beam - len(finished[i]), total.numel()))
            rows = torch.div(best.indices, vocab, rounding_mode="floor").tolist()
            keep: list[tuple[int, int, float]] = []
            for value, row, token in zip(best.values.tolist(), rows, (best.indices % vocab).tolist()):
                seq = live_tokens[i][row]
                if token == stop_id:
                    finished[i].append(Hypothesis(seq, value, length_normalized(value, len(seq) + 1, length_penalty)))
                else:
                    keep.append((row, token, value))
            if not keep or step + 1 == max_lengths[i]:
                for row, token, value in keep:  # cut at the maximum length
                    seq = live_tokens[i][row] + [token]
                    finished[i].append(Hypothesis(seq, value, length_normalized(value, len(seq), length_penalty)))
                keep = []
            live_tokens[i] = [live_tokens[i][row] + [token] for row, token, _ in keep]
            live_scores[i] = torch.tensor([value for _, _, value in keep])
            next_rows += [offset + row for row, _, _ in keep]
            next_tokens += [token for _, token, _ in keep]
            offset += k
        if not next_rows:
            break
        logits, state = step_fn(torch.tensor(next_tokens).view(-1, 1), select(state, torch.tensor(next_rows)))
    return [sorted(f, key=lambda h: h.score, reverse=True) for f in finished]
