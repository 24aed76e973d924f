"""Run an exported bundle (`seqlab export DIR --format onnx`) with onnxruntime, without torch.

    bundle = seqlab.onnx.load("runs/imdb-gru/onnx")   # or the bundle folder holding onnx/
    bundle.predict(["a wonderful film"])               # same outputs as seqlab.load(...).predict

This module imports only numpy, tokenizers (through seqlab.data.tokenize), onnxruntime and
seqlab's torch-free modules; config.json is read as plain JSON (config.py would build the
model settings from the family table, which imports torch). A deployment needs
`pip install 'seqlab[onnx]'` and no torch: tests/test_export.py checks sys.modules.

Encoding mirrors the task's torch path exactly (tasks/classify.py, tasks/tag.py): the same
tokenizer file, --max-length cut, right padding with lengths of at least 1, and for the
tagger the same spelling of each word. One runner per graph layout in `RUNNERS`.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from seqlab.bundle import check_texts  # torch-free: json, numpy, settings
from seqlab.data.tokenize import TextTokenizer
from seqlab.errors import SeqlabError
from seqlab.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID

MANIFEST = "onnx.json"  # the same name seqlab.export writes
EXTRA_HINT = "pip install 'seqlab[onnx]'"
BATCH = 64  # texts per onnxruntime call (sorted by length, so little padding)
N_SPECIAL = len(SPECIAL_TOKENS)
_CLOSING = set(".,;:!?)]}'\"%")  # tasks/lm.py: word level prints no space before these
MAX_WORD_CHARS = 20  # tasks/tag.py: long words keep their first and last 10 characters


def find_export(directory: str | Path) -> Path:
    """The exported folder: `directory` itself, or its onnx/ subfolder (export's default)."""
    directory = Path(directory)
    for candidate in (directory, directory / "onnx"):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise SeqlabError(f"{directory}: no ONNX export here (no {MANIFEST}); make one with "
                      f"'seqlab export {directory} --format onnx'")


def _session(path: Path, threads: int | None):
    try:
        import onnxruntime as ort
    except ImportError:
        raise SeqlabError(f"onnxruntime is not installed: --runtime onnx needs the onnx extra ({EXTRA_HINT})") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not path.is_file():
        raise SeqlabError(f"{path}: missing; the export is incomplete (rerun seqlab export)")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _pad(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id lists -> ids (B, T) int64, lengths (B,) int64 (at least 1, as the torch path)."""
    lengths = np.array([max(len(s), 1) for s in seqs], dtype=np.int64)
    ids = np.full((len(seqs), int(lengths.max())), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
    return ids, lengths


def _batches(sizes: list[int], batch: int = BATCH):
    """Index lists of similar length, `batch` at a time."""
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for start in range(0, len(order), batch):
        yield order[start : start + batch]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class _Runner:
    """What one task does with its graphs; built from the export folder and config.json."""

    verbs: frozenset[str] = frozenset({"predict"})

    def __init__(self, folder: Path, meta: dict[str, Any], manifest: dict[str, Any], threads: int | None):
        self.folder = folder
        self.settings = meta["config"]
        self.state = meta.get("task_state", {})
        self.tokenizer = TextTokenizer.load(folder / "tokenizer.json")
        self.sessions = {name: _session(folder / g["file"], threads) for name, g in manifest["graphs"].items()}

    def run(self, graph: str, **inputs: np.ndarray) -> np.ndarray:
        session = self.sessions[graph]
        feed = {i.name: inputs[i.name] for i in session.get_inputs()}  # unused inputs are pruned away
        return session.run(None, feed)[0]


class ClassifyRunner(_Runner):
    verbs = frozenset({"predict", "predict_proba"})

    def __init__(self, *args):
        super().__init__(*args)
        self.labels = list(self.state["labels"])

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        seqs = self.tokenizer.encode_batch(texts, self.settings["data"]["max_length"])
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for index in _batches([len(s) for s in seqs]):
            ids, lengths = _pad([seqs[i] for i in index])
            probs[index] = _softmax(self.run("model", ids=ids, lengths=lengths).astype(np.float32))
        return probs

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        return [
            {"label": self.labels[int(row.argmax())],
             "probabilities": {lab: round(float(p), 6) for lab, p in zip(self.labels, row)}}
            for row in self.predict_proba(texts)
        ]

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        return f"{output['label']}\t{output['probabilities'][output['label']]:.3f}\t{text}"


class TagRunner(_Runner):
    def __init__(self, *args):
        super().__init__(*args)
        self.labels = list(self.state["labels"])
        self.char_index = {c: i + N_SPECIAL for i, c in enumerate(self.state.get("chars", []))}
        self.char_features = bool(self.settings["model"].get("char_features"))

    def _spell(self, word: str) -> list[int]:
        if len(word) > MAX_WORD_CHARS:
            half = MAX_WORD_CHARS // 2
            word = word[:half] + word[-half:]
        return [self.char_index.get(c, UNK_ID) for c in word]

    def tag_ids(self, sentences: list[list[str]]) -> list[list[int]]:
        for i, words in enumerate(sentences):
            if not words:
                raise SeqlabError(f"sentence {i + 1}: has no tokens")
        encoded = self.tokenizer.tokenizer.encode_batch(sentences, is_pretokenized=True)
        seqs = [e.ids for e in encoded]
        out: list[list[int]] = [[] for _ in sentences]
        for index in _batches([len(s) for s in seqs]):
            ids, lengths = _pad([seqs[i] for i in index])
            feed = {"ids": ids, "lengths": lengths}
            if self.char_features:
                spelled = [[self._spell(w) for w in sentences[i]] for i in index]
                longest = max(len(w) for s in spelled for w in s)
                chars = np.zeros((*ids.shape, max(longest, 1)), dtype=np.int64)
                for row, words in enumerate(spelled):
                    for col, word in enumerate(words):
                        chars[row, col, : len(word)] = word
                feed["chars"] = chars
            best = self.run("model", **feed).argmax(axis=-1)  # (B, T)
            for row, i in enumerate(index):
                out[i] = best[row, : lengths[row]].tolist()
        return out

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        sentences = [text.split() for text in texts]
        return [{"tokens": s, "tags": [self.labels[t] for t in row]}
                for s, row in zip(sentences, self.tag_ids(sentences))]

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        return " ".join(f"{w}/{t}" for w, t in zip(output["tokens"], output["tags"]))


class LMRunner(_Runner):
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

    def _run(self, graph: str, ids: list[int] | np.ndarray, state: list[np.ndarray] | None = None):
        ids = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        inputs = {"ids": ids, "lengths": np.array([ids.shape[1]], dtype=np.int64)}
        inputs |= {f"state{i}": s for i, s in enumerate(state or [])}
        session = self.sessions[graph]
        outputs = session.run(None, {i.name: inputs[i.name] for i in session.get_inputs()})
        return outputs[0].astype(np.float32), outputs[1:]  # scores (1, T, V), state

    def scores(self, ids: np.ndarray, state: list[np.ndarray] | None = None):
        """ids (B, t) -> scores (B, t, V) and the state after them (`seqlab test`: windows of a
        stream read row by row, the state carried from one window to the next)."""
        inputs = {"ids": ids.astype(np.int64), "lengths": np.full(len(ids), ids.shape[1], dtype=np.int64)}
        inputs |= {f"state{i}": s for i, s in enumerate(state or [])}
        session = self.sessions["prime" if state is None else "step"]
        outputs = session.run(None, {i.name: inputs[i.name] for i in session.get_inputs()})
        return outputs[0].astype(np.float32), outputs[1:]

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
            probs = _softmax(self._next_scores(scores).astype(np.float64))
            top = np.argsort(-probs, kind="stable")[: min(5, probs.size)]
            outputs.append({"nats_per_token": nats,
                            "next": [{"token": self.tokenizer.id_to_token(int(i)), "probability": round(float(probs[i]), 6)}
                                     for i in top]})
        return outputs

    def generate_ids(self, prime: str = "", length: int = 200, temperature: float = 1.0, top_k: int | None = None,
                     seed: int | None = None):
        if temperature is None or not temperature > 0:
            raise SeqlabError(f"--temperature must be above 0 (got {temperature})")
        if top_k is not None and top_k < 1:
            raise SeqlabError(f"--top-k must be at least 1 (got {top_k})")
        if length < 0:
            raise SeqlabError(f"--length must be 0 or more (got {length})")
        rng = np.random.default_rng(seed)
        scores, state = self._run("prime", self.start_ids(prime))
        for i in range(length):
            logits = self._next_scores(scores).astype(np.float64) / temperature
            if top_k == 1:
                token = int(logits.argmax())
            else:
                if top_k is not None and top_k < logits.size:
                    kth = np.sort(logits)[-top_k]
                    logits = np.where(logits < kth, -np.inf, logits)
                token = int(rng.choice(logits.size, p=_softmax(logits)))
            yield token
            if i + 1 < length:
                scores, state = self._run("step", [token], state)

    def token_text(self, token: int, previous: str) -> str:
        if self.char_level:
            return self.tokenizer.id_to_token(token)
        if token == EOS_ID:
            return "\n"
        word = self.tokenizer.id_to_token(token)
        glue = not previous or previous.endswith(("\n", " ")) or word[0] in _CLOSING
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


class TranslateRunner(_Runner):
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
                  **memory, **{f"state{i}": s for i, s in enumerate(state)}}
        session = self.sessions["step"]
        out = session.run(None, {i.name: inputs[i.name] for i in session.get_inputs()})
        scores = out[0][:, -1].astype(np.float32)
        scores[:, self.banned] = -np.inf
        return scores, out[1:]

    def _encode(self, rows: list[list[int]]):
        src, lengths = _pad(rows)
        out = self.run_all("encoder", src=src, src_lengths=lengths)
        n = len(self.memory_names)
        return dict(zip(self.memory_names, out[:n])), out[n:]

    def run_all(self, graph: str, **inputs: np.ndarray) -> list[np.ndarray]:
        session = self.sessions[graph]
        return session.run(None, {i.name: inputs[i.name] for i in session.get_inputs()})

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
            logp = _log_softmax(scores)
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
                best = _best_first(total, width)
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
                  **dict(zip(self.memory_names, out[:n])), **{f"state{i}": s for i, s in enumerate(out[n:])}}
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


class GenerateRunner(_Runner):
    """A conditional generator: `start` gives the decoder's state for condition ids, `step`
    carries it on. predict ranks conditions as tasks/generate.py does; sample draws with
    numpy (top_k=1 is greedy and gives torch's texts exactly; a seed repeats an ONNX sample,
    not the torch path's), guidance included."""

    verbs = frozenset({"predict", "sample"})

    def __init__(self, *args):
        super().__init__(*args)
        self.conditions = list(self.state.get("conditions", []))

    def _start(self, conditions: np.ndarray) -> list[np.ndarray]:
        return self.sessions["start"].run(None, {"conditions": conditions.astype(np.int64)})

    def teacher_forced(self, ids: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Scores (B, T, V) of every step given the text so far (`seqlab test`)."""
        return self._step(ids, conditions, self._start(conditions))[0]

    def _step(self, ids: np.ndarray, conditions: np.ndarray, state: list[np.ndarray]):
        inputs = {"ids": ids.astype(np.int64), "lengths": np.full(len(ids), ids.shape[1], dtype=np.int64),
                  "conditions": conditions.astype(np.int64), **{f"state{i}": s for i, s in enumerate(state)}}
        session = self.sessions["step"]
        out = session.run(None, {i.name: inputs[i.name] for i in session.get_inputs()})
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
            logp = _log_softmax(scores)
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
        if temperature is None or not temperature > 0:
            raise SeqlabError(f"--temperature must be above 0 (got {temperature})")
        if top_k is not None and top_k < 1:
            raise SeqlabError(f"--top-k must be at least 1 (got {top_k})")
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
            tokens = self._draw(scores, temperature, top_k, rng)
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

    @staticmethod
    def _draw(scores: np.ndarray, temperature: float, top_k: int | None, rng) -> np.ndarray:
        if top_k == 1:
            return scores.argmax(axis=-1)
        logits = scores.astype(np.float64) / temperature
        if top_k is not None and top_k < logits.shape[1]:
            kth = np.sort(logits, axis=1)[:, -top_k][:, None]
            logits = np.where(logits < kth, -np.inf, logits)
        probs = _softmax(logits)
        return np.array([rng.choice(len(p), p=p) for p in probs])

    def text_of(self, ids: list[int]) -> str:
        if self.settings["data"]["tokenizer"] == "char":
            return "".join(self.tokenizer.id_to_token(i) for i in ids)
        return self.tokenizer.decode(ids)


def _best_first(values: np.ndarray, width: int) -> np.ndarray:
    """The indices of the `width` largest values, best first, ties in index order: exactly
    np.argsort(-values, kind="stable")[:width], without sorting the whole beam x vocabulary
    (that sort was half the time of a batched beam search)."""
    if width >= values.size:
        return np.argsort(-values, kind="stable")[:width]
    threshold = np.partition(values, values.size - width)[values.size - width]
    candidates = np.flatnonzero(values >= threshold)  # every tie of the threshold, in index order
    return candidates[np.argsort(-values[candidates], kind="stable")][:width]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    peak = x.max(axis=-1, keepdims=True)
    return x - peak - np.log(np.exp(x - peak).sum(axis=-1, keepdims=True))


# Task.runtime_layout (the export manifest's "runner") -> the runner of those graphs
RUNNERS: dict[str, type[_Runner]] = {"classifier": ClassifyRunner, "tagger": TagRunner,
                                     "language-model": LMRunner, "encoder-decoder": TranslateRunner,
                                     "conditional-decoder": GenerateRunner}


class OnnxBundle:
    """An exported bundle run by onnxruntime: the inference surface of seqlab.bundle.Bundle
    (predict, predict_proba for classifiers, supports/require, describe, metrics)."""

    def __init__(self, folder: Path, meta: dict[str, Any], manifest: dict[str, Any], runner: _Runner):
        self.directory = folder
        self.meta = meta
        self.manifest = manifest
        self.runner = runner
        self.task = runner  # what the CLI reads format_prediction from
        self.cfg = SimpleNamespace(task=meta["task"])  # what error messages name

    @property
    def family(self) -> str:
        return self.meta["family"]

    @property
    def labels(self) -> list[str]:
        return list(getattr(self.runner, "labels", []))

    @property
    def metrics(self) -> dict[str, Any]:
        path = self.directory / "metrics.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def supports(self, verb: str) -> bool:
        return verb in self.runner.verbs

    def require(self, verb: str, how: str) -> None:
        if not self.supports(verb):
            raise SeqlabError(f"a {self.meta['task']} model cannot {verb} with --runtime onnx: {how}")

    def predict(self, texts: list[str] | str) -> list[dict[str, Any]]:
        return self.runner.predict(check_texts(texts))

    def predict_proba(self, texts: list[str] | str) -> np.ndarray:
        self.require("predict_proba", "only classifiers give class probabilities")
        return self.runner.predict_proba(check_texts(texts))

    def generate(self, prime: str = "", length: int = 200, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None) -> str:
        """`prime` and `length` sampled tokens (lm); see LMRunner for what a seed repeats."""
        self.require("generate", "only a language model (--task lm) continues a prime")
        return self.runner.generate(prime, length, temperature, top_k, seed)

    def generate_stream(self, prime: str = "", length: int = 200, temperature: float = 1.0,
                        top_k: int | None = None, seed: int | None = None, warn=None):
        """The continuation of `prime` piece by piece as it is sampled (lm), as Bundle's."""
        self.require("generate", "only a language model (--task lm) continues a prime")
        previous = prime
        for token in self.runner.generate_ids(prime, length, temperature, top_k, seed):
            previous = self.runner.token_text(token, previous)
            yield previous

    def translate(self, texts: list[str] | str, beam: int | None = None, warn=None) -> list[str]:
        """Translations of `texts`: beam search of width `beam` (default: the model's; 1 is greedy)."""
        self.require("translate", "train one with --task translate")
        return self.runner.translate(check_texts(texts), beam)

    def translate_nbest(self, texts: list[str] | str, beam: int | None, n: int, warn=None) -> list[list[dict[str, Any]]]:
        """The `n` best of a width-`beam` search per text, best first, as Bundle's."""
        self.require("translate", "train one with --task translate")
        return self.runner.translate_nbest(check_texts(texts), beam, n)

    def evaluate(self, examples: list, task, out_dir=None) -> dict[str, Any]:
        """`seqlab test --runtime onnx`: `task` (the bundle's, which reads the split) scores
        this export's outputs with its own metrics."""
        return task.evaluate_exported(self.runner, examples, out_dir)

    def attention_heatmap(self, text: str, path, beam: int | None = None):
        raise SeqlabError("--attention-png needs the torch runtime (leave out --runtime onnx)")

    def sample(self, condition: str | None, n: int = 10, temperature: float = 1.0, top_k: int | None = None,
               seed: int | None = None, prime: str = "", max_length: int | None = None,
               guidance: float | None = None) -> list[str]:
        """`n` texts written for `condition` (generate task); see GenerateRunner for seeds."""
        self.require("sample", "it has no conditions; train one with --task generate")
        if not condition:
            raise SeqlabError(f"give a condition (--condition); known conditions: {', '.join(self.runner.conditions)}")
        return self.runner.sample(condition, n, temperature, top_k, seed, prime, max_length, guidance)

    def describe(self) -> dict[str, Any]:
        metrics = self.metrics
        split = "test" if "test" in metrics else "validation"
        figures = metrics.get(split, {})
        headline = self.manifest.get("headline_metrics", [])  # the task's, recorded by seqlab export
        return {
            "task": self.meta["task"],
            "family": self.family,
            "labels": self.labels,
            "conditions": [],
            "verbs": sorted(v for v in self.runner.verbs if v != "predict_proba"),
            "metrics": {k: figures[k] for k in headline if isinstance(figures.get(k), int | float)},
            "metrics_split": split if figures else None,
            "n_parameters": self.meta.get("n_parameters"),
            "seqlab_version": self.meta.get("seqlab_version"),
            "runtime": "onnx" + (f"-{self.manifest['quantize']}" if self.manifest.get("quantize") else ""),
        }

    def __repr__(self) -> str:
        return f"OnnxBundle({str(self.directory)!r}, task={self.meta['task']!r}, family={self.family!r})"


def _check_fresh(folder: Path, manifest: dict[str, Any]) -> None:
    """An export inside a bundle folder (the default DIR/onnx) must come from the weights
    beside it: a retrained bundle with a stale export is refused. Checked by size, then by
    sha256 only when the size matches (a copied folder keeps both)."""
    made_from = manifest.get("weights")
    if not made_from or not (folder.parent / "config.json").is_file():
        return
    path = folder.parent / made_from["file"]
    if not path.is_file():
        return
    stale = path.stat().st_size != made_from["bytes"]
    if not stale:
        import hashlib

        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        stale = digest.hexdigest() != made_from["sha256"]
    if stale:
        raise SeqlabError(f"{folder}: exported from other weights than {path} (retrained since?); "
                          f"export again: seqlab export {folder.parent} --format onnx")


def load(directory: str | Path, threads: int | None = None) -> OnnxBundle:
    """Load an exported folder (or a bundle folder with an onnx/ export inside)."""
    folder = find_export(directory)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SeqlabError(f"{folder}: incomplete export ({Path(exc.filename).name} missing); rerun seqlab export") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SeqlabError(f"{folder}: not valid JSON ({exc}); rerun seqlab export") from None
    _check_fresh(folder, manifest)
    if manifest.get("format_version", 0) < 2:
        raise SeqlabError(f"{folder}: exported by an older seqlab; export again: seqlab export DIR --format onnx")
    runner = manifest.get("runner")
    if runner not in RUNNERS:
        raise SeqlabError(f"{folder}: --runtime onnx has no runner {runner!r} (a newer seqlab's export?); "
                          f"it runs: {', '.join(RUNNERS)}")
    return OnnxBundle(folder, meta, manifest, RUNNERS[runner](folder, meta, manifest, threads))
