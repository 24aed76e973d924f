"""Export a trained bundle to ONNX: graph(s) beside a copy of the bundle's JSON files, so the
folder loads with `seqlab.onnx.load` (numpy + tokenizers + onnxruntime, no torch).

    config.json, tokenizer.json, metrics.json   copied from the bundle (task state included)
    model.onnx                                  the task's forward pass (int8 with --quantize)
    onnx.json                                   what was exported: graphs, inputs, outputs

Exporter: the TorchScript-based one (`torch.onnx.export(..., dynamo=False)`), not dynamo.
Measured on torch 2.13 / onnxruntime 1.32: it exports every family as it is written (the
within-length reversal of a bidirectional layer is a Gather on computed indices, the
recurrent layers become ONNX's own LSTM/GRU/RNN ops) and matches torch to ~4e-7 at any
batch and length. The dynamo exporter needs onnxscript, which seqlab does not depend on,
and its recurrent-layer path has frozen the time length of bidirectional layers (issue 13).
Graphs are traced at batch 2 and length 5 with unequal lengths (a size-1 trace hard-codes the
size) and every batch/time axis is declared dynamic; tests/test_export.py runs lengths 1 to
50 against torch, which catches a frozen axis.

Which graphs a task exports is the task's own `export_graphs` (seqlab.graphs.Graph), and which
seqlab.onnx runner runs them its `runtime_layout`, recorded in the manifest.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from seqlab.errors import SeqlabError
from seqlab.graphs import Graph

FORMATS = ("onnx",)
QUANTIZE = ("int8",)
OPSET = 17
MANIFEST = "onnx.json"
EXPORT_FORMAT_VERSION = 2  # 2: the manifest names its runner (Task.runtime_layout)
EXTRA_HINT = "pip install 'seqlab[onnx]'"


def require_onnx(*modules: str) -> None:
    """A one-line error naming the extra when onnx / onnxruntime are missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise SeqlabError(f"{' and '.join(missing)} not installed: ONNX export and --runtime onnx need the "
                          f"onnx extra ({EXTRA_HINT})")


class _MeanBag:
    """Stand-in for nn.EmbeddingBag(mode="mean", padding_idx=p) on 2-D input while exporting:
    the TorchScript exporter has no symbolic for embedding_bag with padding_idx. Gather +
    masked mean gives the same numbers (an all-pad bag is zeros, as in EmbeddingBag)."""

    @staticmethod
    def make(bag):
        import torch
        from torch import nn
        from torch.nn import functional as F

        class MeanBag(nn.Module):
            def __init__(self):
                super().__init__()
                self.weight = bag.weight
                self.padding_idx = bag.padding_idx

            def forward(self, ids: torch.Tensor) -> torch.Tensor:
                keep = (ids != self.padding_idx).unsqueeze(-1).to(self.weight.dtype)  # (B, N, 1)
                total = (F.embedding(ids, self.weight) * keep).sum(dim=1)  # (B, E)
                return total / keep.sum(dim=1).clamp(min=1.0)

        return MeanBag()


@contextmanager
def _exportable(module):
    """Swap the modules the exporter cannot write for equivalent ones, and put them back."""
    from torch import nn

    swapped = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.EmbeddingBag):
                if child.mode != "mean" or child.padding_idx is None:
                    raise SeqlabError(f"cannot export an EmbeddingBag in mode {child.mode!r} without padding_idx")
                setattr(parent, name, _MeanBag.make(child))
                swapped.append((parent, name, child))
    try:
        yield module
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def _export_graph(graph: Graph, path: Path) -> None:
    import torch

    model = graph.module.eval()
    with _exportable(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's TracerWarnings on Python-level size checks
        torch.onnx.export(
            model, tuple(graph.inputs.values()), str(path), dynamo=False, opset_version=OPSET,
            input_names=list(graph.inputs), output_names=graph.outputs, dynamic_axes=graph.dynamic,
            do_constant_folding=True,
        )


def _quantize(path: Path) -> None:
    """Dynamic int8 quantization of the weights (onnxruntime's quantizer), in place."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_suffix(".int8.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a warning per tensor it leaves in fp32
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    tmp.replace(path)


WEIGHTS = "model.safetensors"


def weights_fingerprint(path: Path) -> dict[str, Any]:
    """Size and sha256 of the weights an export was made from: seqlab.onnx refuses an export
    inside a bundle folder whose weights have changed since (retrained: export again)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def default_out(directory: Path, quantize: str | None = None) -> Path:
    return Path(directory) / ("onnx" if not quantize else f"onnx-{quantize}")


def export_bundle(directory: str | Path, *, fmt: str = "onnx", out: str | Path | None = None,
                  quantize: str | None = None) -> Path:
    """Export the bundle in `directory`; returns the folder written (default DIR/onnx, or
    DIR/onnx-int8 when quantized)."""
    from seqlab import __version__
    from seqlab.bundle import load_bundle
    from seqlab.files import atomic_write_json

    if fmt not in FORMATS:
        raise SeqlabError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZE:
        raise SeqlabError(f"unknown quantization {quantize!r}; choose one of: {', '.join(QUANTIZE)}")
    require_onnx("onnx", "onnxruntime")
    directory = Path(directory)
    bundle = load_bundle(directory)
    if bundle.task.runtime_layout is None:
        raise SeqlabError(f"ONNX export of a {bundle.cfg.task} model is not written yet")
    if not hasattr(bundle.model, "state_dict"):
        raise SeqlabError(f"a {bundle.family} model is not a neural network: nothing to export to ONNX "
                          "(it needs no torch at inference already)")
    out = Path(out) if out is not None else default_out(directory, quantize)
    if out.resolve() == directory.resolve():
        raise SeqlabError("--out must be a folder other than the bundle itself")
    out.mkdir(parents=True, exist_ok=True)
    graphs = {}
    for graph in bundle.task.export_graphs(bundle.model):
        path = out / f"{graph.name}.onnx"
        _export_graph(graph, path)
        if quantize:
            _quantize(path)
        graphs[graph.name] = {"file": path.name, "inputs": list(graph.inputs), "outputs": graph.outputs}
    for src in sorted(directory.glob("*.json")):  # config (task state), tokenizers, metrics
        if src.name != MANIFEST:
            shutil.copyfile(src, out / src.name)
    import torch

    atomic_write_json(out / MANIFEST, {
        "format_version": EXPORT_FORMAT_VERSION, "format": fmt, "task": bundle.cfg.task,
        "family": bundle.family, "runner": bundle.task.runtime_layout,
        "headline_metrics": list(bundle.task.headline_metrics), "graphs": graphs, "quantize": quantize, "opset": OPSET,
        "exporter": "torch.onnx.export(dynamo=False)", "torch_version": torch.__version__,
        "seqlab_version": __version__, "source": str(directory),
        "weights": weights_fingerprint(directory / WEIGHTS),
    })
    return out
