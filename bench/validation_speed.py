"""Validation speed: one forward pass per validation batch (Task.step's outputs feed the
metrics) against the two passes seqlab made before (the loss, then the model again for the
metrics), on the same model, batches and metrics, in the same process, alternating rounds.
Records a `task: "speed"` line per family with split "validation" and
metrics.speed_ratio = two-pass seconds / one-pass seconds.

    python bench/validation_speed.py [--examples 2500] [--rounds 3] [--families cnn,lstm]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, record  # noqa: E402


@torch.no_grad()
def validate(task, model, batches: list, passes: int) -> float:
    """Seconds to validate: `passes` forward passes per batch, metrics from the last."""
    metrics = task.make_metrics()
    t0 = time.perf_counter()
    for batch in batches:
        out = task.step(model, batch)
        if passes == 2:  # before: update_metrics ran the model again
            out = task.step(model, batch)
        task.update_metrics(metrics, out, batch)
    metrics.compute()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=2500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=400)
    ap.add_argument("--families", default="cnn,lstm")
    args = ap.parse_args()

    from seqlab.config import build_config
    from seqlab.tasks import make_task

    for family in args.families.split(","):
        start_all = time.perf_counter()
        cfg = build_config(data="imdb", family=family, settings={
            "data.data_dir": str(SHARED_DATA), "data.max_length": args.max_length, "data.limit": args.examples})
        task = make_task(cfg)
        splits = task.load_splits()
        task.fit_vocab(splits["train"])
        items = task.encode(splits["train"])
        torch.manual_seed(0)
        model = task.build_model().eval()
        batches = list(task.loader(items, shuffle=False, shard=False))

        one, two = [], []
        for _ in range(args.rounds):
            one.append(validate(task, model, batches, 1))
            two.append(validate(task, model, batches, 2))
            print(f"{family}: one pass {one[-1]:.2f} s  two passes {two[-1]:.2f} s", flush=True)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tokens = sum(int(b["lengths"].sum()) for b in batches)
        record("speed", "imdb", family, "validation",
               {"speed_ratio": statistics.median(two) / statistics.median(one),
                "one_pass_seconds": statistics.median(one), "two_pass_seconds": statistics.median(two),
                "one_pass_tokens_per_s": tokens / statistics.median(one), "examples": len(items),
                "max_length": args.max_length, "torch_threads": torch.get_num_threads()},
               wall_s=time.perf_counter() - start_all, peak_rss_mb=rss,
               command=f"python bench/validation_speed.py --examples {args.examples} --rounds {args.rounds} "
                       f"--max-length {args.max_length} --families {family}")


if __name__ == "__main__":
    main()
