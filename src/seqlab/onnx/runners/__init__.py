"""One runner per graph layout: what a task does with its exported graphs, in numpy.

`RUNNERS` maps a task's `runtime_layout` (recorded as the export manifest's "runner") to the
runner of those graphs, so the torch-free runtime never imports a task. Adding a layout is
one new file here plus one line in the table."""

from __future__ import annotations

from seqlab.onnx.runners.base import Runner
from seqlab.onnx.runners.classifier import ClassifyRunner
from seqlab.onnx.runners.conditional_decoder import GenerateRunner
from seqlab.onnx.runners.encoder_decoder import TranslateRunner
from seqlab.onnx.runners.language_model import LMRunner
from seqlab.onnx.runners.tagger import TagRunner

RUNNERS: dict[str, type[Runner]] = {"classifier": ClassifyRunner, "tagger": TagRunner,
                                    "language-model": LMRunner, "encoder-decoder": TranslateRunner,
                                    "conditional-decoder": GenerateRunner}

__all__ = ["RUNNERS", "ClassifyRunner", "GenerateRunner", "LMRunner", "Runner", "TagRunner", "TranslateRunner"]
