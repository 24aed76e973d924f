"""One text laid open for the live lecture page (`seqlab serve` at /, POST .../inspect): what
a model read (tokens), what it held at each step (every layer's states, and views a family
adds: cnn's winning windows, bow's per-token shares of the bag) and what it made of each
step (the task's outputs: p(class | prefix) and attributions, tags, next tokens, attention).

Families say what they hold (Encoder.trace), tasks what they output (Task.trace_input /
trace_outputs); this module only bounds and packs the document, so it names no family or
task. Sizes are bounded: at most `max_tokens` tokens and, per layer, the `max_units` units
that vary most over the text (their indices are listed), numbers rounded to 4 decimals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from seqlab.bundle import check_texts

DECIMALS = 4


@dataclass
class InspectLimits:
    """How big one inspect document may get (listed in the server's /v1/models)."""

    max_tokens: int = 128  # tokens read; a longer text is cut (the document says "truncated")
    max_units: int = 64  # units shown per layer: the ones that vary most over the text


def _rounded(x: torch.Tensor) -> list:
    # in float64: a float32 0.024 is 0.024000000208616257 as a Python float, three times the JSON
    return torch.round(x.double() * 10**DECIMALS).div(10**DECIMALS).tolist()


def pick_units(states: torch.Tensor, max_units: int) -> torch.Tensor:
    """Indices (ascending) of the `max_units` columns of (T, H) that vary most over time
    (ties, e.g. one step, broken by mean magnitude)."""
    if states.size(1) <= max_units:
        return torch.arange(states.size(1))
    spread = states.std(dim=0, unbiased=False) + 1e-3 * states.abs().mean(dim=0)
    return spread.topk(max_units).indices.sort().values


def _layer(name: str, states: torch.Tensor, limits: InspectLimits) -> dict[str, Any]:
    """One (T, H) block of per-step vectors, bounded to max_units columns."""
    units = pick_units(states, limits.max_units)
    return {"name": name, "units": states.size(1), "shown": units.tolist(),
            "values": _rounded(states[:, units])}


def _read(bundle, text: str, limits: InspectLimits):
    [text] = check_texts([text])
    return bundle.task.trace_input(bundle.model, text, limits.max_tokens)


@torch.no_grad()
def inspect(bundle, text: str, limits: InspectLimits | None = None, *, attribution: bool = True) -> dict[str, Any]:
    """The inspect document of `text` for a loaded bundle (see the module's docstring).
    `attribution=False` leaves out the per-token attributions (a backward pass: the live page
    asks for them with `attribute` after drawing the rest)."""
    limits = limits or InspectLimits()
    bundle.require("trace", "its task has no step-by-step view")
    start = time.perf_counter()
    task, model = bundle.task, bundle.model
    reading = _read(bundle, text, limits)
    layers, views = [], {}
    if reading.ids is not None:  # a neural family: open up its input encoder
        trace = task.input_encoder(model).trace(reading.ids, reading.lengths, reading.extra)
        layers = [_layer(name, states[0], limits) for name, states in trace.layers.items()]
        for name, value in trace.views.items():
            per_step = value.dim() == 3 and value.size(1) == len(reading.tokens)
            views[name] = _layer(name, value[0], limits) if per_step else _rounded(value[0])
    outputs = task.trace_outputs(model, reading)
    if attribution and bundle.supports("attribute"):
        outputs["attribution"] = task.trace_attribution(model, reading)
    return {
        "task": bundle.cfg.task,
        "family": bundle.family,
        "tokens": reading.tokens,
        "truncated": reading.truncated,
        "layers": layers,
        "views": views,
        "outputs": outputs,
        "limits": {"max_tokens": limits.max_tokens, "max_units": limits.max_units},
        "seconds": round(time.perf_counter() - start, 4),
    }


def attribute(bundle, text: str, limits: InspectLimits | None = None) -> dict[str, Any]:
    """Each token's share of the output for `text`: {tokens, truncated, attribution}."""
    limits = limits or InspectLimits()
    bundle.require("attribute", "its task has no per-token attributions")
    start = time.perf_counter()
    reading = _read(bundle, text, limits)
    return {"tokens": reading.tokens, "truncated": reading.truncated,
            "attribution": bundle.task.trace_attribution(bundle.model, reading),
            "seconds": round(time.perf_counter() - start, 4)}
