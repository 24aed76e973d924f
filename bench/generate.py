"""Conditional generation benchmark: surnames for a language (names, language -> name).
Target: conditioning accuracy >= 0.70 averaged over the 18 languages at temperature 0.8,
novelty >= 0.5.

Two `seqlab train` runs in their own processes: the generator (`--task generate`) and the
judge, a names classifier trained with seqlab on the same split (`--task classify`, never
on generated names). Then 100 names per language are sampled at temperature 0.8 and the
judge labels them; novelty is the share not among the training names. One line in
bench/results.jsonl with conditioning_accuracy, novelty and the test split's nats/char.

    python bench/generate.py
    python bench/generate.py --epochs 1 --dry-run      # a quick check; records nothing
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, record, run_measured, seqlab_cmd  # noqa: E402

TARGETS = {"conditioning_accuracy": 0.70, "novelty": 0.5}
GENERATOR = ["--family", "gru", "--layers", "2", "--embed-dim", "64", "--hidden-dim", "256", "--dropout", "0.2",
             "--batch-size", "64", "--lr", "0.002", "--epochs", "30", "--patience", "3",
             "--condition-dropout", "0.15"]
# The judge: the best names classifier measured (BENCHMARKS.md: char BiGRU 2x256, 0.828 test accuracy).
JUDGE = ["--family", "gru", "--bidirectional", "--layers", "2", "--hidden-dim", "256", "--pooling", "max",
         "--dropout", "0.3", "--epochs", "15", "--patience", "3"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-language", type=int, default=100, help="names sampled per language")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--epochs", type=int, help="override both runs' epochs (quick checks)")
    parser.add_argument("--judge", help="an existing classifier bundle to use as the judge")
    parser.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance weight when sampling")
    parser.add_argument("--dry-run", action="store_true", help="print the result, record nothing")
    args, extra = parser.parse_known_args(argv)  # anything else: more generator `seqlab train` flags
    out_root = Path(tempfile.mkdtemp(prefix="seqlab-bench-generate-"))
    common = ["--data", "names", "--data-dir", str(SHARED_DATA), "--seed", "0", "--no-progress"]
    gen_cmd = ["train", "--task", "generate", *common, "--out", str(out_root / "generator"), *GENERATOR,
               *(["--epochs", str(args.epochs)] if args.epochs else []), *[a for a in extra if a != "--"]]
    wall, rss = run_measured(seqlab_cmd(*gen_cmd))
    judge_dir = Path(args.judge) if args.judge else out_root / "judge"
    if not args.judge:
        run_measured(seqlab_cmd("train", "--task", "classify", *common, "--out", str(judge_dir), *JUDGE,
                                *(["--epochs", str(args.epochs)] if args.epochs else [])))

    import seqlab
    from seqlab.data.datasets import load_dataset
    from seqlab.tasks.generate import generation_metrics

    generator, judge = seqlab.load(out_root / "generator"), seqlab.load(judge_dir)
    train = load_dataset("names", SHARED_DATA)["train"]
    train_names = {ex["text"] for ex in train}
    prior = {lang: n / len(train) for lang, n in Counter(ex["label"] for ex in train).items()}
    start = time.perf_counter()
    report = generation_metrics(generator, train_names, judge, args.per_language, args.temperature, seed=0,
                                guidance=args.guidance, prior=prior)
    sample_s = time.perf_counter() - start
    metrics = json.loads((out_root / "generator" / "metrics.json").read_text())
    values = {
        "conditioning_accuracy": report["conditioning_accuracy"], "novelty": report["novelty"],
        "conditioning_accuracy_uniform_prior": report["conditioning_accuracy_uniform_prior"],
        "guidance": args.guidance,
        "nats_per_char": metrics["test"]["nats_per_char"], "val_nats_per_char": metrics["validation"]["nats_per_char"],
        "judge_test_accuracy": judge.metrics["test"]["accuracy"], "samples": report["samples"],
        "temperature": args.temperature, "sampling_s": round(sample_s, 2),
        "tokens_per_s": metrics.get("train_tokens_per_s"), "epochs": metrics.get("epochs"),
        "n_parameters": metrics.get("n_parameters"),
    }
    per_language = {k: round(v["accuracy"], 3) for k, v in report["per_condition"].items()}
    examples = {lang: generator.sample(lang, 5, args.temperature, seed=1, guidance=args.guidance) for lang in ("Russian", "Japanese",
                                                                                         "Italian", "Irish")}
    command = "seqlab " + shlex.join(gen_cmd).replace(str(out_root), "OUT").replace(str(SHARED_DATA), "../shared/data")
    if args.dry_run:
        print(json.dumps({"not_recorded": True, "wall_s": round(wall, 1), "metrics": values, "examples": examples,
                          "per_language_accuracy": per_language,
                          "command": command, "bundle": str(out_root)}, ensure_ascii=False))
        return
    record("generate", "names", "gru", "test", values, wall_s=wall, peak_rss_mb=rss, command=command,
           examples=examples, judge=shlex.join(JUDGE), per_language_accuracy=per_language,
           target_met=all(values[k] >= v for k, v in TARGETS.items()))


if __name__ == "__main__":
    main()
