"""The `classifier` layout (tasks/classify.py): one `model` graph, ids -> class scores."""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlab.onnx.arrays import batches, pad, softmax
from seqlab.onnx.runners.base import Runner


class ClassifyRunner(Runner):
    verbs = frozenset({"predict", "predict_proba"})

    def __init__(self, *args):
        super().__init__(*args)
        self.labels = list(self.state["labels"])

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        seqs = self.tokenizer.encode_batch(texts, self.settings["data"]["max_length"])
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for index in batches([len(s) for s in seqs]):
            ids, lengths = pad([seqs[i] for i in index])
            probs[index] = softmax(self.run("model", ids=ids, lengths=lengths).astype(np.float32))
        return probs

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        return [
            {"label": self.labels[int(row.argmax())],
             "probabilities": {lab: round(float(p), 6) for lab, p in zip(self.labels, row)}}
            for row in self.predict_proba(texts)
        ]

    def format_prediction(self, text: str, output: dict[str, Any]) -> str:
        return f"{output['label']}\t{output['probabilities'][output['label']]:.3f}\t{text}"

