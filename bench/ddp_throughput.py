"""Training throughput on this machine: one process with 2 threads against two DDP processes
(gloo, CPU) with 1 thread each, the same global batch. Short runs (one epoch of a slice);
tokens/s is every rank's real training tokens over the training time (metrics.json's
train_tokens_per_s). The machine is shared: each line records the load average at its start.

    python bench/ddp_throughput.py [--targets imdb-bigru,char-lm] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, record, run_measured, seqlab_cmd  # noqa: E402

TARGETS = {
    # IMDB BiGRU (the classify recipe for gru: bidirectional, max pooling), 1,500 reviews cut to 256
    "imdb-bigru": ("classify", "imdb", "gru", ["--data", "imdb", "--family", "gru", "--limit", "1500",
                                               "--max-length", "256"]),
    # char LM (2x256 LSTM as bench/lm.py's, smaller) on the first 200k characters of Tiny Shakespeare
    "char-lm": ("lm", "tinyshakespeare", "lstm", ["--task", "lm", "--data", "tinyshakespeare", "--family", "lstm",
                                                  "--limit", "200000", "--hidden-dim", "256", "--layers", "2",
                                                  "--batch-size", "32", "--seq-len", "100"]),
}
LAYOUTS = {"1x2": ("1", "2"), "2x1": ("2", "1")}  # processes x threads


def run(target: str, layout: str, work: Path) -> None:
    task, dataset, family, flags = TARGETS[target]
    devices, threads = LAYOUTS[layout]
    out = work / f"{target}-{layout}"
    args = ["train", *flags, "--data-dir", str(SHARED_DATA), "--epochs", "1", "--patience", "0",
            "--accelerator", "cpu", "--devices", devices, "--out", str(out), "--overwrite", "--no-progress",
            *(["--strategy", "ddp"] if devices != "1" else [])]
    load = os.getloadavg()[0]
    env = {"OMP_NUM_THREADS": threads, "SEQLAB_CACHE_DIR": str(work / "cache")}
    wall, rss = run_measured(seqlab_cmd(*args), env=env)
    metrics = json.loads((out / "metrics.json").read_text())
    record(task, dataset, family, "train", {"tokens_per_s": metrics["train_tokens_per_s"],
                                           "train_seconds": metrics["train_seconds"]},
           wall_s=wall, peak_rss_mb=rss, command=f"OMP_NUM_THREADS={threads} python -m seqlab {shlex.join(args)}",
           bench="ddp_throughput", layout=f"{devices} process x {threads} thread", load_avg_1m=round(load, 2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="seqlab-ddp-") as tmp:
        for _ in range(args.rounds):
            for target in args.targets.split(","):
                for layout in LAYOUTS:  # alternating, so drift in the machine's load hits both
                    run(target, layout, Path(tmp))


if __name__ == "__main__":
    main()
