"""What a task exports to ONNX: named graphs, each a module with example inputs and the axes
that stay dynamic. Each task builds its own (Task.export_graphs) and declares which runner of
seqlab.onnx runs them (Task.runtime_layout); seqlab.export writes them. Torch is imported only
when a graph is built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Graph:
    """One graph to export: a module, example inputs, and which of their axes are dynamic."""

    name: str
    module: Any  # torch.nn.Module
    inputs: dict[str, Any]  # name -> example tensor (batch >= 2, time >= 2)
    outputs: list[str]
    dynamic: dict[str, dict[int, str]]  # input or output name -> {axis: name}


def example_ids(vocab_size: int, batch: int = 2, steps: int = 5):
    import torch

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(4, max(vocab_size, 5), (batch, steps), generator=gen)
    lengths = torch.tensor([steps] + [max(steps - 2, 2)] * (batch - 1))
    ids[1:, int(lengths[1]):] = 0  # pad after each shorter sequence's end
    return ids, lengths


def flat_state(state) -> list:
    return list(state) if isinstance(state, tuple | list) else [state]
