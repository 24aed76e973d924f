"""Run an exported bundle (`seqlab export DIR --format onnx`) with onnxruntime, without torch.

    bundle = seqlab.onnx.load("runs/imdb-gru/onnx")   # or the bundle folder holding onnx/
    bundle.predict(["a wonderful film"])               # same outputs as seqlab.load(...).predict

This package imports only numpy, tokenizers (through seqlab.data.tokenize), onnxruntime and
seqlab's torch-free modules; config.json is read as plain JSON (config.py would build the
model settings from the family table, which imports torch). A deployment needs
`pip install 'seqlab[onnx]'` and no torch: tests/test_export.py checks sys.modules, and
tests/test_imports.py that no module here imports a task, a family or the exporter.

Encoding mirrors the task's torch path exactly (tasks/classify.py, tasks/tag.py): the same
tokenizer file, --max-length cut, right padding with lengths of at least 1, and for the
tagger the same spelling of each word.

- folder.py     finding an export, reading and checking its manifest, onnxruntime sessions
- runners/      one runner per graph layout, and the RUNNERS table (manifest "runner" -> class)
- arrays.py     numpy padding, batching, softmax, sampling and beam ordering
- bundle.py     OnnxBundle: the seqlab.bundle.Bundle inference surface over a runner
"""

from __future__ import annotations

from pathlib import Path

from seqlab.errors import SeqlabError
from seqlab.onnx.arrays import BATCH
from seqlab.onnx.bundle import OnnxBundle
from seqlab.onnx.folder import EXTRA_HINT, MANIFEST, find_export, read_export
from seqlab.onnx.runners import (
    RUNNERS,
    ClassifyRunner,
    GenerateRunner,
    LMRunner,
    Runner,
    TagRunner,
    TranslateRunner,
)
from seqlab.onnx.runners.tagger import MAX_WORD_CHARS, N_SPECIAL

__all__ = ["BATCH", "EXTRA_HINT", "MANIFEST", "MAX_WORD_CHARS", "N_SPECIAL", "RUNNERS", "ClassifyRunner",
           "GenerateRunner", "LMRunner", "OnnxBundle", "Runner", "TagRunner", "TranslateRunner", "find_export",
           "load"]


def load(directory: str | Path, threads: int | None = None) -> OnnxBundle:
    """Load an exported folder (or a bundle folder with an onnx/ export inside)."""
    folder = find_export(directory)
    manifest, meta = read_export(folder)
    runner = manifest.get("runner")
    if runner not in RUNNERS:
        raise SeqlabError(f"{folder}: --runtime onnx has no runner {runner!r} (a newer seqlab's export?); "
                          f"it runs: {', '.join(RUNNERS)}")
    return OnnxBundle(folder, meta, manifest, RUNNERS[runner](folder, meta, manifest, threads))
