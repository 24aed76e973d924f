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

Which graphs a task exports is one row of `GRAPHS` (task name -> builder), like the two tables.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlab.errors import SeqlabError
from seqlab.vocab import BOS_ID

FORMATS = ("onnx",)
QUANTIZE = ("int8",)
OPSET = 17
MANIFEST = "onnx.json"
EXPORT_FORMAT_VERSION = 1
EXTRA_HINT = "pip install 'seqlab[onnx]'"


def require_onnx(*modules: str) -> None:
    """A one-line error naming the extra when onnx / onnxruntime are missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise SeqlabError(f"{' and '.join(missing)} not installed: ONNX export and --runtime onnx need the "
                          f"onnx extra ({EXTRA_HINT})")


@dataclass
class Graph:
    """One graph to export: a module, example inputs, and which of their axes are dynamic."""

    name: str
    module: Any  # torch.nn.Module
    inputs: dict[str, Any]  # name -> example tensor (batch >= 2, time >= 2)
    outputs: list[str]
    dynamic: dict[str, dict[int, str]]  # input or output name -> {axis: name}


def _example_ids(vocab_size: int, batch: int = 2, steps: int = 5):
    import torch

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(4, max(vocab_size, 5), (batch, steps), generator=gen)
    lengths = torch.tensor([steps] + [max(steps - 2, 2)] * (batch - 1))
    ids[1:, int(lengths[1]):] = 0  # pad after each shorter sequence's end
    return ids, lengths


def _classify_graphs(bundle) -> list[Graph]:
    ids, lengths = _example_ids(bundle.task.tokenizer.vocab_size)
    return [Graph("model", bundle.model, {"ids": ids, "lengths": lengths}, ["logits"],
                  {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}})]


def _tag_graphs(bundle) -> list[Graph]:
    import torch

    ids, lengths = _example_ids(bundle.task.tokenizer.vocab_size)
    inputs = {"ids": ids, "lengths": lengths}
    dynamic = {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "scores": {0: "batch", 1: "time"}}
    if bundle.model.chars is not None:
        n_chars = bundle.model.chars.embedding.num_embeddings
        chars = torch.randint(4, max(n_chars, 5), (*ids.shape, 4), generator=torch.Generator().manual_seed(1))
        chars[:, :, 3] = 0  # words of unequal length
        chars[ids == 0] = 0  # pad words have no characters
        inputs["chars"] = chars
        dynamic["chars"] = {0: "batch", 1: "time", 2: "chars"}
    return [Graph("model", bundle.model, inputs, ["scores"], dynamic)]


def _flat_state(state) -> list:
    return list(state) if isinstance(state, tuple | list) else [state]


def _lm_graphs(bundle) -> list[Graph]:
    """A language model as two graphs: `prime` reads a text from no state, `step` reads new
    ids from a carried state; both give the scores after every step and the state after the
    last. The state is the recurrent (h) or (h, c) of a stateful encoder, batch on axis 1, or
    for a stateless causal one the last few ids it must see again (LanguageModel.context),
    batch on axis 0."""
    import torch
    from torch import nn

    model = bundle.model.eval()
    with torch.no_grad():
        ids, lengths = _example_ids(bundle.task.tokenizer.vocab_size, batch=2, steps=5)
        lengths = torch.full_like(lengths, ids.size(1))  # a language model's rows are full windows
        ids = ids.clamp(min=4)
        _, state = model(ids, lengths)
    n_state = len(_flat_state(state))
    names = [f"state{i}" for i in range(n_state)]
    state_axes = ({1: "batch"} if model.context is None else {0: "batch", 1: "context"})
    out_names = ["scores", *[f"{n}_out" for n in names]]

    class Prime(nn.Module):
        def __init__(self):
            super().__init__()
            self.lm = model

        def forward(self, ids, lengths):
            scores, after = self.lm(ids, lengths)
            return (scores, *_flat_state(after))

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.lm = model

        def forward(self, ids, lengths, *state):
            scores, after = self.lm(ids, lengths, tuple(state) if n_state > 1 else state[0])
            return (scores, *_flat_state(after))

    dynamic = {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "scores": {0: "batch", 1: "time"}}
    step_ids = ids[:, :3].flip(1).contiguous()
    step_inputs = {"ids": step_ids, "lengths": torch.full_like(lengths, 3),
                   **dict(zip(names, _flat_state(state)))}
    step_dynamic = {**dynamic, **{n: state_axes for n in names}, **{f"{n}_out": state_axes for n in names}}
    return [Graph("prime", Prime(), {"ids": ids, "lengths": lengths}, out_names,
                  {**dynamic, **{f"{n}_out": state_axes for n in names}}),
            Graph("step", Step(), step_inputs, out_names, step_dynamic)]


def _translate_graphs(bundle) -> list[Graph]:
    """An encoder-decoder as two graphs: `encoder` reads source ids and gives the memory the
    decoder reads (per-step states, attention keys, mask, summary) and the decoder's starting
    state; `step` reads new target ids, the memory and a decoder state, and gives the scores
    after every new id and the state after the last. Beam search and greedy decoding stay in
    Python (seqlab.onnx), picking rows of the memory and state between steps."""
    import torch
    from torch import nn

    model = bundle.model.eval()
    src, src_lengths = _example_ids(bundle.task.tokenizer.vocab_size, batch=2, steps=5)
    src = torch.where(src_lengths[:, None] > torch.arange(5)[None, :], src.clamp(min=4), src)
    with torch.no_grad():
        memory = model.encode(src, src_lengths)
        start = _flat_state(model.bridge(memory.summary))
    fields = ["states", "mask", "summary"] + (["prepared"] if memory.prepared is not None else [])
    n_state = len(start)
    names = [f"state{i}" for i in range(n_state)]

    class Encode(nn.Module):
        def __init__(self):
            super().__init__()
            self.s2s = model

        def forward(self, src, src_lengths):
            mem = self.s2s.encode(src, src_lengths)
            return (*(getattr(mem, f) for f in fields), *_flat_state(self.s2s.bridge(mem.summary)))

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.s2s = model

        def forward(self, tgt, tgt_lengths, *rest):
            from seqlab.tasks.translate import Memory

            values = dict(zip(fields, rest[: len(fields)]))
            mem = Memory(values["states"], values.get("prepared"), values["mask"], values["summary"])
            state = rest[len(fields):]
            scores, after, _ = self.s2s.decode(tgt, tgt_lengths, mem, tuple(state) if n_state > 1 else state[0])
            return (scores, *_flat_state(after))

    source_axes = {"states": {0: "batch", 1: "source"}, "mask": {0: "batch", 1: "source"},
                   "summary": {0: "batch"}, "prepared": {0: "batch", 1: "source"}}
    state_axes = {n: {1: "batch"} for n in names}
    encoder = Graph("encoder", Encode(), {"src": src, "src_lengths": src_lengths}, [*fields, *names],
                    {"src": {0: "batch", 1: "source"}, "src_lengths": {0: "batch"},
                     **{f: source_axes[f] for f in fields}, **state_axes})
    tgt = torch.tensor([[BOS_ID, 5, 6], [BOS_ID, 7, 0]])
    step_inputs = {"tgt": tgt, "tgt_lengths": torch.tensor([3, 2]),
                   **{f: getattr(memory, f) for f in fields}, **dict(zip(names, start))}
    out_names = ["scores", *[f"{n}_out" for n in names]]
    step = Graph("step", Step(), step_inputs, out_names,
                 {"tgt": {0: "batch", 1: "time"}, "tgt_lengths": {0: "batch"}, "scores": {0: "batch", 1: "time"},
                  **{f: source_axes[f] for f in fields}, **state_axes,
                  **{f"{n}_out": {1: "batch"} for n in names}})
    return [encoder, step]


def _generate_graphs(bundle) -> list[Graph]:
    """A conditional generator as two graphs: `start` maps condition ids to the decoder's
    starting state; `step` reads new ids beside their condition from a state and gives the
    scores after every step and the state after the last. Sampling and guidance stay in
    Python (seqlab.onnx)."""
    import torch
    from torch import nn

    model = bundle.model.eval()
    conditions = torch.tensor([0, len(bundle.task.conditions)])  # a condition and the null one
    with torch.no_grad():
        start = _flat_state(model.bridge(model.condition(conditions)))
    names = [f"state{i}" for i in range(len(start))]

    class Start(nn.Module):
        def __init__(self):
            super().__init__()
            self.gen = model

        def forward(self, conditions):
            return tuple(_flat_state(self.gen.bridge(self.gen.condition(conditions))))

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.gen = model

        def forward(self, ids, lengths, conditions, *state):
            scores, after = self.gen(ids, lengths, conditions, tuple(state) if len(state) > 1 else state[0])
            return (scores, *_flat_state(after))

    ids = torch.tensor([[BOS_ID, 5, 6], [BOS_ID, 7, 8]])
    state_axes = {n: {1: "batch"} for n in names}
    return [
        Graph("start", Start(), {"conditions": conditions}, names, {"conditions": {0: "batch"}, **state_axes}),
        Graph("step", Step(), {"ids": ids, "lengths": torch.tensor([3, 3]), "conditions": conditions,
                               **dict(zip(names, start))},
              ["scores", *[f"{n}_out" for n in names]],
              {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "conditions": {0: "batch"},
               "scores": {0: "batch", 1: "time"}, **state_axes, **{f"{n}_out": {1: "batch"} for n in names}}),
    ]


# task name -> the graphs its bundle exports (seqlab.onnx.RUNTIMES holds the matching runners)
GRAPHS: dict[str, Callable[[Any], list[Graph]]] = {
    "classify": _classify_graphs,
    "tag": _tag_graphs,
    "lm": _lm_graphs,
    "translate": _translate_graphs,
    "generate": _generate_graphs,
}


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
    if bundle.cfg.task not in GRAPHS:
        raise SeqlabError(f"ONNX export of a {bundle.cfg.task} model is not written yet; it exports: "
                          f"{', '.join(GRAPHS)}")
    if not hasattr(bundle.model, "state_dict"):
        raise SeqlabError(f"a {bundle.family} model is not a neural network: nothing to export to ONNX "
                          "(it needs no torch at inference already)")
    out = Path(out) if out is not None else default_out(directory, quantize)
    if out.resolve() == directory.resolve():
        raise SeqlabError("--out must be a folder other than the bundle itself")
    out.mkdir(parents=True, exist_ok=True)
    graphs = {}
    for graph in GRAPHS[bundle.cfg.task](bundle):
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
        "family": bundle.family, "graphs": graphs, "quantize": quantize, "opset": OPSET,
        "exporter": "torch.onnx.export(dynamo=False)", "torch_version": torch.__version__,
        "seqlab_version": __version__, "source": str(directory),
        "weights": weights_fingerprint(directory / WEIGHTS),
    })
    return out
