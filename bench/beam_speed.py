"""Beam-search decoding speed: one sentence at a time vs. many sentences per batch.

The translate benchmark's model (BiGRU 512/direction encoder, GRU 512 decoder, Luong general
attention, BPE 8k per side) with seeded random weights decodes the first N Multi30k test2016
sources with beam 5, once with one sentence per batch (how seqlab decoded before batching)
and once with batch_size // beam sentences per batch. Random weights rarely emit the end
token, so most hypotheses run to the length limit: both ways do the same work, and the
outputs must be identical. One `task: "speed"` line in bench/results.jsonl.

    python bench/beam_speed.py --sentences 200 --threads 1
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, record  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128, help="rows per batch (sentences x beam)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dry-run", action="store_true", help="print the timings, record nothing")
    args = parser.parse_args(argv)

    import torch

    from seqlab.config import build_config
    from seqlab.tasks import make_task

    torch.set_num_threads(args.threads)
    cfg = build_config(task="translate", data="multi30k", family="gru",
                       settings={"data.data_dir": str(SHARED_DATA), "model.attention": "general"})
    task = make_task(cfg)
    splits = task.load_splits()
    task.fit_vocab(splits["train"])
    torch.manual_seed(0)
    model = task.build_model().eval()
    sources = [ex["source"] for ex in splits["test"][: args.sentences]]
    ids = task.encode_sources(sources)

    def timed(batch_size: int) -> tuple[float, list[list[int]]]:
        start = time.perf_counter()
        out = task.translate_ids(model, ids, beam=args.beam, batch_size=batch_size)
        return time.perf_counter() - start, out

    one_s, one = timed(args.beam)  # batch_size // beam == 1 sentence per batch
    many_s, many = timed(args.batch_size)
    if one != many:
        raise SystemExit("batched beam search changed the output")
    n = len(ids)
    print(f"{n} sentences, beam {args.beam}: one at a time {one_s:.1f} s, batched {many_s:.1f} s "
          f"({one_s / many_s:.2f}x)", flush=True)
    if args.dry_run:
        return
    record("speed", "multi30k", "gru-beam", "test",
           {"sentences": n, "beam": args.beam, "sentences_per_s_one_at_a_time": n / one_s,
            "sentences_per_s_batched": n / many_s, "sentences_per_batch": max(1, args.batch_size // args.beam),
            "speedup": one_s / many_s, "mean_output_tokens": sum(map(len, many)) / n, "torch_threads": args.threads},
           wall_s=one_s + many_s, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           command=f"python bench/beam_speed.py --sentences {args.sentences} --beam {args.beam} "
                   f"--batch-size {args.batch_size} --threads {args.threads}")


if __name__ == "__main__":
    main()
