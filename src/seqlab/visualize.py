"""What a language model's hidden units track, drawn as in Karpathy's "The Unreasonable
Effectiveness of Recurrent Neural Networks": each character of a passage colored by one
unit's activation after reading it (red positive, blue negative), with the model's five
most likely next characters under it, shaded by probability.

The unit is read from the encoder's per-step states: the last layer's hidden state h for
lstm/gru/rnn (in [-1, 1]); for cnn/bow the ReLU features, scaled by their maximum. Output is
a self-contained HTML page or a PNG (by the file's extension).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqlab.errors import SeqlabError

MAX_HTML_CHARS = 3000
MAX_PNG_CHARS = 480
PNG_COLUMNS = 48
TOP = 5


@torch.no_grad()
def trace(bundle, text: str) -> dict[str, Any]:
    """Read `text` once: tokens, per-step states (T, D) and the top-5 next-token guesses."""
    bundle.require("inspect", "it has no per-step next-token guesses to draw; use a language model (--task lm)")
    task, model = bundle.task, bundle.model
    ids = task.tokenizer.encode(text)
    if not ids:
        raise SeqlabError("the passage to visualize is empty")
    tokens = task.tokenizer.tokens(text)
    if len(tokens) != len(ids):  # word level drops nothing, but be safe: name ids directly
        tokens = [task.tokenizer.id_to_token(i) for i in ids]
    model.eval()
    x = torch.tensor([ids])
    states, _ = model.encode(x, torch.tensor([len(ids)]))  # (1, T, D)
    probs = torch.softmax(model.head(states)[0].float(), dim=-1)  # (T, V)
    top = probs.topk(min(TOP, probs.size(-1)), dim=-1)
    guesses = [
        [(task.tokenizer.id_to_token(int(i)), float(p)) for p, i in zip(ps, ix)]
        for ps, ix in zip(top.values, top.indices)
    ]
    return {"tokens": tokens, "states": states[0].float().numpy(), "guesses": guesses}


def pick_unit(states: np.ndarray, unit: int | None) -> int:
    """The requested unit, or (None) the one whose activation varies most over the passage."""
    width = states.shape[1]
    if unit is None:
        return int(states.std(axis=0).argmax())
    if not 0 <= unit < width:
        raise SeqlabError(f"--unit {unit} is out of range: this model has units 0..{width - 1}")
    return unit


def _rgb(a: float) -> tuple[int, int, int]:
    """Activation in [-1, 1] -> white..red (positive) or white..blue (negative)."""
    a = max(-1.0, min(1.0, a))
    fade = int(255 * (1 - abs(a)))
    return (255, fade, fade) if a >= 0 else (fade, fade, 255)


def _shown(token: str) -> str:
    return {"\n": "\u21b5", " ": "\u2423", "\t": "\u21e5"}.get(token, token)


def render_html(tokens: list[str], values: np.ndarray, guesses: list, unit: int, title: str) -> str:
    cells = []
    for tok, a, guess in zip(tokens, values, guesses):
        r, g, b = _rgb(float(a))
        char = html.escape(_shown(tok) if tok in ("\n", "\t") else tok).replace(" ", "&nbsp;")
        rows = "".join(
            f'<div class="g" style="background:rgba(40,120,40,{p:.2f})">{html.escape(_shown(t))}</div>'
            for t, p in guess
        )
        tip = html.escape(f"unit {unit} = {a:+.3f}; next: " + ", ".join(f"{_shown(t)} {p:.2f}" for t, p in guess))
        cells.append(f'<div class="c" title="{tip}"><div class="ch" style="background:rgb({r},{g},{b})">'
                     f"{char}</div>{rows}</div>" + ("<br>" if tok == "\n" else ""))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
body {{ font-family: sans-serif; margin: 2em; }}
.c {{ display: inline-block; vertical-align: top; text-align: center; margin: 0 0 10px 0;
      font-family: monospace; }}
.ch {{ font-size: 16px; min-width: 0.65em; padding: 2px 0; }}
.g {{ font-size: 9px; color: #222; min-width: 0.65em; }}
</style></head><body>
<h3>{html.escape(title)}</h3>
<p>Each character is colored by unit {unit}'s activation after reading it (red positive, blue
negative); under it, the model's {TOP} most likely next characters, shaded by probability.
Hover for values.</p>
<div>{"".join(cells)}</div>
</body></html>
"""


def render_png(tokens: list[str], values: np.ndarray, guesses: list, unit: int, title: str, path: Path) -> None:
    from seqlab.report import pyplot, save_figure

    plt = pyplot()
    n = len(tokens)
    lines = max(1, -(-n // PNG_COLUMNS))
    block = TOP + 1.6  # rows per text line: the character, its guesses, a gap
    fig, ax = plt.subplots(figsize=(PNG_COLUMNS * 0.28, lines * block * 0.2 + 0.6))
    for i, (tok, a, guess) in enumerate(zip(tokens, values, guesses)):
        col, top = i % PNG_COLUMNS, (i // PNG_COLUMNS) * block
        ax.add_patch(plt.Rectangle((col, top), 1, 1, color=np.array(_rgb(float(a))) / 255))
        ax.text(col + 0.5, top + 0.5, _shown(tok), ha="center", va="center", fontsize=8, family="monospace")
        for j, (t, p) in enumerate(guess):
            y = top + 1 + j * 0.8
            ax.add_patch(plt.Rectangle((col, y), 1, 0.8, color=(0.16, 0.47, 0.16, p)))
            ax.text(col + 0.5, y + 0.4, _shown(t), ha="center", va="center", fontsize=5, family="monospace")
    ax.set_xlim(0, PNG_COLUMNS)
    ax.set_ylim(lines * block, 0)
    ax.axis("off")
    ax.set_title(f"{title} (red +, blue -); top-{TOP} next-character guesses below", fontsize=9)
    save_figure(fig, path)


def visualize(bundle, text: str, out: str | Path, unit: int | None = None) -> dict[str, Any]:
    """Draw unit `unit` (default: the most varying one) over `text` into `out` (.html/.png)."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm", ".png"):
        raise SeqlabError(f"{out}: write the visualization to a .html or .png file")
    png = out.suffix.lower() == ".png"
    limit = MAX_PNG_CHARS if png else MAX_HTML_CHARS
    result = trace(bundle, text[:limit])
    states = result["states"]
    unit = pick_unit(states, unit)
    values = states[:, unit]
    if float(states.min()) >= 0:  # ReLU features (cnn, bow), unbounded: scale into [0, 1]
        values = values / max(float(np.abs(values).max()), 1e-6)
    title = f"{bundle.directory.name}: {bundle.cfg.model.family}, unit {unit} of {states.shape[1]}"
    if png:
        render_png(result["tokens"], values, result["guesses"], unit, title, out)
    else:
        from seqlab.files import atomic_write_text

        atomic_write_text(out, render_html(result["tokens"], values, result["guesses"], unit, title))
    return {"out": str(out), "unit": unit, "units": int(states.shape[1]), "tokens": len(result["tokens"]),
            "truncated": len(text) > limit}
