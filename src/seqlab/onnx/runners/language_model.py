"""The `language-model` layout (tasks/lm.py): a `prime` graph reads ids from no state, a
`step` graph carries the state on."""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlab.errors import SeqlabError
from seqlab.onnx.arrays import draw, softmax
from seqlab.onnx.runners.base import Runner, check_sampling, states
from seqlab.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

CLOSING = set(".,;:!?)]}'\"%")  # tasks/lm.py: word level prints no space before these


class LMRunner(Runner):
    """A language model: `prime` reads ids from no state, `step` carries the state on.
    predict gives the same figures as tasks/lm.py; generate samples with numpy (top_k=1 is
    greedy and gives torch's tokens exactly; other settings draw from numpy's generator, so a
    seed repeats an ONNX text but not the torch path's)."""

    verbs = frozenset({"predict", "generate"})

    def __init__(self, *args):
        super().__init__(*args)
        self.char_level = self.settings["data"]["tokenizer"] == "char"
        # tasks/lm.py: specials never occur as targets; word level keeps <eos>, the line break
        self.banned = [PAD_ID, UNK_ID, BOS_ID] + ([EOS_ID] if self.char_level else [])

    def _scores(self, graph: str, ids: np.ndarray, state: list[np.ndarray] | None):
        lengths = np.full(len(ids), ids.shape[1], dtype=np.int64)
        outputs = self.run_all(graph, ids=ids.astype(np.int64), lengths=lengths, **states(state))
        return outputs[0].astype(np.float32), outputs[1:]  # scores (B, t, V), state

    def _run(self, graph: str, ids: list[int] | np.ndarray, state: list[np.ndarray] | None = None):
        """One text's ids -> scores (1, t, V) and the state after them."""
        return self._scores(graph, np.asarray(ids, dtype=np.int64).reshape(1, -1), state)

    def scores(self, ids: np.ndarray, state: list[np.ndarray] | None = None):
        """ids (B, t) -> scores (B, t, V) and the state after them (`seqlab test`: windows of a
        stream read row by row, the state carried from one window to the next)."""
        return self._scores("prime" if state is None else "step", ids, state)

    def _next_scores(self, scores: np.ndarray) -> np.ndarray:
        last = scores[0, -1].copy()
        last[self.banned] = -np.inf
        return last

    def start_ids(self, prime: str) -> list[int]:
        if prime:
            ids = self.tokenizer.encode(prime)
            if ids:
                return ids
        newline = self.tokenizer.token_to_id("\n") if self.char_level else EOS_ID
        return [newline if newline is not None else UNK_ID]

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        outputs = []
        for text in texts:
            ids = self.tokenizer.encode(text) or self.start_ids("")
            scores, _ = self._run("prime", ids)
            nats = None
            if len(ids) > 1:
                logits = scores[0, :-1].astype(np.float64)
                peak = logits.max(axis=-1)
                lse = peak + np.log(np.exp(logits - peak[:, None]).sum(axis=-1))
                nats = float((lse - logits[np.arange(len(ids) - 1), ids[1:]]).mean())
            probs = softmax(self._next_scores(scores).astype(np.float64))
            top = np.argsort(-probs, kind="stable")[: min(5, probs.size)]
            outputs.append({"nats_per_token": nats,
                            "next": [{"token": self.tokenizer.id_to_token(int(i)), "probability": round(float(probs[i]), 6)}
                                     for i in top]})
        return outputs

    def generate_ids(self, prime: str = "", length: int = 200, temperature: float = 1.0, top_k: int | None = None,
                     seed: int | None = None):
        check_sampling(temperature, top_k)
        if length < 0:
            raise SeqlabError(f"--length must be 0 or more (got {length})")
        rng = np.random.default_rng(seed)
        scores, state = self._run("prime", self.start_ids(prime))
        for i in range(length):
            token = int(draw(self._next_scores(scores)[None], temperature, top_k, rng)[0])
            yield token
            if i + 1 < length:
                scores, state = self._run("step", [token], state)

    def token_text(self, token: int, previous: str) -> str:
        if self.char_level:
            return self.tokenizer.id_to_token(token)
        if token == EOS_ID:
            return "\n"
        word = self.tokenizer.id_to_token(token)
        glue = not previous or previous.endswith(("\n", " ")) or word[0] in CLOSING
        return word if glue else " " + word

    def generate(self, prime: str = "", length: int = 200, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None) -> str:
        pieces, previous = [], prime
        for token in self.generate_ids(prime, length, temperature, top_k, seed):
            previous = self.token_text(token, previous)
            pieces.append(previous)
        return prime + "".join(pieces)

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        nats = output["nats_per_token"]
        guesses = " ".join(f"{g['token']!r}:{g['probability']:.2f}" for g in output["next"])
        return f"{'-' if nats is None else f'{nats:.3f}'}\tnext {guesses}\t{text}"

