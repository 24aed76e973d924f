"""Translation benchmark: Multi30k German->English, test2016, sacrebleu BLEU / chrF on
detokenized output against the raw references (cased, 13a, sacrebleu defaults), beam search.
Target: BLEU >= 33 with the best RNN + attention configuration trained on 2 CPU cores in at
most 90 minutes; the no-attention and bow-encoder baselines beside it.

Each configuration is one `seqlab train --task translate` in its own process, stopped by
`--max-minutes` (the bundle keeps the best-validation-loss checkpoint), then one line per
configuration in bench/results.jsonl.

    python bench/translate.py                       # the best configuration (gru-attention), 90 min
    python bench/translate.py gru-none bow --minutes 20
    python bench/translate.py --minutes 3 --limit 3000 --dry-run   # a quick check; records nothing
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, record, run_measured, seqlab_cmd  # noqa: E402

TARGET = 33.0
# `seqlab train` flags per configuration (BPE 8k per side, cased, label smoothing 0.1 are
# the translate task's defaults, spelled out so a changed default does not change a result).
_COMMON = ["--tokenizer", "bpe", "--max-vocab", "8000", "--no-lowercase", "--label-smoothing", "0.1",
           "--batch-size", "64", "--lr", "0.001", "--beam", "5", "--length-penalty", "1.0",
           "--precision", "bf16-mixed", "--epochs", "100", "--patience", "4"]
CONFIGS: dict[str, list[str]] = {
    "gru-attention": ["--family", "gru", "--attention", "general", "--embed-dim", "256", "--hidden-dim", "512",
                      "--dropout", "0.3", "--lr-decay", "0.9"],
    "gru-additive": ["--family", "gru", "--attention", "additive", "--embed-dim", "256", "--hidden-dim", "512",
                     "--dropout", "0.3", "--lr-decay", "0.9"],
    "gru-none": ["--family", "gru", "--attention", "none", "--embed-dim", "256", "--hidden-dim", "512",
                 "--dropout", "0.3", "--lr-decay", "0.9"],
    "bow": ["--family", "bow", "--cell", "gru", "--attention", "none", "--embed-dim", "256",
            "--hidden-dim", "512", "--dropout", "0.3", "--lr-decay", "0.9"],
}
MINUTES = {"gru-attention": 90.0, "gru-additive": 90.0, "gru-none": 30.0, "bow": 20.0}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=["gru-attention"], help=f"of: {', '.join(CONFIGS)}")
    parser.add_argument("--minutes", type=float, help="wall-clock budget per configuration (default: its own)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target: 2 cores)")
    parser.add_argument("--limit", type=int, help="sentence pairs per split (a quick check)")
    parser.add_argument("--dry-run", action="store_true", help="print the result, record nothing")
    args, extra = parser.parse_known_args(argv)  # anything else: more `seqlab train` flags
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}")
    extra_flags = [a for a in extra if a != "--"]
    out_root = Path(tempfile.mkdtemp(prefix="seqlab-bench-translate-"))
    for name in args.configs:
        out = out_root / name
        minutes = args.minutes or MINUTES[name]
        # leave time for start-up, the final beam-search evaluations and saving
        train_minutes = round(minutes - min(6.0, 0.15 * minutes), 2)
        cmd = ["train", "--task", "translate", "--data", "multi30k", "--data-dir", str(SHARED_DATA),
               "--seed", "0", "--out", str(out), "--no-progress", "--max-minutes", str(train_minutes),
               *_COMMON, *CONFIGS[name], *(["--limit", str(args.limit)] if args.limit else []), *extra_flags]
        wall, rss = run_measured(seqlab_cmd(*cmd), env={"OMP_NUM_THREADS": str(args.threads)})
        metrics = json.loads((out / "metrics.json").read_text())
        test, val = metrics["test"], metrics["validation"]
        values = {
            "bleu": test["bleu"], "chrf": test["chrf"], "val_perplexity": val["perplexity"],
            "val_bleu": val["bleu"], "test_perplexity": test["perplexity"], "beam": test["beam"],
            "bleu_signature": test["bleu_signature"], "chrf_signature": test["chrf_signature"],
            "tokens_per_s": metrics.get("train_tokens_per_s"), "seconds_per_epoch": metrics.get("seconds_per_epoch"),
            "epochs": metrics.get("epochs"), "train_seconds": metrics.get("train_seconds"),
            "n_parameters": metrics.get("n_parameters"),
        }
        command = (f"OMP_NUM_THREADS={args.threads} seqlab "
                   + shlex.join(cmd).replace(str(out), "OUT").replace(str(SHARED_DATA), "../shared/data"))
        if args.dry_run:
            print(json.dumps({"config": name, "not_recorded": True, "wall_s": round(wall, 1),
                              "peak_rss_mb": round(rss, 1), "metrics": values, "command": command,
                              "samples": test["samples"][:3], "bundle": str(out)}, ensure_ascii=False))
            continue
        record("translate", "multi30k", name, "test", values, wall_s=wall, peak_rss_mb=rss, command=command,
               minutes_budget=minutes, target_met=test["bleu"] >= TARGET)


if __name__ == "__main__":
    main()
