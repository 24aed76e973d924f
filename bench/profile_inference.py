"""Where inference time goes, for the figures the README quotes beside the benchmarks
(printed, not recorded: a profile explains a benchmark line, it is not one).

    python bench/profile_inference.py inspect runs/infer/imdb-gru      # the live page's document
    python bench/profile_inference.py translate runs/infer/translator   # batched beam search, onnx vs torch

`inspect`: ms per part of seqlab.introspect.inspect for a 50-token text at 1 thread (the whole
document, the layers' states, the prefix verdicts, the attributions). `translate`: cProfile of
the onnxruntime beam-5 search over 64 Multi30k test sentences, then both runtimes' wall time.
The bundles are the ones bench/infer.py trains (its exports included).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA  # noqa: E402


def per_call_ms(fn, repeats: int = 10) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def profile_inspect(directory: str) -> None:
    import torch

    import seqlab
    from seqlab.introspect import inspect

    torch.set_num_threads(1)
    bundle = seqlab.load(directory)
    words = ("the movie my friend has not seen is good but the acting was really bad and i would "
             "not watch it again").split()
    random.seed(0)
    text = " ".join(random.choice(words) for _ in range(50))
    task, model = bundle.task, bundle.model
    reading = task.trace_input(model, text, 128)
    encoder = task.input_encoder(model)
    print("whole document", round(per_call_ms(lambda: inspect(bundle, text)), 1), "ms")
    print("the page's first request (no attributions)",
          round(per_call_ms(lambda: inspect(bundle, text, attribution=False)), 1), "ms")
    print("layers' states", round(per_call_ms(lambda: encoder.trace(reading.ids, reading.lengths, reading.extra)), 1), "ms")
    with torch.no_grad():
        for chunk in (12, 25, 64):
            print(f"prefix verdicts, chunk {chunk}",
                  round(per_call_ms(lambda c=chunk: encoder.prefix_summaries(reading.ids, chunk=c)), 1), "ms")
    print("attributions", round(per_call_ms(lambda: task.trace_attribution(model, reading)), 1), "ms")


def profile_translate(directory: str) -> None:
    import torch

    import seqlab
    import seqlab.onnx
    from seqlab.api import evaluation_split

    torch.set_num_threads(1)
    bundle = seqlab.load(directory)
    runner = seqlab.onnx.load(Path(directory) / "onnx", threads=1)
    test = evaluation_split(bundle, None, "test", **{"data.data_dir": str(SHARED_DATA), "data.limit": 64})
    texts = [ex["source"] for ex in test][:64]
    runner.translate(texts[:4])
    profiler = cProfile.Profile()
    profiler.enable()
    start = time.perf_counter()
    runner.translate(texts)
    print("onnxruntime", round(time.perf_counter() - start, 3), "s for", len(texts), "sentences")
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(14)
    bundle.translate(texts[:4])
    start = time.perf_counter()
    bundle.translate(texts)
    print("torch", round(time.perf_counter() - start, 3), "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("inspect", "translate"))
    parser.add_argument("bundle", help="a bundle folder (bench/infer.py's, under runs/infer/)")
    args = parser.parse_args()
    (profile_inspect if args.what == "inspect" else profile_translate)(args.bundle)


if __name__ == "__main__":
    main()
