"""Inference speed of IMDB classifiers: torch eager vs onnxruntime fp32 vs onnxruntime int8.

    OMP_NUM_THREADS=1 python bench/infer.py --families gru,cnn,bow --limit 3000 --epochs 1

For each family: train a bundle from configs/imdb-<family>.yaml on a slice of IMDB (--limit
examples per split, --epochs; the note in each line says so), export it (fp32 and int8), then
on the test slice measure, at 1 thread:
- batch-1 latency (p50, p99, ms) of predict_proba on one review at a time (tokenization
  included, as a user calls it), over --latency-texts reviews;
- batch-64 throughput (reviews/s) of predict_proba on chunks of 64;
- test accuracy of each runtime (what int8 costs);
- cold start: wall time of a `seqlab predict DIR "text"` process, with torch and with
  --runtime onnx (median of 3).
One `task: "infer"` line per family in bench/results.jsonl.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SHARED_DATA, record  # noqa: E402


def train(family: str, out: Path, limit: int, epochs: int):
    import seqlab

    if (out / "config.json").is_file():
        return seqlab.load(out)
    return seqlab.train(out=out, task="classify", data="imdb", config=str(ROOT / "configs" / f"imdb-{family}.yaml"),
                        **{"data.data_dir": str(SHARED_DATA), "data.limit": limit, "train.epochs": epochs,
                           "train.progress": False})


def latencies(fn, texts: list[str]) -> tuple[float, float]:
    fn(texts[:1])  # warm-up
    times = []
    for text in texts:
        start = time.perf_counter()
        fn([text])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def throughput(fn, texts: list[str], batch: int = 64) -> tuple[float, np.ndarray]:
    fn(texts[:batch])  # warm-up
    start = time.perf_counter()
    probs = np.concatenate([fn(texts[i : i + batch]) for i in range(0, len(texts), batch)])
    return len(texts) / (time.perf_counter() - start), probs


def cold_start(directory: Path, runtime: str, rounds: int = 3) -> float:
    argv = [sys.executable, "-m", "seqlab", "predict", str(directory), "a wonderful, moving film"]
    if runtime == "onnx":
        argv += ["--runtime", "onnx"]
    walls = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", default="gru,cnn,bow")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--latency-texts", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "runs" / "infer"))
    args = parser.parse_args()

    import torch

    import seqlab.onnx
    from seqlab.data.datasets import load_dataset
    from seqlab.export import export_bundle

    torch.set_num_threads(1)
    command = "OMP_NUM_THREADS=1 python bench/infer.py " + " ".join(sys.argv[1:])
    for family in args.families.split(","):
        started = time.perf_counter()
        bundle = train(family, Path(args.out) / f"imdb-{family}", args.limit, args.epochs)
        fp32 = seqlab.onnx.load(export_bundle(bundle.directory), threads=1)
        int8 = seqlab.onnx.load(export_bundle(bundle.directory, quantize="int8"), threads=1)
        test = load_dataset("imdb", data_dir=SHARED_DATA)["test"]
        rng = np.random.default_rng(0)
        test = [test[i] for i in rng.choice(len(test), size=min(args.limit, len(test)), replace=False)]
        texts = [ex["text"] for ex in test]
        gold = np.array([bundle.labels.index(ex["label"]) for ex in test])
        metrics: dict[str, float] = {"test_examples": len(test)}
        for name, runtime in (("torch", bundle), ("onnx", fp32), ("onnx_int8", int8)):
            p50, p99 = latencies(runtime.predict_proba, texts[: args.latency_texts])
            per_s, probs = throughput(runtime.predict_proba, texts)
            metrics |= {f"{name}_b1_p50_ms": p50, f"{name}_b1_p99_ms": p99, f"{name}_b64_per_s": per_s,
                        f"{name}_accuracy": float((probs.argmax(1) == gold).mean())}
            print(family, name, round(p50, 3), round(p99, 3), round(per_s, 1), flush=True)
        metrics["onnx_b1_speedup"] = metrics["torch_b1_p50_ms"] / metrics["onnx_b1_p50_ms"]
        metrics["int8_b1_speedup"] = metrics["torch_b1_p50_ms"] / metrics["onnx_int8_b1_p50_ms"]
        metrics["int8_accuracy_change_points"] = 100 * (metrics["onnx_int8_accuracy"] - metrics["torch_accuracy"])
        metrics["cold_start_torch_s"] = cold_start(bundle.directory, "torch")
        metrics["cold_start_onnx_s"] = cold_start(bundle.directory, "onnx")
        record("infer", "imdb", family, "test", metrics, wall_s=time.perf_counter() - started,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, command=command,
               note=f"bundle trained on a slice: configs/imdb-{family}.yaml with --limit {args.limit} "
                    f"--epochs {args.epochs}; speeds at 1 thread, tokenization included; test slice of "
                    f"{len(test)} reviews; latency over the first {args.latency_texts}",
               threads=1)


if __name__ == "__main__":
    main()
