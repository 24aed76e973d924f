"""Stratified K-fold cross-validation of one training recipe: the protocol that the published
figures on datasets without an official split (CR, MPQA, SUBJ) use.

    report = cross_validate(cfg, k=10, out=Path("runs/cr-cv"), seed=0)
    report["summary"]["accuracy"]   # "0.8123 ± 0.0154"

What is folded: every labeled example the dataset's train and validation parts hold (a
dataset without a validation split had one carved from train by the task; it is pooled back).
A dataset's own test split (TREC's 500 questions, `--test-data`, the fixed 10% of `names`) is
never folded in: each fold's model is also scored on it, as `test_*` columns.

Each fold: the held-out K-th part is that fold's test; the remaining parts are split again into
train and validation with `carve_validation` (cfg.data.validation_fraction, the same seed), and
the validation part drives early stopping and checkpoint choice exactly as in a plain run. So
no fold ever picks an epoch by its own test part. An estimator family (linear) picks nothing on
validation (one fit, no epochs): its folds train on their whole training part, as the published
NBSVM figures do, instead of on 90% of it. Folds come from scikit-learn's
StratifiedKFold(shuffle=True, random_state=seed): the same seed gives the same folds.

The final bundle: **not written by default** (`final=False`). The K fold models only estimate
how good the recipe is; the model to use is the same recipe trained on all the data, which is
what a plain `seqlab train` does (validation carved as usual). `final=True` trains that model
after the folds and writes it to `out/final/` (its folder is a normal bundle).

Writes `out/crossval.json` (the returned report) and `out/crossval.md` (the per-fold table with
mean ± standard deviation), both atomically. Fold bundles go to `out/fold-01/...` and are
removed after they are scored unless `keep_folds=True` (their metrics stay in the table).
Standard deviations are sample standard deviations (ddof=1) over the folds.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

from seqlab.config import RunConfig
from seqlab.errors import SeqlabError
from seqlab.files import atomic_write_json, atomic_write_text

log = logging.getLogger("seqlab")

# Per-fold columns, in table order: the held-out fold's figures, then the official test's.
FOLD_METRICS = ("accuracy", "macro_f1")


def pool_examples(splits: dict[str, list[dict]]) -> tuple[list[dict], list[dict]]:
    """(examples to fold: train + validation, the dataset's own test split or [])."""
    pooled = [*splits.get("train", []), *splits.get("validation", [])]
    return pooled, list(splits.get("test") or [])


def make_folds(examples: list[dict], k: int, seed: int, key: str = "label") -> list[tuple[list[int], list[int]]]:
    """K (train indices, held-out indices) pairs, stratified by `key`, shuffled with `seed`."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    if k < 2:
        raise SeqlabError(f"cross-validation needs at least 2 folds (got --cv {k})")
    if len(examples) < k:
        raise SeqlabError(f"too few examples for {k} folds: {len(examples)}")
    labels = [str(ex.get(key)) for ex in examples]
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    import warnings

    with warnings.catch_warnings():  # rare labels (TREC fine) cannot be in every fold; fine
        warnings.simplefilter("ignore", UserWarning)
        try:
            return [(list(a), list(b)) for a, b in splitter.split(np.zeros(len(labels)), labels)]
        except ValueError as err:
            raise SeqlabError(f"cannot make {k} stratified folds: {err}") from None


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _fold_row(fold: int, metrics: dict[str, Any], n_train: int, n_val: int, n_heldout: int,
              official: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    held = metrics.get("test") or {}
    row: dict[str, Any] = {"fold": fold, "train": n_train, "validation": n_val, "heldout": n_heldout}
    for name in FOLD_METRICS:
        if isinstance(held.get(name), int | float):
            row[name] = float(held[name])
    val = metrics.get("validation") or {}
    if isinstance(val.get("accuracy"), int | float):
        row["val_accuracy"] = float(val["accuracy"])
    if official is not None:
        for name in FOLD_METRICS:
            if isinstance(official.get(name), int | float):
                row[f"test_{name}"] = float(official[name])
    if isinstance(metrics.get("epochs"), int):
        row["epochs"] = metrics["epochs"]
    row["seconds"] = round(seconds, 2)
    return row


def summarize(rows: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """(mean, std, "mean ± std" text) per numeric column that every fold has."""
    skip = {"fold", "train", "validation", "heldout"}
    columns = [c for c in rows[0] if c not in skip and all(isinstance(r.get(c), int | float) for r in rows)]
    mean, std, text = {}, {}, {}
    for column in columns:
        m, s = _mean_std([float(r[column]) for r in rows])
        mean[column], std[column] = round(m, 6), round(s, 6)
        text[column] = f"{m:.4f} ± {s:.4f}"
    return mean, std, text


def markdown_table(report: dict[str, Any]) -> str:
    """The per-fold table with a mean ± std row, as markdown."""
    rows = report["folds"]
    columns = list(rows[0])
    lines = [
        f"# {report['k']}-fold cross-validation: {report['dataset']} / {report['family']}",
        "",
        f"{report['examples']} examples folded (stratified, seed {report['seed']}); "
        + (f"each fold's validation ({report['validation_fraction']:.0%} of its training part) chooses the epoch; "
           if report["validation_fraction"] else "each fold's model is fit on all of its training part; ")
        + "std is the sample standard deviation over folds.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    lines.append("| mean ± std | " + " | ".join(report["summary"].get(c, "") for c in columns[1:]) + " |")
    final = report.get("final")
    lines += ["", f"Final bundle: {final}" if final else "Final bundle: not written (train without --cv for it)."]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def cross_validate(
    cfg: RunConfig,
    k: int,
    out: Path,
    *,
    seed: int | None = None,
    final: bool = False,
    keep_folds: bool = False,
    splits: dict[str, list[dict]] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train `cfg` on K stratified folds and return the report written to out/crossval.json.
    A folder that already holds a cross-validation is refused unless `overwrite`.

    seed: fold assignment and each fold's validation carve (default cfg.train.seed; model
    initialization always uses cfg.train.seed). splits: the dataset already read (else the
    task reads cfg.data). Classification only (folds are stratified by label).
    """
    from seqlab.api import train_config
    from seqlab.data.splits import carve_validation
    from seqlab.families import family_of
    from seqlab.tasks import make_task

    if cfg.task != "classify":
        raise SeqlabError(f"--cv folds labeled examples: it works with --task classify, not {cfg.task}")
    seed = cfg.train.seed if seed is None else seed
    out = Path(out)
    from seqlab.runfolder import check_report_folder

    check_report_folder(out, "crossval.json", overwrite)
    if splits is None:
        cfg.data.on_disk = "no"  # folds are cut from examples in memory
        splits = make_task(cfg).load_splits()
    pooled, official_test = pool_examples(splits)
    estimator = not family_of(cfg.model.family).neural

    def split_off_validation(examples: list[dict]) -> tuple[list[dict], list[dict]]:
        """(train, validation): an estimator fits in one call and chooses nothing on validation,
        so it gets every example; a neural model stops early on a carved part."""
        if estimator:
            return examples, []
        return carve_validation(examples, cfg.data.validation_fraction, seed=seed)

    folds = make_folds(pooled, k, seed)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (train_idx, held_idx) in enumerate(folds, start=1):
        start = time.perf_counter()
        train_part = [pooled[j] for j in train_idx]
        heldout = [pooled[j] for j in held_idx]
        fold_train, fold_val = split_off_validation(train_part)
        fold_dir = out / f"fold-{i:02d}"
        log.info("fold %d/%d: %d train, %d validation, %d held out", i, k, len(fold_train), len(fold_val), len(heldout))
        bundle = train_config(cfg, fold_dir, splits={"train": fold_train, "validation": fold_val, "test": heldout},
                              overwrite=overwrite)
        if bundle is None:  # a non-zero rank of a distributed run: rank 0 reports
            continue
        official = bundle.evaluate(official_test) if official_test else None
        rows.append(_fold_row(i, bundle.metrics, len(fold_train), len(fold_val), len(heldout), official,
                              time.perf_counter() - start))
        if not keep_folds:
            shutil.rmtree(fold_dir, ignore_errors=True)
    if not rows:
        return {}
    mean, std, text = summarize(rows)
    report: dict[str, Any] = {
        "dataset": cfg.data.source,
        "family": cfg.model.family,
        "k": k,
        "seed": seed,
        "examples": len(pooled),
        "official_test": len(official_test),
        "validation_fraction": 0.0 if estimator else cfg.data.validation_fraction,
        "folds": rows,
        "mean": mean,
        "std": std,
        "summary": text,
        "config": cfg.to_dict(),
        "final": None,
    }
    if final:  # what the folds measured, on all the data
        train, validation = split_off_validation(pooled)
        final_splits = {"train": train, "validation": validation}
        if official_test:
            final_splits["test"] = official_test
        train_config(cfg, out / "final", splits=final_splits, overwrite=overwrite)
        report["final"] = str(out / "final")
    atomic_write_json(out / "crossval.json", report)
    atomic_write_text(out / "crossval.md", markdown_table(report))
    return report
