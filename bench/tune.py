"""Issue 14's anchor for `seqlab tune` (after fastText's -autotune-validation): on suite
datasets, a 15-minute tune against the default recipe on the same split. The tuned model
should beat the default on validation and not lose on test.

    python bench/tune.py cr cnn                    # default recipe, then a 15-minute tune: two lines
    python bench/tune.py trec cnn --minutes 15 --src /tmp/snapshot/src
    python bench/tune.py job cr cnn tune OUT --minutes 15 --result FILE      (one child job)

Splits: TREC's official 5,452 train / 500 test, with seqlab's stratified 10% validation carved
from train (seed 0). CR has no split: a stratified 10% test part is carved first (seed 0), then
seqlab's 10% validation from the rest. Both jobs read exactly these splits; the tune's trials
see train and validation only, and only its final bundle is scored on the test part.

Each job is its own process at OMP_NUM_THREADS=1 (torch 1 thread), one at a time, so the
wall time and peak RSS recorded are that job's. The tune job's wall time includes training
the final bundle after the budget. Lines go to bench/results.jsonl as family "<family>
default" and "<family> tuned <M> min" (split: test; metrics hold validation accuracy too).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, record, run_child_job  # noqa: E402

SEED = 0


def bench_splits(cfg) -> dict[str, list]:
    """The dataset's splits, with a carved 10% test part when it has no test split."""
    from seqlab.data.splits import carve_validation
    from seqlab.tasks import make_task

    splits = make_task(cfg).load_splits()
    if splits.get("test"):
        return splits
    pooled = [*splits["train"], *splits["validation"]]
    rest, test = carve_validation(pooled, 0.1, seed=SEED)
    train, validation = carve_validation(rest, cfg.data.validation_fraction, seed=SEED)
    return {"train": train, "validation": validation, "test": test}


def job(dataset: str, family: str, kind: str, out: Path, minutes: float, result: Path) -> None:
    import torch

    from seqlab.api import train_config
    from seqlab.config import build_config

    torch.set_num_threads(1)
    cfg = build_config(task="classify", data=dataset, family=family,
                       settings={"data.data_dir": str(SHARED_DATA), "train.progress": False, "train.seed": SEED})
    splits = bench_splits(cfg)
    sizes = {name: len(part) for name, part in splits.items()}
    if kind == "default":
        metrics = train_config(cfg, out / "default", splits=splits, overwrite=True).metrics
        extra: dict = {}
    else:
        from seqlab.tune import tune_config

        report = tune_config(cfg, out / "tune", budget_minutes=minutes, splits=splits, overwrite=True)
        metrics = json.loads((out / "tune" / "final" / "metrics.json").read_text())
        extra = {"trials": report["trials"], "states": report["states"], "best_trial": report["best"]["trial"],
                 "best_params": report["best"]["params"], "default_trial_val": (report["default"] or {}).get("value"),
                 "importances": {k: round(v, 3) for k, v in report["importances"].items()}}
    line = {"accuracy": metrics["test"]["accuracy"], "macro_f1": metrics["test"]["macro_f1"],
            "val_accuracy": metrics["validation"]["accuracy"], "epochs": metrics.get("epochs"), "sizes": sizes, **extra}
    result.write_text(json.dumps(line), encoding="utf-8")


def measure(dataset: str, family: str, kind: str, minutes: float, src: str | None, out: Path) -> dict:
    argv = [sys.executable, str(Path(__file__).resolve()), "job", dataset, family, kind, str(out),
            "--minutes", str(minutes)]
    wall, rss, line = run_child_job(argv, src)
    name = f"{family} default" if kind == "default" else f"{family} tuned {minutes:g} min"
    metrics = {k: line.pop(k) for k in ("accuracy", "macro_f1", "val_accuracy", "epochs")}
    command = f"OMP_NUM_THREADS=1 python bench/tune.py job {shlex.join([dataset, family, kind, 'OUT'])} --minutes {minutes:g}"
    split = "test" if dataset == "trec" else "test (carved 10%)"
    note = "same split for the default recipe and the tune; the tune picks by validation only, its first trial is " \
           "the default recipe"
    if kind != "default":
        note += f"; {line['trials']} trials ({line['states']}), best trial {line['best_trial']}"
    return record("classify", dataset, name, split, metrics, wall_s=wall, peak_rss_mb=rss, command=command,
                  note=note, **line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("args", nargs="+", help="DATASET FAMILY, or: job DATASET FAMILY default|tune OUT")
    parser.add_argument("--minutes", type=float, default=15.0, help="the tune's budget (default 15)")
    parser.add_argument("--src", help="run the jobs on this copy of src/ (a snapshot while the tree changes)")
    parser.add_argument("--out", help="folder for the runs (default: a temp folder)")
    parser.add_argument("--result", help="job: where to write its metrics")
    args = parser.parse_args()
    if args.args[0] == "job":
        _, dataset, family, kind, out = args.args
        job(dataset, family, kind, Path(out), args.minutes, Path(args.result))
        return
    dataset, family = args.args
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        default = measure(dataset, family, "default", args.minutes, args.src, out)
        tuned = measure(dataset, family, "tune", args.minutes, args.src, out)
    print(json.dumps({"dataset": dataset, "family": family,
                      "default": {k: default["metrics"][k] for k in ("val_accuracy", "accuracy")},
                      "tuned": {k: tuned["metrics"][k] for k in ("val_accuracy", "accuracy")}}), flush=True)


if __name__ == "__main__":
    main()
