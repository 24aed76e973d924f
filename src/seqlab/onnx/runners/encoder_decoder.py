"""The `encoder-decoder` layout (tasks/translate.py): an `encoder` graph gives the memory and
the decoder's start state, a `step` graph carries the state on; greedy decoding and beam
search run here in numpy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seqlab.data.tokenize import TextTokenizer
from seqlab.errors import SeqlabError
from seqlab.onnx.arrays import best_first, log_softmax, pad
from seqlab.onnx.runners.base import Runner, states
from seqlab.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID


class TranslateRunner(Runner):
    """An encoder-decoder: `encoder` gives the memory and the decoder's start state, `step`
    carries the state on. Greedy decoding and beam search are numpy ports of
    seqlab.decode.sample_batch / beam_search_batch (same ranking, same ties), so translations
    equal the torch path's token for token."""

    verbs = frozenset({"predict", "translate"})

    def __init__(self, folder: Path, meta: dict[str, Any], manifest: dict[str, Any], threads: int | None):
        super().__init__(folder, meta, manifest, threads)
        self.target_tokenizer = TextTokenizer.load(folder / "target_tokenizer.json")
        self.memory_names = [n for n in manifest["graphs"]["encoder"]["outputs"]
                             if not (n.startswith("state") and n[5:].isdigit())]  # state0, state1: the decoder's
        self.banned = [PAD_ID, UNK_ID, BOS_ID]

    def encode_sources(self, texts: list[str]) -> list[list[int]]:
        limit = self.settings["data"]["max_length"]
        ids = self.tokenizer.encode_batch(texts)
        return [(seq[:limit] if limit else seq) or [UNK_ID] for seq in ids]

    def max_output(self, source_length: int) -> int:
        return min(2 * source_length + 10, self.settings["data"]["max_length"] or 200)

    def _step(self, tokens: np.ndarray, memory: dict[str, np.ndarray], state: list[np.ndarray]):
        """tokens (k,) -> log-probabilities (k, V) of the next token (banned ids impossible), state."""
        inputs = {"tgt": tokens.reshape(-1, 1).astype(np.int64), "tgt_lengths": np.ones(len(tokens), dtype=np.int64),
                  **memory, **states(state)}
        out = self.run_all("step", **inputs)
        scores = out[0][:, -1].astype(np.float32)
        scores[:, self.banned] = -np.inf
        return scores, out[1:]

    def _encode(self, rows: list[list[int]]):
        src, lengths = pad(rows)
        out = self.run_all("encoder", src=src, src_lengths=lengths)
        n = len(self.memory_names)
        return dict(zip(self.memory_names, out[:n])), out[n:]

    def _greedy(self, memory, state, limits: list[int]) -> list[list[int]]:
        rows = len(limits)
        out: list[list[int]] = [[] for _ in range(rows)]
        done = np.zeros(rows, dtype=bool)
        scores, state = self._step(np.full(rows, BOS_ID), memory, state)
        for _ in range(max(limits)):
            tokens = scores.argmax(axis=-1)
            for r in np.flatnonzero(~done):
                if int(tokens[r]) == EOS_ID:
                    done[r] = True
                else:
                    out[r].append(int(tokens[r]))
                    done[r] = len(out[r]) >= limits[r]
            if done.all():
                break
            scores, state = self._step(tokens, memory, state)
        return out

    def _beam(self, memory, state, limits: list[int], beam: int, alpha: float) -> list[list[int]]:
        n = len(limits)
        live_tokens: list[list[list[int]]] = [[[]] for _ in range(n)]
        live_scores = [np.zeros(1, dtype=np.float32) for _ in range(n)]
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
        scores, state = self._step(np.full(n, BOS_ID), memory, state)
        for step in range(max(limits, default=0)):
            logp = log_softmax(scores)
            vocab = logp.shape[1]
            next_rows: list[int] = []
            next_tokens: list[int] = []
            offset = 0
            for i in range(n):
                k = len(live_tokens[i])
                if not k:
                    continue
                total = (live_scores[i][:, None] + logp[offset : offset + k]).ravel()
                width = min(beam - len(finished[i]), total.size)
                best = best_first(total, width)
                keep: list[tuple[int, int, float]] = []
                for index in best:
                    row, token, value = int(index // vocab), int(index % vocab), float(total[index])
                    seq = live_tokens[i][row]
                    if token == EOS_ID:
                        finished[i].append((value / max(len(seq) + 1, 1) ** alpha, seq))
                    else:
                        keep.append((row, token, value))
                if not keep or step + 1 == limits[i]:
                    for row, token, value in keep:
                        seq = live_tokens[i][row] + [token]
                        finished[i].append((value / max(len(seq), 1) ** alpha, seq))
                    keep = []
                live_tokens[i] = [live_tokens[i][row] + [token] for row, token, _ in keep]
                live_scores[i] = np.array([value for _, _, value in keep], dtype=np.float32)
                next_rows += [offset + row for row, _, _ in keep]
                next_tokens += [token for _, token, _ in keep]
                offset += k
            if not next_rows:
                break
            index = np.array(next_rows)
            memory = {k: v[index] for k, v in memory.items()}
            state = [s[:, index] for s in state]
            scores, state = self._step(np.array(next_tokens), memory, state)
        # best first; a stable sort keeps the first found of equal scores, as the torch path does
        return [sorted(f, key=lambda h: -h[0]) for f in finished]

    def teacher_forced(self, src: np.ndarray, src_lengths: np.ndarray, tgt: np.ndarray,
                       tgt_lengths: np.ndarray) -> np.ndarray:
        """Scores (B, T, V) of every target step given the reference prefix (`seqlab test`)."""
        out = self.run_all("encoder", src=src.astype(np.int64), src_lengths=src_lengths.astype(np.int64))
        n = len(self.memory_names)
        inputs = {"tgt": tgt.astype(np.int64), "tgt_lengths": tgt_lengths.astype(np.int64),
                  **dict(zip(self.memory_names, out[:n])), **states(out[n:])}
        return self.run_all("step", **inputs)[0].astype(np.float32)

    def _search(self, texts: list[str], beam: int, batch_size: int, greedy: bool = True):
        """Per text, the finished hypotheses [(score, ids)], best first (beam 1 with `greedy`:
        the greedy decoding, unscored)."""
        if beam < 1:
            raise SeqlabError(f"--beam must be at least 1 (got {beam}); 1 is greedy decoding")
        sources = self.encode_sources(texts)
        out: list[list[tuple[float, list[int]]]] = [[] for _ in sources]
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        per_batch = batch_size if beam == 1 else max(1, batch_size // beam)
        for start in range(0, len(order), per_batch):
            rows = order[start : start + per_batch]
            memory, state = self._encode([sources[i] for i in rows])
            limits = [self.max_output(len(sources[i])) for i in rows]
            if beam == 1 and greedy:
                decoded = [[(0.0, ids)] for ids in self._greedy(memory, state, limits)]
            else:
                decoded = self._beam(memory, state, limits, beam, self.settings["model"]["length_penalty"])
            for i, found in zip(rows, decoded):
                out[i] = found
        return out

    def translate(self, texts: list[str], beam: int | None = None, batch_size: int = 128) -> list[str]:
        beam = self.settings["model"]["beam"] if beam is None else beam
        return [self.target_tokenizer.decode(found[0][1] if found else [])
                for found in self._search(texts, beam, batch_size)]

    def translate_nbest(self, texts: list[str], beam: int | None, n: int, batch_size: int = 128) -> list[list[dict]]:
        """The `n` best translations per text with their length-normalized log-probabilities
        (the beam at least `n` wide), as tasks/translate.py's translate_nbest."""
        beam = max(self.settings["model"]["beam"] if beam is None else beam, n)
        return [[{"translation": self.target_tokenizer.decode(ids), "score": round(float(score), 6)}
                 for score, ids in found[:n]] for found in self._search(texts, beam, batch_size, greedy=False)]

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        return [{"translation": t} for t in self.translate(texts)]

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        return output["translation"]

