"""The typed library functions behind the CLI verbs: train and test.

Each CLI verb parses its flags and calls one function here (or in compare/probe), so
everything the command line does is also one call from Python.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from seqlab.bundle import Bundle, count_parameters, load_bundle, save_bundle
from seqlab.config import RunConfig, apply_overrides, build_config, check_settings
from seqlab.errors import SeqlabError
from seqlab.families import family_of
from seqlab.tasks import make_task

log = logging.getLogger("seqlab")


def train(
    *,
    out: str | Path,
    task: str = "classify",
    data: str | None = None,
    family: str | None = None,
    resume: str | None = None,
    config: str | Path | None = None,
    overwrite: bool = False,
    **settings: Any,
) -> Bundle | None:
    """Train one model and write its bundle to `out`. Returns the bundle (None on non-zero
    ranks of a distributed run). `overwrite` replaces a bundle already in `out`."""
    cfg = build_config(task=task, data=data, family=family, config_file=config, settings=settings)
    return train_config(cfg, Path(out), resume=resume, overwrite=overwrite)


def cross_validate(
    *,
    out: str | Path,
    k: int,
    task: str = "classify",
    data: str | None = None,
    family: str | None = None,
    config: str | Path | None = None,
    final: bool = False,
    overwrite: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """K-fold cross-validation of one recipe (seqlab.crossval): mean ± std per metric and the
    per-fold table in out/crossval.{json,md}; the final bundle (all data) only with `final`."""
    from seqlab import crossval

    if k < 2:
        raise SeqlabError(f"--cv must be at least 2 folds (got {k}); 10 is the published protocol")
    cfg = build_config(task=task, data=data, family=family, config_file=config, settings=settings)
    check_settings(cfg)
    return crossval.cross_validate(cfg, k, Path(out), final=final, overwrite=overwrite)


def tune(**arguments: Any) -> dict[str, Any]:
    """Hyperparameter search (needs the `tune` extra): `seqlab.tune.tune`, whose keyword
    arguments it takes (out, budget_minutes, task, data, family, trials, resume, overwrite,
    config and any setting). Writes out/best.yaml, the final bundle in out/final, the trials
    table and plots; returns the report."""
    from seqlab import tune as tuning

    return tuning.tune(**arguments)


def train_config(
    cfg: RunConfig, out: Path, *, resume: str | None = None, splits: dict[str, list] | None = None,
    overwrite: bool = False, epoch_hooks: Sequence[Callable[[int, dict[str, float]], None]] = (),
) -> Bundle | None:
    """Train `cfg` into the run folder `out`, which is checked and locked first
    (seqlab.runfolder: another run's bundle there needs `overwrite`). `epoch_hooks`: functions
    called with (epoch, metrics) after each epoch's validation (training.EpochHook; an
    estimator family has no epochs and never calls them)."""
    from seqlab.runfolder import absolute_sources, claim

    check_settings(cfg)
    absolute_sources(cfg)  # the bundle finds its data from any working directory
    with claim(Path(out), overwrite=overwrite, resume=bool(resume)):
        return _train_claimed(cfg, Path(out), resume, splits, epoch_hooks)


def _train_claimed(cfg: RunConfig, out: Path, resume: str | None, splits: dict[str, list] | None,
                   epoch_hooks: Sequence[Callable[[int, dict[str, float]], None]] = ()) -> Bundle | None:
    family = family_of(cfg.model.family)
    task = make_task(cfg)
    if not family.neural and not task.accepts_estimators:
        raise SeqlabError(f"the {cfg.model.family} family cannot do --task {cfg.task}; it is fit on whole "
                          "texts (use it with --task classify)")
    if splits is None:
        splits = task.load_splits()
    if not splits.get("train"):
        raise SeqlabError("the training split is empty")
    if not family.neural:
        return _fit_estimator(cfg, task, family.implementation, splits, out)
    model, items, found = _fresh_model(cfg, task, splits)

    from seqlab.training import fit  # Lightning is imported only when training

    result = fit(task, model, items["train"], items["validation"], cfg.train, out, resume=resume,
                 epoch_hooks=epoch_hooks)
    import torch.distributed as dist

    lead = not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0)
    model.eval()
    validation = task.evaluate(model, splits["validation"]) if lead else None
    selection, refit = result, None
    if _refits(cfg.train, splits):  # on every rank: a distributed refit trains together
        refit = {"epochs": result.best_epochs, "examples": len(splits["train"]) + len(splits["validation"]),
                 "selection_seconds": round(selection.train_seconds, 2)}
        model, result = _refit(cfg, task, splits, result.best_epochs, out)
        model.eval()
    if not lead:
        return None
    metrics: dict[str, Any] = {
        "task": cfg.task,
        "family": cfg.model.family,
        "n_parameters": count_parameters(model),
        # the run validation watched (early stopping); a refit's own count is refit["epochs"]
        "epochs": selection.epochs_run,
        "train_seconds": round(result.train_seconds + (selection.train_seconds if refit else 0.0), 2),
        "seconds_per_epoch": round(selection.seconds_per_epoch, 2),
        "train_tokens_per_s": round(selection.tokens_per_s, 1),
        "validation": validation,
    }
    if refit:
        metrics["refit"] = refit
    if found is not None:
        metrics["pretrained_vectors_found"] = round(found, 4)
    if splits.get("test"):
        metrics["test"] = task.evaluate(model, splits["test"], out)
    from seqlab.report import plot_training_curves

    # the selection run's curves: a refit has no validation to draw
    plot_training_curves(selection.log_dir / "metrics.csv", out / "training_curves.png")
    save_bundle(out, cfg, task, model, metrics)
    return load_bundle(out)


def _fresh_model(cfg: RunConfig, task, splits: dict[str, list]) -> tuple[torch.nn.Module, dict, float | None]:
    """The vocabulary fit on splits["train"], every split encoded, and a new model (its initial
    weights depend on the seed alone); with --embeddings, the share of the vocabulary found."""
    task.fit_vocab(splits["train"])
    items = {name: task.encode(examples) for name, examples in splits.items()}
    torch.manual_seed(cfg.train.seed)
    model = task.build_model()
    found = None
    if cfg.model.embeddings:
        found = task.load_pretrained_vectors(model)
        print(f"seqlab: pretrained vectors: {100 * found:.1f}% of the {task.tokenizer.vocab_size}-token "
              f"vocabulary found in {cfg.model.embeddings}", file=sys.stderr, flush=True)
    return model, items, found


# `--refit auto` refits below this many training + validation examples: every set where the
# refit was measured (CR, MPQA, SUBJ, TREC, names: at most 18,067) is under it, and a set this
# size trains in minutes on a laptop CPU, so a second run costs little; IMDB's 25,000 reviews
# (not measured with a refit) would pay 10-30 more minutes for 10% more of a large set.
REFIT_AUTO_BELOW = 20_000


def _refits(train_cfg, splits: dict[str, list]) -> bool:
    """Whether to refit: --refit yes/no/auto, if there are held-out examples to add, in memory.
    A data file streamed from disk (data/ondisk) is large enough that 10% more of it is not worth
    a second training run; under --max-minutes, auto does not start a second run the time limit
    did not plan for (yes does, with the same limit)."""
    setting = train_cfg.refit
    train, validation = splits["train"], splits.get("validation")
    if setting == "no" or not validation or (setting == "auto" and train_cfg.max_minutes):
        return False
    if not isinstance(train, list) or not isinstance(validation, list):
        if setting == "yes":
            print("seqlab: --refit skipped: the data are streamed from disk", file=sys.stderr, flush=True)
        return False
    return setting == "yes" or len(train) + len(validation) < REFIT_AUTO_BELOW


def _refit(cfg: RunConfig, task, splits: dict[str, list], epochs: int, out: Path):
    """--refit: the same recipe again, from a new vocabulary and the seed's initial weights, on
    training + validation data for the epoch count validation chose, with nothing held out to
    stop it early (--max-minutes limits it as it did the first run). Its log and checkpoints go
    to out/refit."""
    from dataclasses import replace

    from seqlab.training import fit

    print(f"seqlab: refit on training + validation data for {epochs} epoch(s)", file=sys.stderr, flush=True)
    whole = {"train": [*splits["train"], *splits["validation"]]}
    model, items, _ = _fresh_model(cfg, task, whole)
    train_cfg = replace(cfg.train, epochs=epochs, patience=0)
    return model, fit(task, model, items["train"], None, train_cfg, out / "refit")


def _fit_estimator(cfg: RunConfig, task, estimator, splits: dict[str, list], out: Path) -> Bundle:
    """An estimator family (linear): one fit on the training split, no Lightning."""
    model, seconds = task.fit_estimator(estimator, splits["train"])
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {
        "task": cfg.task,
        "family": cfg.model.family,
        "n_parameters": count_parameters(model),
        "train_seconds": round(seconds, 2),
    }
    if splits.get("validation"):  # a cross-validation fold fits on all of its training part: none
        metrics["validation"] = task.evaluate(model, splits["validation"])
    if splits.get("test"):
        metrics["test"] = task.evaluate(model, splits["test"], out)
    save_bundle(out, cfg, task, model, metrics)
    return load_bundle(out)


def evaluation_split(bundle: Bundle, data: str | None, split: str, **data_settings: Any) -> list:
    """The examples to test a bundle on: a named split of a dataset (validation carved with the
    bundle's own seed, so it is the split the model was tuned on), or a whole file."""
    if data is None:  # the data the model was trained on, exactly as it was read then
        cfg = RunConfig.from_dict(bundle.cfg.to_dict())
        cfg.data.limit = None
        apply_overrides(cfg, data_settings)
    else:
        # read the tags the model learned (upos/xpos) unless told otherwise
        settings = {"data.tag_column": bundle.cfg.data.tag_column, **data_settings}
        cfg = build_config(task=bundle.cfg.task, data=data, settings=settings)
        cfg.train.seed = bundle.cfg.train.seed
    source = cfg.data.source
    if source is None and not cfg.data.source_file:
        raise SeqlabError("no data given: pass --data with a dataset name or a file path")
    task = make_task(cfg)
    splits = task.load_splits()
    if data is not None and Path(data).exists() and len(splits) <= 2 and "test" not in splits:
        # a single file (train + carved validation): all of it is test data
        from seqlab.data.ondisk import FileSplit, whole_file

        if isinstance(splits.get("train"), FileSplit):
            return whole_file(splits["train"])
        return [ex for part in splits.values() for ex in part]
    if split not in splits:
        raise SeqlabError(f"{source}: has no split {split!r}; splits are: {', '.join(splits)}")
    return splits[split]


def test(
    directory: str | Path, *, data: str | None = None, split: str = "test", out_dir: str | Path | None = None,
    classifier: str | Path | None = None, runtime: str = "torch", **data_settings
) -> dict[str, Any]:
    """Metrics of a trained bundle on a split of `data` (default: the data it was trained on).
    A conditional generator is also sampled (100 texts per condition at temperature 0.8):
    novelty against the training texts and, given a `classifier` bundle trained on the same
    split, conditioning accuracy. `runtime="onnx"` computes the model's outputs with its
    export (seqlab export) in onnxruntime; the data are still read and scored by the
    bundle's task, so torch is imported (unlike predict, generate and translate)."""
    if runtime not in ("torch", "onnx"):
        raise SeqlabError(f"runtime must be torch or onnx (got {runtime!r})")
    exported = None
    if runtime == "onnx":
        from seqlab import onnx

        exported = onnx.load(directory)  # first: a missing or stale export is the error to see
        if classifier:
            raise SeqlabError("--classifier samples with the torch model: leave out --runtime onnx")
    # the export's copy of the bundle's JSON files gives the task that reads and scores the data
    bundle = load_bundle(exported.directory, weights=False) if exported is not None else load_bundle(directory)
    if out_dir is not None:
        from seqlab.runfolder import check_out

        check_out(Path(out_dir), overwrite=True, flag="--plots")  # a folder we can write into
    examples = evaluation_split(bundle, data, split, **data_settings)
    if data is None and split in ("train", "validation") and bundle.metrics.get("refit"):
        print(f"seqlab: note: this model was refit on its training and validation splits: its {split} score is "
              "not a held-out one (metrics.json keeps the validation score from before the refit)",
              file=sys.stderr, flush=True)
    plots = Path(out_dir) if out_dir else None
    if exported is not None:
        from seqlab.data.ondisk import FileSplit, examples_of

        if isinstance(examples, FileSplit):  # the export reads texts: this split comes into memory
            examples = list(examples_of(examples.source, examples.keep()))
        metrics = exported.evaluate(examples, bundle.task, plots)
        metrics["runtime"] = exported.describe()["runtime"]
    else:
        metrics = bundle.evaluate(examples, plots)
    if bundle.supports("sample") and exported is None:
        from seqlab.tasks.generate import generation_metrics

        train = {ex["text"] for ex in evaluation_split(bundle, data, "train", **data_settings)}
        judge = load_bundle(classifier) if classifier else None
        if judge is not None and not judge.supports("probe"):
            raise SeqlabError(f"{classifier}: a {judge.cfg.task} model, not a classifier")
        unjudged = [c for c in bundle.task.conditions if judge is not None and c not in judge.labels]
        if unjudged:
            raise SeqlabError(f"{classifier}: its labels ({', '.join(judge.labels[:8])}) do not include the "
                              f"generator's condition {unjudged[0]!r}; judge with a classifier trained on the "
                              "generator's data (--label-column = its --condition-column)")
        metrics.update(generation_metrics(bundle, train, judge))
    elif classifier:
        raise SeqlabError("--classifier judges a conditional generator's samples (--task generate models)")
    return {"model": str(directory), "data": data or bundle.cfg.data.source, "split": split,
            "headline": list(bundle.task.headline_metrics), "metrics": metrics}
