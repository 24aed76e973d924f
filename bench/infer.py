"""Inference speed of trained models: torch eager vs onnxruntime fp32 vs onnxruntime int8.

    python bench/infer.py --models imdb-gru,imdb-cnn,imdb-bow,tagger,translator --threads 1,2

For each model: train a bundle from its preset (configs/imdb-<family>.yaml, configs/ud-ewt-lstm.yaml,
configs/multi30k-gru-attention.yaml) on a slice (--limit examples per split, --epochs; the note
in each line says so), export it (fp32 and int8), then at each thread count measure:
- batch-1 latency (p50, p99, ms) of one input at a time (tokenization included, as a user
  calls it: predict_proba for a classifier, predict for the tagger, translate for the
  translator, at its beam), over --latency-texts inputs;
- batch-64 throughput (inputs/s) on chunks of 64;
and once, at the first thread count: the test score of each runtime through `seqlab test`
(`--runtime onnx` for the exports: what int8 costs) on the test slice, and for the
classifiers the cold start: wall time of a `seqlab predict DIR "text"` process, with torch and
with --runtime onnx (median of 3). One `task: "infer"` line per model and thread count.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SHARED_DATA, record  # noqa: E402


@dataclass
class Target:
    """A model to measure: its preset, data, headline score and the call a user makes."""

    name: str
    task: str
    dataset: str
    config: str
    score: str  # the metric seqlab test reports for it
    settings: dict

    def call(self, runtime):
        if self.task == "classify":
            return runtime.predict_proba
        if self.task == "translate":
            return runtime.translate
        return runtime.predict

    def inputs(self, bundle, examples) -> list[str]:
        if self.task == "tag":
            return [" ".join(ex["tokens"]) for ex in examples]
        return [ex["source" if self.task == "translate" else "text"] for ex in examples]


TARGETS = {
    **{f"imdb-{f}": Target(f"imdb-{f}", "classify", "imdb", f"imdb-{f}.yaml", "accuracy", {})
       for f in ("gru", "cnn", "bow", "lstm")},
    "tagger": Target("tagger", "tag", "ud-ewt", "ud-ewt-lstm.yaml", "upos_accuracy", {}),
    # bf16 autocast is slow on a CPU without native bf16: the slice trains in fp32
    "translator": Target("translator", "translate", "multi30k", "multi30k-gru-attention.yaml", "bleu",
                         {"train.precision": "32-true"}),
}


def train(target: Target, out: Path, limit: int, epochs: int):
    import seqlab

    if (out / "config.json").is_file():
        return seqlab.load(out)
    return seqlab.train(out=out, task=target.task, data=target.dataset, config=str(ROOT / "configs" / target.config),
                        **{"data.data_dir": str(SHARED_DATA), "data.limit": limit, "train.epochs": epochs,
                           "train.progress": False, **target.settings})


def latencies(fn, texts: list[str]) -> tuple[float, float]:
    fn(texts[:1])  # warm-up
    times = []
    for text in texts:
        start = time.perf_counter()
        fn([text])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def throughput(fn, texts: list[str], batch: int = 64) -> float:
    fn(texts[:batch])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def scores(target: Target, directories: dict[str, Path], limit: int) -> dict[str, float]:
    """The test score of each runtime through seqlab.api.test (on the same test slice)."""
    from seqlab.api import test

    out = {}
    for name, directory in directories.items():
        result = test(directory, split="test", runtime="torch" if name == "torch" else "onnx",
                      **{"data.data_dir": str(SHARED_DATA), "data.limit": limit})
        out[f"{name}_{target.score}"] = float(result["metrics"][target.score])
    return out


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
    parser.add_argument("--models", default="imdb-gru,imdb-cnn,imdb-bow,tagger,translator",
                        help=f"comma list of {', '.join(TARGETS)}")
    parser.add_argument("--threads", default="1,2", help="comma list of thread counts")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--latency-texts", type=int, default=200)
    parser.add_argument("--throughput-texts", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "runs" / "infer"))
    parser.add_argument("--no-scores", action="store_true",
                        help="measure speed only (the test scores of these bundles are already recorded)")
    args = parser.parse_args()

    import torch

    import seqlab.onnx
    from seqlab.api import evaluation_split
    from seqlab.export import export_bundle

    threads = [int(t) for t in args.threads.split(",")]
    command = "python bench/infer.py " + " ".join(sys.argv[1:])
    for name in args.models.split(","):
        target = TARGETS[name]
        torch.set_num_threads(threads[0])
        started = time.perf_counter()
        bundle = train(target, Path(args.out) / name, args.limit, args.epochs)
        folders = {"torch": bundle.directory, "onnx": export_bundle(bundle.directory),
                   "onnx_int8": export_bundle(bundle.directory, quantize="int8")}
        test = evaluation_split(bundle, None, "test", **{"data.data_dir": str(SHARED_DATA), "data.limit": args.limit})
        texts = target.inputs(bundle, test)
        once = {} if args.no_scores else scores(target, folders, args.limit)
        for key in () if args.no_scores else ("onnx", "onnx_int8"):
            once[f"{key}_{target.score}_change"] = once[f"{key}_{target.score}"] - once[f"torch_{target.score}"]
        if target.task == "classify":
            once["cold_start_torch_s"] = cold_start(bundle.directory, "torch")
            once["cold_start_onnx_s"] = cold_start(bundle.directory, "onnx")
        for n in threads:
            torch.set_num_threads(n)
            runtimes = {"torch": bundle, "onnx": seqlab.onnx.load(folders["onnx"], threads=n),
                        "onnx_int8": seqlab.onnx.load(folders["onnx_int8"], threads=n)}
            metrics: dict[str, float] = {"test_examples": len(test), **(once if n == threads[0] else {})}
            load = os.getloadavg()[0]
            for key, runtime in runtimes.items():
                fn = target.call(runtime)
                p50, p99 = latencies(fn, texts[: args.latency_texts])
                per_s = throughput(fn, texts[: args.throughput_texts])
                metrics |= {f"{key}_b1_p50_ms": p50, f"{key}_b1_p99_ms": p99, f"{key}_b64_per_s": per_s}
                print(name, n, key, round(p50, 3), round(p99, 3), round(per_s, 1), flush=True)
            metrics["onnx_b1_speedup"] = metrics["torch_b1_p50_ms"] / metrics["onnx_b1_p50_ms"]
            metrics["int8_b1_speedup"] = metrics["torch_b1_p50_ms"] / metrics["onnx_int8_b1_p50_ms"]
            metrics["onnx_b64_speedup"] = metrics["onnx_b64_per_s"] / metrics["torch_b64_per_s"]
            record("infer", target.dataset, f"{name} {n}thr", "test", metrics,
                   wall_s=time.perf_counter() - started,
                   peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, command=command,
                   note=f"bundle trained on a slice: configs/{target.config} with --limit {args.limit} "
                        f"--epochs {args.epochs}; {n} thread(s) for torch and onnxruntime, tokenization "
                        f"included; {'speed only' if args.no_scores else 'scores'} on a test slice of {len(test)}; latency over the first "
                        f"{args.latency_texts} inputs, throughput over {min(len(texts), args.throughput_texts)}; "
                        f"1-min load average {load:.1f} at the start (other jobs shared the machine)",
                   threads=n)
            started = time.perf_counter()


if __name__ == "__main__":
    main()
