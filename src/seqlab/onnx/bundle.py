"""An exported bundle run by onnxruntime: the inference surface of seqlab.bundle.Bundle, each
verb handed to the export's runner."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from seqlab.bundle import check_texts  # torch-free: json, numpy, settings
from seqlab.errors import SeqlabError
from seqlab.onnx.runners import Runner


class OnnxBundle:
    """An exported bundle run by onnxruntime: the inference surface of seqlab.bundle.Bundle
    (predict, predict_proba for classifiers, supports/require, describe, metrics)."""

    def __init__(self, folder: Path, meta: dict[str, Any], manifest: dict[str, Any], runner: Runner):
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

