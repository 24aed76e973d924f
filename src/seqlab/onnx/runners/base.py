"""What every runner shares: the tokenizer and graph sessions of its export, running a graph
on named numpy inputs, and the sampling settings' checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seqlab.data.tokenize import TextTokenizer
from seqlab.errors import SeqlabError
from seqlab.onnx.folder import open_session


class Runner:
    """What one task does with its graphs; built from the export folder and config.json."""

    verbs: frozenset[str] = frozenset({"predict"})

    def __init__(self, folder: Path, meta: dict[str, Any], manifest: dict[str, Any], threads: int | None):
        self.folder = folder
        self.settings = meta["config"]
        self.state = meta.get("task_state", {})
        self.tokenizer = TextTokenizer.load(folder / "tokenizer.json")
        self.sessions = {name: open_session(folder / g["file"], threads) for name, g in manifest["graphs"].items()}

    def run_all(self, graph: str, **inputs: np.ndarray) -> list[np.ndarray]:
        """Every output of `graph`, fed the inputs it declares (unused inputs are pruned away
        at export, so a graph may take fewer than the runner has)."""
        session = self.sessions[graph]
        return session.run(None, {i.name: inputs[i.name] for i in session.get_inputs()})

    def run(self, graph: str, **inputs: np.ndarray) -> np.ndarray:
        """The first output of `graph` (its scores)."""
        return self.run_all(graph, **inputs)[0]


def states(state: list[np.ndarray] | None) -> dict[str, np.ndarray]:
    """A recurrent state as the graphs' inputs: state0, state1, ..."""
    return {f"state{i}": s for i, s in enumerate(state or [])}


def check_sampling(temperature: float | None, top_k: int | None) -> None:
    if temperature is None or not temperature > 0:
        raise SeqlabError(f"--temperature must be above 0 (got {temperature})")
    if top_k is not None and top_k < 1:
        raise SeqlabError(f"--top-k must be at least 1 (got {top_k})")
