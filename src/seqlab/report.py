"""Plots and tables for people: confusion matrix, training curves, comparison charts.

matplotlib runs headless (Agg) and is imported lazily; plots are written atomically.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.files import atomic_path


def pyplot():
    """matplotlib's pyplot on the headless Agg backend, imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write a figure as PNG atomically and free it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    finally:
        pyplot().close(fig)


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path) -> None:
    """Row-normalized confusion matrix with counts, true labels on rows."""
    plt = pyplot()
    matrix = np.asarray(matrix)
    rates = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 20:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title("confusion matrix (test)")
    save_figure(fig, path)


def read_metrics_csv(path: Path) -> list[dict[str, float]]:
    """Lightning's CSV log -> one dict per row with only the columns that row filled."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def _series(rows: list[dict[str, float]], key: str, x: str) -> tuple[list[float], list[float]]:
    pairs = [(r[x], r[key]) for r in rows if key in r and x in r]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _smooth(values: list[float], window: int = 10) -> np.ndarray:
    kernel = np.ones(min(window, len(values))) / min(window, len(values))
    return np.convolve(values, kernel, mode="valid")


def plot_training_curves(csv_path: Path, path: Path) -> None:
    """Loss by training step (train raw + smoothed, validation at its step) and validation
    metrics by epoch."""
    rows = read_metrics_csv(csv_path)
    if not rows:
        return
    plt = pyplot()
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
    steps, train = _series(rows, "train_loss", "step")
    if train:
        ax_loss.plot(steps, train, lw=0.6, alpha=0.35, color="C0")
        smooth = _smooth(train)
        ax_loss.plot(steps[len(steps) - len(smooth):], smooth, color="C0", label="train loss (smoothed)")
    steps, val = _series(rows, "val_loss", "step")
    if val:
        ax_loss.plot(steps, val, "o-", color="C3", label="validation loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    metric_keys = sorted({k for r in rows for k in r if k.startswith("val_") and k != "val_loss"})
    for key in metric_keys:
        epochs, values = _series(rows, key, "epoch")
        ax_val.plot([e + 1 for e in epochs], values, "o-", label=key[4:])
    ax_val.set_xlabel("epoch")
    ax_val.set_title("validation")
    if ax_val.lines:
        ax_val.legend()
    save_figure(fig, path)


def plot_comparison(rows: list[dict[str, Any]], path: Path, metric: str = "accuracy", label: str | None = None) -> None:
    """Bar chart of one metric per model, and accuracy against training time (`label`: the
    metric's axis label, default "test <metric>")."""
    plt = pyplot()
    label = label or f"test {metric}"
    names = [r["name"] for r in rows]
    values = [r.get(metric) or 0.0 for r in rows]
    fig, (ax_bar, ax_time) = plt.subplots(1, 2, figsize=(11, 4))
    bars = ax_bar.bar(names, values, color=[f"C{i}" for i in range(len(rows))])
    ax_bar.bar_label(bars, fmt="%.3f")
    ax_bar.set_ylim(0, 1.05)
    ax_bar.set_ylabel(label)
    ax_bar.tick_params(axis="x", rotation=30)
    for i, r in enumerate(rows):
        ax_time.scatter(r.get("train_seconds") or 0, r.get(metric) or 0, color=f"C{i}", label=r["name"])
    ax_time.set_xlabel("training time (s)")
    ax_time.set_ylabel(label)
    ax_time.legend(fontsize=8)
    save_figure(fig, path)


def format_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A plain-text table: columns are (key, header) pairs."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}" if value < 10 else f"{value:.1f}"
        if isinstance(value, int):
            return f"{value:,}"
        return "" if value is None else str(value)

    body = [[cell(r.get(key)) for key, _ in columns] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, (_, h) in enumerate(columns)]
    lines = ["  ".join(h.ljust(w) for (_, h), w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(b, widths))) for b in body]
    return "\n".join(lines)


def plot_attention(source: list[str], target: list[str], weights: np.ndarray, path: Path) -> None:
    """Attention heatmap: one row per output token, one column per source token."""
    plt = pyplot()
    weights = np.asarray(weights)[: len(target), : len(source)]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(source) + 1.5), max(3.0, 0.4 * len(target) + 1.2)))
    ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), [t.replace("\u2581", "") or "_" for t in source], rotation=60, ha="right")
    ax.set_yticks(range(len(target)), [t.replace("\u2581", "") or "_" for t in target])
    ax.set_xlabel("source")
    ax.set_ylabel("translation")
    ax.set_title("attention weights")
    save_figure(fig, path)


def plot_tuning_history(rows: list[dict[str, Any]], path: Path, label: str, maximize: bool = True) -> None:
    """seqlab tune's optimization history: each trial's validation figure (pruned trials at
    their last epoch's) and the best completed one so far."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for state, style in (("COMPLETE", {"color": "C0", "marker": "o", "label": "completed"}),
                         ("PRUNED", {"color": "0.6", "marker": "x", "label": "pruned (last epoch)"})):
        points = [(r["number"], r["value"]) for r in rows if r["state"] == state and r["value"] is not None]
        if points:
            ax.scatter(*zip(*points), **style)
    best, steps = None, []
    for r in sorted(rows, key=lambda r: r["number"]):
        if r["state"] == "COMPLETE" and r["value"] is not None and np.isfinite(r["value"]):
            if best is None or (r["value"] > best if maximize else r["value"] < best):
                best = r["value"]
        if best is not None:
            steps.append((r["number"], best))
    if steps:
        ax.step(*zip(*steps), where="post", color="C1", label="best so far")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(label)
    ax.set_title("optimization history")
    if ax.collections or ax.lines:
        ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_importances(importances: dict[str, float], path: Path) -> None:
    """seqlab tune's parameter importances (fANOVA share of the validation figure's variance)."""
    plt = pyplot()
    names = sorted(importances, key=importances.get)
    fig, ax = plt.subplots(figsize=(6.4, max(2.5, 0.4 * len(names) + 1)))
    if names:
        ax.barh(names, [importances[n] for n in names], color="C0")
        ax.set_xlabel("importance (share of variance)")
    else:
        ax.text(0.5, 0.5, "not enough completed trials that differ", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title("parameter importance")
    save_figure(fig, path)
