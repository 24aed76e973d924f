"""LSTM training throughput: seqlab (Lightning Trainer) against a plain PyTorch loop with the
identical model, initialization, batches and optimizer, in the same process, alternating
runs so machine drift hits both alike. Records a `task: "speed"` line with
metrics.speed_ratio = seqlab tokens/s / plain tokens/s.

    python bench/speed.py [--examples 6400] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, record  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=6400)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=256)
    args = ap.parse_args()
    start_all = time.perf_counter()

    from seqlab.config import build_config
    from seqlab.tasks import make_task
    from seqlab.training import fit

    cfg = build_config(data="imdb", family="lstm", settings={
        "data.data_dir": str(SHARED_DATA), "data.max_length": args.max_length, "data.limit": args.examples,
        "train.epochs": 1, "train.patience": 0, "train.progress": False, "model.dropout": 0.0})
    task = make_task(cfg)
    splits = task.load_splits()
    task.fit_vocab(splits["train"])
    train_items = task.encode(splits["train"])
    val_items = task.encode(splits["validation"][:64])

    def plain_loop() -> tuple[float, float]:
        torch.manual_seed(0)
        model = task.build_model()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        loader = task.loader(train_items, shuffle=True)
        model.train()
        tokens, t0 = 0, time.perf_counter()
        for batch in loader:
            loss = task.loss(model, batch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            opt.step()
            tokens += int(batch["lengths"].sum())
        seconds = time.perf_counter() - t0
        return tokens / seconds, seconds

    def seqlab_loop() -> tuple[float, float]:
        torch.manual_seed(0)
        model = task.build_model()
        with tempfile.TemporaryDirectory() as tmp:
            result = fit(task, model, train_items, val_items, cfg.train, Path(tmp))
        return result.tokens_per_s, result.seconds_per_epoch

    plain, ours = [], []
    for _ in range(args.rounds):
        plain.append(plain_loop())
        ours.append(seqlab_loop())
        print(f"plain {plain[-1][0]:.0f} tok/s  seqlab {ours[-1][0]:.0f} tok/s", flush=True)
    plain_tps = statistics.median(p[0] for p in plain)
    ours_tps = statistics.median(o[0] for o in ours)
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record("speed", "imdb", "lstm", "train",
           {"speed_ratio": ours_tps / plain_tps, "tokens_per_s": ours_tps, "plain_tokens_per_s": plain_tps,
            "seconds_per_epoch": statistics.median(o[1] for o in ours),
            "plain_seconds_per_epoch": statistics.median(p[1] for p in plain),
            "examples": len(train_items), "max_length": args.max_length, "torch_threads": torch.get_num_threads()},
           wall_s=time.perf_counter() - start_all, peak_rss_mb=rss,
           command=f"python bench/speed.py --examples {args.examples} --rounds {args.rounds} --max-length {args.max_length}")


if __name__ == "__main__":
    main()
