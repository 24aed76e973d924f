"""Language-model benchmark: a character LSTM on Tiny Shakespeare within a wall-clock budget
(issue target: validation <= 1.45 nats/char in at most 60 minutes on 2 CPU cores).

One `seqlab train --task lm` in its own process, stopped by `--max-minutes` (the best
validation checkpoint is what the bundle keeps), then one line in bench/results.jsonl with
val_nats_per_char, bits_per_char, perplexity and tokens_per_s, and a PNG of the loss
against wall time (from the run's CSV log).

    python bench/lm.py                      # the target run: 60 minutes, 2 threads
    python bench/lm.py --minutes 2 --dry-run --out /tmp/lm-smoke   # smoke test, not recorded

Why this configuration (measured with 1-thread throughput probes, see BENCHMARKS.md notes):
training is compute-bound at a few GFLOP per 1k chars, so the budget buys a fixed number of
characters; 1M training characters is little data, so a wide 2x512 LSTM with dropout that
sees ~30-50 epochs beats a small model that sees hundreds (2x128: 1.61 after 6 minutes and
flattening, DESIGN.md). bf16 autocast (the CPU has avx512_bf16) ran 1.25-1.6x faster with the
same loss after 250 steps; evaluation stays fp32. The learning rate decays 5% per epoch, as
in char-rnn, so the last epochs refine rather than bounce.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SHARED_DATA, record, run_measured, seqlab_cmd  # noqa: E402

TARGET = 1.45  # nats/char on the validation split
CONFIG = ["--family", "lstm", "--layers", "2", "--hidden-dim", "512", "--embed-dim", "64",
          "--dropout", "0.3", "--batch-size", "128", "--seq-len", "100", "--lr", "0.002",
          "--lr-decay", "0.95", "--grad-clip", "1.0", "--precision", "bf16-mixed",
          "--epochs", "1000", "--patience", "6"]
CURVE = ROOT / "bench" / "lm_tinyshakespeare_loss_vs_time.png"


def read_curve(csv_path: Path) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(minutes, train loss) and (minutes, validation loss) points of a run's CSV log."""
    train, val = [], []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if not row.get("elapsed_s"):
                continue
            minutes = float(row["elapsed_s"]) / 60
            if row.get("train_loss"):
                train.append((minutes, float(row["train_loss"])))
            if row.get("val_loss"):
                val.append((minutes, float(row["val_loss"])))
    return train, val


def plot_loss_vs_time(csv_path: Path, png: Path, title: str) -> None:
    from seqlab.report import pyplot, save_figure

    train, val = read_curve(csv_path)
    if not train:
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(*zip(*train), lw=0.6, alpha=0.6, label="train (per 10 steps)")
    if val:
        ax.plot(*zip(*val), "o-", ms=3, color="C3", label="validation (per epoch)")
        best = min(v for _, v in val)
        ax.set_title(f"{title}\nbest validation {best:.3f} nats/char")
    ax.axhline(TARGET, ls="--", color="gray", lw=1, label=f"target {TARGET}")
    ax.set_xlabel("wall time (minutes)")
    ax.set_ylabel("cross-entropy (nats/char)")
    ax.set_ylim(1.0, 3.5)
    ax.legend()
    ax.grid(alpha=0.3)
    save_figure(fig, png)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of the whole run")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the target: 2 cores)")
    ap.add_argument("--out", help="bundle folder (default: a temp folder)")
    ap.add_argument("--dry-run", action="store_true", help="run and report, but record nothing")
    ap.add_argument("extra", nargs="*", help="more `seqlab train` flags, e.g. -- --hidden-dim 384")
    args = ap.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="seqlab-bench-lm-"))
    # leave time for start-up, encoding the corpus, the final evaluation and saving
    train_minutes = round(args.minutes - min(1.5, 0.15 * args.minutes), 2)
    flags = ["train", "--task", "lm", "--data", "tinyshakespeare", "--data-dir", str(SHARED_DATA),
             "--seed", "0", "--out", str(out), "--no-progress", "--max-minutes", str(train_minutes),
             *CONFIG, *args.extra]
    wall, rss = run_measured(seqlab_cmd(*flags), env={"OMP_NUM_THREADS": str(args.threads)})
    metrics = json.loads((out / "metrics.json").read_text())
    val = metrics["validation"]
    config = shlex.join(CONFIG + args.extra)
    png = out / "loss_vs_time.png" if args.dry_run else CURVE
    plot_loss_vs_time(out / "logs" / "metrics.csv", png, f"char LSTM on Tiny Shakespeare, {args.threads} CPU thread(s)")
    result = {
        "val_nats_per_char": val["nats_per_char"], "bits_per_char": val["bits_per_char"],
        "perplexity": val["perplexity"], "tokens_per_s": metrics.get("train_tokens_per_s"),
        "epochs": metrics.get("epochs"), "train_seconds": metrics.get("train_seconds"),
        "n_parameters": metrics.get("n_parameters"),
    }
    command = (f"OMP_NUM_THREADS={args.threads} seqlab "
               + shlex.join(flags).replace(str(out), "OUT").replace(str(SHARED_DATA), "../shared/data"))
    if args.dry_run:
        print(json.dumps({"metrics": result, "wall_s": round(wall, 1), "peak_rss_mb": round(rss, 1),
                          "command": command, "curve": str(png), "target_met": val["nats_per_char"] <= TARGET}))
        return
    record("lm", "tinyshakespeare", "lstm", "val", result, wall_s=wall, peak_rss_mb=rss, command=command,
           config=config, curve=str(png.relative_to(ROOT)), minutes_budget=args.minutes)


if __name__ == "__main__":
    main()
