"""Data bigger than memory: train from a labeled corpus encoded on disk (--on-disk yes) and
compare peak RSS and tokens/s with the in-memory path.

The corpus is IMDB's 50k labeled reviews written `--copies` times as one fastText file, each
copy with the words shuffled within every sentence (its own seed), so the vocabulary and the
lengths stay IMDB's while the text repeats nowhere. Steps, each its own child process at one
thread (peak RSS is that child's):

  big      bow, then gru, on the whole corpus from disk, one epoch capped by --bow-minutes and
           --gru-minutes (a partial epoch: on this shared 2-core machine a full one takes hours)
  slice    the first copy only (fits in memory), both paths, bow and gru (gru: --gru-limit
           examples), so tokens/s and peak RSS compare like for like

    python bench/scale.py [--copies 2] [--work /tmp/seqlab-scale] [--steps slice,big]

`big-bow` and `big-gru` are the two halves of `big`: the GRU's run reuses the labels,
vocabulary and token ids the first run cached, so it can start beside the bow's epoch.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, record, run_measured, seqlab_cmd  # noqa: E402

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def imdb_reviews() -> list[tuple[str, str]]:
    """(label, text) of IMDB's 50k labeled reviews (train + test), read from the archive."""
    out = []
    with tarfile.open(SHARED_DATA / "imdb" / "aclImdb_v1.tar.gz", "r:gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[1] in ("train", "test") and parts[2] in ("pos", "neg"):
                text = archive.extractfile(member).read().decode("utf-8")
                out.append((parts[2], " ".join(text.replace("<br />", " ").split())))
    return out


def shuffled(text: str, rng: random.Random) -> str:
    sentences = []
    for sentence in _SENTENCE.split(text):
        words = sentence.split()
        rng.shuffle(words)
        sentences.append(" ".join(words))
    return " ".join(sentences)


def make_corpus(path: Path, copies: int) -> None:
    if path.is_file():
        return
    reviews = imdb_reviews()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for copy in range(copies):
            rng = random.Random(copy)
            order = list(range(len(reviews)))
            rng.shuffle(order)
            for i in order:
                label, text = reviews[i]
                fh.write(f"__label__{label} {shuffled(text, rng)}\n")
    tmp.rename(path)


def train(data: Path, family: str, on_disk: str, out: Path, cache: Path, *extra: str) -> None:
    args = ["train", "--data", str(data), "--family", family, "--on-disk", on_disk, "--epochs", "1",
            "--patience", "0", "--out", str(out), "--overwrite", "--no-progress", *extra]
    env = {"OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1", "SEQLAB_CACHE_DIR": str(cache)}
    wall, rss = run_measured(seqlab_cmd(*args), env=env)
    metrics = json.loads((out / "metrics.json").read_text())
    size_mb = data.stat().st_size / 2**20
    where = "disk" if on_disk == "yes" else "memory"  # its own row in BENCHMARKS.md
    record("classify", f"imdb-shuffled-{size_mb:.0f}MB-{where}", family, "validation",
           {"tokens_per_s": metrics["train_tokens_per_s"], "accuracy": metrics["validation"]["accuracy"],
            "train_seconds": metrics["train_seconds"], "on_disk": on_disk == "yes"},
           wall_s=wall, peak_rss_mb=rss, command=f"OMP_NUM_THREADS=1 python -m seqlab {shlex.join(args)}",
           corpus_mb=round(size_mb, 1), bench="scale")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/seqlab-scale"))
    ap.add_argument("--steps", default="slice,big")
    ap.add_argument("--bow-minutes", type=float, default=4.0)
    ap.add_argument("--gru-minutes", type=float, default=3.0)
    ap.add_argument("--gru-limit", type=int, default=4000)
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    big, piece = work / f"imdb-x{args.copies}.txt", work / "imdb-x1.txt"
    make_corpus(piece, 1)
    gru = ["--embed-dim", "64", "--hidden-dim", "64"]
    for step in args.steps.split(","):
        if step == "slice":
            for on_disk in ("no", "yes"):
                train(piece, "bow", on_disk, work / f"slice-bow-{on_disk}", work / "cache")
                train(piece, "gru", on_disk, work / f"slice-gru-{on_disk}", work / "cache", *gru,
                      "--limit", str(args.gru_limit))
        elif step in ("big", "big-bow", "big-gru"):  # big-gru alone can run beside big-bow once it has encoded
            make_corpus(big, args.copies)
            if step != "big-gru":
                train(big, "bow", "yes", work / "big-bow", work / "cache", "--max-minutes", str(args.bow_minutes))
            if step != "big-bow":
                train(big, "gru", "yes", work / "big-gru", work / "cache", *gru, "--max-minutes",
                      str(args.gru_minutes))


if __name__ == "__main__":
    main()
