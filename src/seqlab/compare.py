"""Train several families on the same split and put them side by side.

Variants such as `bow+bigrams` are the same family with one setting changed, labeled as
such in the table, so a reader sees what the extra features buy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from seqlab.config import build_config
from seqlab.errors import SeqlabError
from seqlab.families import family_names
from seqlab.files import atomic_write_json, atomic_write_text

# variant name -> (family, settings it adds)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "linear+bigrams": ("linear", {"model.ngram_max": 2}),
    "bow+bigrams": ("bow", {"model.bigrams": True}),
    "bilstm": ("lstm", {"model.bidirectional": True}),
    "bigru": ("gru", {"model.bidirectional": True}),
}
# after the task's headline metrics (accuracy, macro-F1 for classify; BLEU for translate, ...)
RUN_COLUMNS = [("train_seconds", "train s"), ("n_parameters", "parameters")]


def parse_families(spec: str | list[str]) -> list[str]:
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    for name in names:
        if name not in family_names() and name not in VARIANTS:
            valid = ", ".join([*family_names(), *VARIANTS])
            raise SeqlabError(f"unknown family {name!r}; choose from: {valid}")
    if not names:
        raise SeqlabError("no families given; e.g. --families linear,bow,cnn,lstm")
    return names


def compare(
    *,
    data: str,
    families: str | list[str],
    out: str | Path,
    task: str = "classify",
    config: str | Path | None = None,
    settings: dict[str, Any] | None = None,
    probe_pairs: list[tuple[str, str]] | None = None,
    overwrite: bool = False,
    cv: int | None = None,
) -> dict[str, Any]:
    """Train each family on one shared split; write compare.json, compare.md, compare.png.
    A folder that already holds a comparison is refused unless `overwrite`. `cv`: K-fold
    cross-validation of each family instead (seqlab.crossval, the same folds for every
    family): the table gives mean ± std over the folds, each family's fold table is in
    OUT/<family>/crossval.md, and no bundle is written."""
    from seqlab.runfolder import check_report_folder

    check_report_folder(Path(out), "compare.json", overwrite)
    from seqlab.api import train_config
    from seqlab.probe import probe as run_probe
    from seqlab.report import format_table, plot_comparison
    from seqlab.tasks import make_task

    out = Path(out)
    names = parse_families(families)
    splits = None
    rows, results = [], {}
    for name in names:
        family, extra = VARIANTS.get(name, (name, {}))
        cfg = build_config(
            task=task, data=data, family=family, config_file=config, settings={**(settings or {}), **extra}
        )
        if splits is None:  # read and split the data once, for every model alike
            if cv is not None:
                cfg.data.on_disk = "no"  # folds are cut from examples in memory
            splits = make_task(cfg).load_splits()
        print(f"== {name} ==", file=sys.stderr, flush=True)
        if cv is not None:
            result = _cross_validated(cfg, cv, out / name, splits, overwrite)
            results[name] = result
            rows.append({"name": name, **result})
            continue
        bundle = train_config(cfg, out / name, splits=splits, overwrite=overwrite)
        metrics = bundle.metrics
        test = metrics.get("test") or metrics.get("validation") or {}
        headline = bundle.task.headline_metrics
        result = {
            **{k: test.get(k) for k in headline},
            "train_seconds": metrics.get("train_seconds"),
            "n_parameters": metrics.get("n_parameters"),
            "bundle": str(out / name),
        }
        if probe_pairs is not None and bundle.supports("probe"):
            result["probe_pairwise_accuracy"] = run_probe(bundle, probe_pairs)["pairwise_accuracy"]
        results[name] = result
        rows.append({"name": name, **result})
    if cv is not None:
        return _write_cv_report(data, cv, rows, results, out)
    split_name = "test" if splits.get("test") else "validation"
    columns = [("name", "model"), *((k, f"{split_name} {k.replace('_', ' ')}") for k in headline), *RUN_COLUMNS]
    columns += [("probe_pairwise_accuracy", "probe")] if probe_pairs is not None else []
    table = format_table(rows, columns)
    report = {"data": data, "split": split_name, "results": results, "table": table}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "compare.json", report)
    atomic_write_text(out / "compare.md", f"# seqlab compare on {data} ({split_name} split)\n\n```\n{table}\n```\n\n![comparison](compare.png)\n")
    plot_comparison(rows, out / "compare.png", metric=headline[0])
    return report


def _cross_validated(cfg, k: int, out: Path, splits: dict, overwrite: bool) -> dict[str, Any]:
    """One family's K-fold figures: each metric's mean, and its "mean ± std" text."""
    from seqlab.crossval import cross_validate

    report = cross_validate(cfg, k, out, splits=splits, overwrite=overwrite)
    result: dict[str, Any] = {}
    for metric in ("accuracy", "macro_f1", "test_accuracy"):
        if metric in report["mean"]:
            result[metric] = report["mean"][metric]
            result[f"{metric}_cv"] = report["summary"][metric]
    result["train_seconds"] = round(sum(row["seconds"] for row in report["folds"]), 1)
    result["report"] = str(out / "crossval.md")
    return result


def _write_cv_report(data: str, k: int, rows: list[dict], results: dict, out: Path) -> dict[str, Any]:
    from seqlab.report import format_table, plot_comparison

    columns = [("name", "model"), ("accuracy_cv", f"accuracy ({k}-fold mean ± std)"),
               ("macro_f1_cv", "macro F1")]
    if any("test_accuracy" in r for r in rows):  # the dataset's own test split, scored by each fold's model
        columns.append(("test_accuracy_cv", "official test accuracy"))
    columns.append(("train_seconds", f"train s (all {k} folds)"))
    table = format_table(rows, columns)
    report = {"data": data, "split": f"{k}-fold cross-validation", "cv": k, "results": results, "table": table}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "compare.json", report)
    atomic_write_text(out / "compare.md", f"# seqlab compare on {data} ({k}-fold cross-validation, the same folds "
                      f"for every model; no bundles: train without --cv for one)\n\n```\n{table}\n```\n\n"
                      "The neural models hold out part of each fold's training part (--validation-fraction) to stop early; "
                      "the linear model chooses nothing on validation and is fit on all of it.\n\n"
                      "![comparison](compare.png)\n")
    plot_comparison(rows, out / "compare.png", metric="accuracy", label=f"accuracy, {k}-fold mean")
    return report
