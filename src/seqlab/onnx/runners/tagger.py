"""The `tagger` layout (tasks/tag.py): one `model` graph, ids (and each word spelled in
characters, as the task spells it) -> tag scores per word."""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlab.errors import SeqlabError
from seqlab.onnx.arrays import batches, pad
from seqlab.onnx.runners.base import Runner
from seqlab.vocab import SPECIAL_TOKENS, UNK_ID

N_SPECIAL = len(SPECIAL_TOKENS)
MAX_WORD_CHARS = 20  # tasks/tag.py: long words keep their first and last 10 characters


class TagRunner(Runner):
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
        for index in batches([len(s) for s in seqs]):
            ids, lengths = pad([seqs[i] for i in index])
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

