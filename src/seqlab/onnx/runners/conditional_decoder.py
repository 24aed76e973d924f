"""The `conditional-decoder` layout (tasks/generate.py): a `start` graph gives the decoder's
state for condition ids, a `step` graph carries it on."""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlab.errors import SeqlabError
from seqlab.onnx.arrays import draw, log_softmax
from seqlab.onnx.runners.base import Runner, check_sampling, states
from seqlab.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID


class GenerateRunner(Runner):
    """A conditional generator: `start` gives the decoder's state for condition ids, `step`
    carries it on. predict ranks conditions as tasks/generate.py does; sample draws with
    numpy (top_k=1 is greedy and gives torch's texts exactly; a seed repeats an ONNX sample,
    not the torch path's), guidance included."""

    verbs = frozenset({"predict", "sample"})

    def __init__(self, *args):
        super().__init__(*args)
        self.conditions = list(self.state.get("conditions", []))

    def _start(self, conditions: np.ndarray) -> list[np.ndarray]:
        return self.run_all("start", conditions=conditions.astype(np.int64))

    def teacher_forced(self, ids: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Scores (B, T, V) of every step given the text so far (`seqlab test`)."""
        return self._step(ids, conditions, self._start(conditions))[0]

    def _step(self, ids: np.ndarray, conditions: np.ndarray, state: list[np.ndarray]):
        inputs = {"ids": ids.astype(np.int64), "lengths": np.full(len(ids), ids.shape[1], dtype=np.int64),
                  "conditions": conditions.astype(np.int64), **states(state)}
        out = self.run_all("step", **inputs)
        return out[0].astype(np.float32), out[1:]

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        outputs = []
        n = len(self.conditions)
        conditions = np.arange(n)
        for text in texts:
            ids = self.tokenizer.encode(text)
            inp = np.array([[BOS_ID, *ids]] * n)
            target = np.array([*ids, EOS_ID])
            scores, _ = self._step(inp, conditions, self._start(conditions))  # (n, T, V)
            logp = log_softmax(scores)
            nats = -logp[:, np.arange(len(target)), target].mean(axis=1)
            order = np.argsort(nats, kind="stable").tolist()
            outputs.append({"condition": self.conditions[order[0]],
                            "nats_per_char": {self.conditions[i]: round(float(nats[i]), 4) for i in order}})
        return outputs

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        best = output["condition"]
        return f"{best}\t{output['nats_per_char'][best]:.3f} nats/char\t{text}"

    def sample(self, condition: str, n: int = 10, temperature: float = 1.0, top_k: int | None = None,
               seed: int | None = None, prime: str = "", max_length: int | None = None,
               guidance: float | None = None) -> list[str]:
        model = self.settings["model"]
        if n < 1:
            raise SeqlabError(f"-n must be at least 1 (got {n})")
        if guidance is None:
            guidance = model["guidance"] if model["condition_dropout"] else 0.0
        if guidance < 0:
            raise SeqlabError(f"--guidance must be 0 or more (got {guidance})")
        if guidance and not model["condition_dropout"]:
            raise SeqlabError("--guidance needs a model trained with --condition-dropout (e.g. 0.1)")
        check_sampling(temperature, top_k)
        if condition not in self.conditions:
            raise SeqlabError(f"condition {condition!r} was not seen in training; known conditions: "
                              f"{', '.join(self.conditions)}")
        cond = np.full(n, self.conditions.index(condition))
        if guidance:  # rows n..2n-1 read the same text without the condition
            cond = np.concatenate([cond, np.full(n, len(self.conditions))])
        prime_ids = self.tokenizer.encode(prime) if prime else []
        banned, banned_first = [PAD_ID, UNK_ID, BOS_ID], ([] if prime_ids else [EOS_ID])
        limit = max_length or self.settings["data"]["max_length"] or 32
        rng = np.random.default_rng(seed)
        state = self._start(cond)

        def step(ids: np.ndarray, state, first: bool):
            if guidance:
                ids = np.concatenate([ids, ids])
            scores, after = self._step(ids, cond, state)
            scores = scores[:, -1]
            if guidance:
                conditional, unconditional = scores[:n], scores[n:]
                scores = (1 + guidance) * conditional - guidance * unconditional
            scores[:, banned + (banned_first if first else [])] = -np.inf
            return scores, after

        out: list[list[int]] = [[] for _ in range(n)]
        done = np.zeros(n, dtype=bool)
        scores, state = step(np.array([[BOS_ID, *prime_ids]] * n), state, True)
        for _ in range(limit):
            tokens = draw(scores, temperature, top_k, rng)
            for r in np.flatnonzero(~done):
                if int(tokens[r]) == EOS_ID:
                    done[r] = True
                else:
                    out[r].append(int(tokens[r]))
                    done[r] = len(out[r]) >= limit
            if done.all():
                break
            scores, state = step(tokens.reshape(-1, 1), state, False)
        return [prime + self.text_of(row) for row in out]

    def text_of(self, ids: list[int]) -> str:
        if self.settings["data"]["tokenizer"] == "char":
            return "".join(self.tokenizer.id_to_token(i) for i in ids)
        return self.tokenizer.decode(ids)

