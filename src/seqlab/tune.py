"""`seqlab tune`: hyperparameter search with Optuna over the ranges the run's settings declare.

    report = tune(out="runs/cr-tune", data="cr", family="cnn", budget_minutes=15)
    report["best"]["value"]        # the best trial's validation accuracy

What is searched: `config.search_space(task, family)`, the `search=` ranges declared on the
settings' own fields (shared model/training settings once, each family's beside its settings),
less every setting the user fixed with a flag, a keyword or `--config`.

How: a TPE sampler seeded with `train.seed` (plus the number of trials a resumed study already
holds, so a resumed search does not replay its first random draws), and a median pruner fed
each trial's monitored validation figure after every epoch (a training.EpochHook that calls
trial.report and raises optuna.TrialPruned). Trials see the train and validation splits only;
the test split is never read until the final bundle is trained. The first trial of a new study
is the default recipe (what `seqlab train` would run), so the best trial is never worse than
the default on validation. Every trial trains with the same `train.seed`.

Budget: no trial starts once `budget_minutes` have passed, and each trial's `train.max_minutes`
is at most what is left of the budget; a trial the budget cuts short is recorded as pruned
(`cut` in the trials table), so an unfinished trial is never the best.
The final bundle is trained after the search, outside the budget. `trials` caps the trials of
this call (a resumed study adds to its earlier ones).

The run folder OUT (locked like any run folder):
    study.db          the Optuna study (SQLite); `resume=True` continues it
    trials.csv        every trial: number, state, validation figure, epochs, seconds, settings
    best.yaml         the best trial's full config: `seqlab train --config OUT/best.yaml --out ...`
    final/            the bundle trained with best.yaml on the same splits (test scored if any)
    tune.md, tune.json, history.png, importance.png     the report
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from seqlab.config import (
    RunConfig,
    Search,
    apply_overrides,
    as_choice,
    build_config,
    check_settings,
    load_config_file,
    resolve_setting_name,
    search_space,
)
from seqlab.errors import SeqlabError
from seqlab.files import atomic_write_json, atomic_write_text

log = logging.getLogger("seqlab")

STUDY_FILE = "study.db"
STUDY_NAME = "seqlab"
# TPE's first trials are random draws; Optuna's 10 would use most of a 15-minute budget
STARTUP_TRIALS = 5
# the median pruner compares a trial with the completed ones from its second epoch on (a
# first epoch says little: EMA and word dropout start slow), once 3 trials have finished
PRUNE_STARTUP_TRIALS = 3
PRUNE_WARMUP_EPOCHS = 1
OUTPUTS = (STUDY_FILE, "trials.csv", "best.yaml", "tune.md", "tune.json", "history.png", "importance.png")


def optuna_module():
    """Optuna, or a one-line error naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise SeqlabError("seqlab tune needs Optuna: pip install 'seqlab[tune]'") from None
    if not os.environ.get("SEQLAB_VERBOSE"):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def tune(
    *,
    out: str | Path,
    budget_minutes: float,
    task: str = "classify",
    data: str | None = None,
    family: str | None = None,
    trials: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    config: str | Path | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Search the family's settings on the validation split for `budget_minutes`, write the
    best config (OUT/best.yaml), the final bundle (OUT/final) and the report; returns the
    report (also OUT/tune.json). Settings given here or in `config` are fixed, not searched."""
    check_budget(budget_minutes, trials)
    cfg = build_config(task=task, data=data, family=family, config_file=config, settings=settings)
    fixed = {resolve_setting_name(k) for k, v in settings.items() if v is not None}
    if config:
        fixed |= set(load_config_file(config))
    return tune_config(cfg, Path(out), budget_minutes=budget_minutes, trials=trials, resume=resume,
                       overwrite=overwrite, fixed=fixed)


def check_budget(budget_minutes: float, trials: int | None) -> None:
    if not isinstance(budget_minutes, int | float) or not math.isfinite(budget_minutes) or budget_minutes <= 0:
        raise SeqlabError(f"--budget-minutes must be above 0 (got {budget_minutes}); e.g. 15")
    if trials is not None and trials < 1:
        raise SeqlabError(f"--trials must be at least 1 (got {trials}); leave it out to run until the budget is spent")


def tune_config(
    cfg: RunConfig,
    out: Path,
    *,
    budget_minutes: float,
    trials: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    fixed: set[str] | frozenset[str] = frozenset(),
    splits: dict[str, list] | None = None,
    pruner: Any = None,
) -> dict[str, Any]:
    """`tune` on a built config. `splits`: the data already read (else cfg.data is read);
    only train and validation reach the trials. `pruner`: an Optuna pruner (default: the
    median pruner above)."""
    from seqlab.runfolder import absolute_sources, claim

    check_budget(budget_minutes, trials)
    check_settings(cfg)
    space = tuned_space(cfg, fixed)
    if not space:
        raise SeqlabError(f"nothing to tune: every setting the {cfg.model.family} family searches is fixed by a "
                          "flag or --config; leave some out")
    optuna = optuna_module()
    absolute_sources(cfg)
    with claim(out, overwrite=overwrite, resume=resume):
        db = out / STUDY_FILE
        if db.exists() and not (resume or overwrite):
            raise SeqlabError(f"--out {out}: holds a tuning study ({db}); pass --resume to continue it, "
                              "--overwrite to start over, or choose another --out")
        if resume and not db.exists():
            raise SeqlabError(f"--out {out}: no study to resume ({db} not found); run without --resume first")
        if overwrite and not resume:
            _clear(out)
        return _search(optuna, cfg, out, space, budget_minutes, trials, splits, pruner)


def tuned_space(cfg: RunConfig, fixed: set[str] | frozenset[str]) -> dict[str, Search]:
    """The run's search space less the `fixed` settings (and, with pretrained vectors, the
    embedding size, which is theirs)."""
    if cfg.model.embeddings:
        fixed = {*fixed, "model.embed_dim"}
    return {k: v for k, v in search_space(cfg.task, cfg.model.family).items() if k not in fixed}


def _clear(out: Path) -> None:
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
    for name in ("final", "trials"):
        shutil.rmtree(out / name, ignore_errors=True)


def _search(optuna, cfg: RunConfig, out: Path, space: dict[str, Search], budget_minutes: float,
            n_trials: int | None, splits: dict[str, list] | None, pruner: Any) -> dict[str, Any]:
    from seqlab.api import train_config
    from seqlab.tasks import make_task

    task = make_task(cfg)
    monitor, mode = task.monitor
    if splits is None:
        splits = task.load_splits()
    search_splits = {name: splits[name] for name in ("train", "validation")}  # never the test split
    identity = {"task": cfg.task, "family": cfg.model.family, "data": str(cfg.data.source or cfg.data.source_file),
                "monitor": monitor}
    study = optuna.create_study(
        study_name=STUDY_NAME, storage=f"sqlite:///{(out / STUDY_FILE).resolve()}", load_if_exists=True,
        direction="maximize" if mode == "max" else "minimize",
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP_TRIALS,
                                                     n_warmup_steps=PRUNE_WARMUP_EPOCHS),
    )
    earlier = len(study.trials)
    _check_identity(study, identity, out)
    study.sampler = optuna.samplers.TPESampler(seed=cfg.train.seed + earlier, n_startup_trials=STARTUP_TRIALS,
                                               multivariate=True)
    if not earlier:
        study.set_user_attr("seqlab", identity)
        default = {name: as_choice(_value(cfg, name)) for name, s in space.items() if s.contains(_value(cfg, name))}
        study.enqueue_trial(default, user_attrs={"default": True})
    deadline = time.monotonic() + 60 * budget_minutes

    def objective(trial) -> float:
        trial_cfg = RunConfig.from_dict(cfg.to_dict())
        apply_overrides(trial_cfg, {name: _suggest(trial, name, s) for name, s in space.items()})
        trial_cfg.train.progress = False
        trial_cfg.train.refit = "no"  # a trial is scored on validation, which a refit does not change
        left = max((deadline - time.monotonic()) / 60, 0.05)
        budget_limits = left < (cfg.train.max_minutes or math.inf)
        trial_cfg.train.max_minutes = min(left, cfg.train.max_minutes or left)
        reported: list[float] = []
        report = pruning_hook(optuna, trial, monitor, reported)
        folder = out / "trials" / f"{trial.number:04d}"
        start = time.perf_counter()
        try:
            bundle = train_config(trial_cfg, folder, splits=search_splits, overwrite=True, epoch_hooks=[report])
            validation = dict(bundle.metrics["validation"]) if bundle is not None else {}  # before the folder goes
        finally:
            trial.set_user_attr("epochs", len(reported))
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
            shutil.rmtree(folder, ignore_errors=True)
        if budget_limits and time.monotonic() >= deadline:
            # the budget ran out during training, which then stopped early: an unfinished
            # trial (pruned, at its last epoch's figure), never the best recipe
            trial.set_user_attr("cut", True)
            raise optuna.TrialPruned("the budget ran out during training")
        value = validation.get(monitor.removeprefix("val_"))
        if not isinstance(value, int | float):  # a metric evaluate() does not name alike: the best epoch's
            value = (max if mode == "max" else min)(reported) if reported else math.nan
        return float(value)

    def after(study, frozen) -> None:
        _write_trials(study, out)
        print(_trial_line(study, frozen, monitor, earlier, deadline, budget_minutes), file=sys.stderr, flush=True)

    study.optimize(objective, n_trials=n_trials, timeout=60 * budget_minutes, callbacks=[after],
                   gc_after_trial=True)
    _write_trials(study, out)
    try:
        (out / "trials").rmdir()
    except OSError:
        pass
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and math.isfinite(t.value)]
    if not done:
        counts = ", ".join(f"{sum(t.state == s for t in study.trials)} {s.name.lower()}"
                           for s in optuna.trial.TrialState if any(t.state == s for t in study.trials))
        raise SeqlabError(f"no trial finished within the budget ({counts}; see {out / 'trials.csv'}); raise "
                          "--budget-minutes or lower --epochs")
    best = study.best_trial
    best_cfg = RunConfig.from_dict(cfg.to_dict())
    apply_overrides(best_cfg, best.params)
    _write_best(best_cfg, best, monitor, out / "best.yaml")
    log.info("training the final bundle with trial %d's settings", best.number)
    final = train_config(best_cfg, out / "final", splits=splits, overwrite=True)
    return _report(optuna, study, best, cfg, out, monitor, mode, final, space)


def pruning_hook(optuna, trial, monitor: str, reported: list[float]):
    """A training.EpochHook for one trial: hands each epoch's `monitor` figure to the pruner
    (appending it to `reported`) and stops the run with optuna.TrialPruned when the pruner says
    the trial is worse than its peers were at that epoch."""

    def report(epoch: int, metrics: dict[str, float]) -> None:
        if monitor not in metrics:
            return
        reported.append(metrics[monitor])
        trial.report(metrics[monitor], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch + 1}: {monitor} {metrics[monitor]:.4f}")

    return report


def _value(cfg: RunConfig, name: str) -> Any:
    section, _, key = name.partition(".")
    return getattr(getattr(cfg, section), key)


def _suggest(trial, name: str, search: Search) -> Any:
    if search.choices is not None:
        return trial.suggest_categorical(name, list(search.choices))
    if search.integer:
        return trial.suggest_int(name, int(search.low), int(search.high), log=search.log)
    return trial.suggest_float(name, float(search.low), float(search.high), log=search.log)


def _check_identity(study, identity: dict[str, str], out: Path) -> None:
    theirs = study.user_attrs.get("seqlab")
    if not theirs:
        return
    for key, flag in (("task", "--task"), ("family", "--family"), ("data", "--data")):
        if theirs.get(key) != identity[key]:
            raise SeqlabError(f"--out {out}: its study tunes {key} {theirs.get(key)!r}, not {identity[key]!r}; "
                              f"resume with the same {flag}, or choose another --out")


def trial_rows(study) -> list[dict[str, Any]]:
    """One row per trial: number, state, value (the monitored validation figure; a pruned
    trial's is its last epoch's), epochs, seconds, default (the default recipe), settings."""
    rows = []
    for t in study.trials:
        value = t.value if t.value is not None else (t.intermediate_values[max(t.intermediate_values)]
                                                    if t.intermediate_values else None)
        rows.append({"number": t.number, "state": t.state.name, "value": value,
                     "epochs": t.user_attrs.get("epochs"), "seconds": t.user_attrs.get("seconds"),
                     "default": bool(t.user_attrs.get("default")), "cut": bool(t.user_attrs.get("cut")),
                     **t.params})
    return rows


def _write_trials(study, out: Path) -> None:
    rows = trial_rows(study)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "trials.csv", buffer.getvalue())


def _trial_line(study, frozen, monitor: str, earlier: int, deadline: float, budget: float) -> str:
    rows = {r["number"]: r for r in trial_rows(study)}
    row = rows[frozen.number]
    value = "" if row["value"] is None else f"{monitor} {row['value']:.4f}"
    what = "cut by the budget, " if row["cut"] else {"PRUNED": "pruned, ", "FAIL": "failed, "}.get(row["state"], "")
    used = budget - max(deadline - time.monotonic(), 0) / 60
    try:
        best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:
        best = "no trial finished yet"
    return (f"seqlab: trial {frozen.number} ({frozen.number - earlier + 1} this run): {what}{value}, "
            f"{row['epochs']} epochs, {row['seconds']} s; {best}; {used:.1f} of {budget:g} min")


def _write_best(cfg: RunConfig, best, monitor: str, path: Path) -> None:
    import yaml

    head = (f"# seqlab tune: trial {best.number}, validation {monitor.removeprefix('val_')} {best.value:.4f}\n"
            f"# train with: seqlab train --config {path} --out DIR\n")
    atomic_write_text(path, head + yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))


def _importances(optuna, study, seed: int) -> dict[str, float]:
    """fANOVA importance of each setting (Optuna's own implementation, no plotly); empty when
    the completed trials cannot support it (fewer than two, or nothing varied)."""
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2:
        return {}
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        log.info("no parameter importances: %s", exc)
        return {}


def _report(optuna, study, best, cfg: RunConfig, out: Path, monitor: str, mode: str, final, space) -> dict[str, Any]:
    from seqlab.report import format_table, plot_importances, plot_tuning_history

    rows = trial_rows(study)
    importances = _importances(optuna, study, cfg.train.seed)
    metric = monitor.removeprefix("val_")
    plot_tuning_history(rows, out / "history.png", f"validation {metric}", maximize=mode == "max")
    plot_importances(importances, out / "importance.png")
    default = next((r for r in rows if r["default"] and r["state"] == "COMPLETE"), None)
    states = {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL")}
    report: dict[str, Any] = {
        "task": cfg.task, "family": cfg.model.family, "data": cfg.data.source or cfg.data.source_file,
        "monitor": monitor, "trials": len(rows), "states": states,
        "searched": {name: _describe(s) for name, s in space.items()},
        "best": {"trial": best.number, "value": best.value, "params": best.params},
        "default": {"trial": default["number"], "value": default["value"]} if default else None,
        "importances": importances, "best_config": str(out / "best.yaml"),
        "final": str(out / "final") if final is not None else None,
        "final_metrics": {k: final.metrics.get(k) for k in ("validation", "test") if k in final.metrics}
        if final is not None else None,
    }
    atomic_write_json(out / "tune.json", report)
    columns = [(c, c) for c in rows[0]] if rows else []
    lines = [f"# seqlab tune: {report['data']} / {cfg.model.family}", "",
             f"{len(rows)} trials ({states['COMPLETE']} completed, {states['PRUNED']} pruned, {states['FAIL']} failed), "
             f"scored by validation {metric} only. Best: trial {best.number}, {best.value:.4f}"
             + (f"; the default recipe (trial {default['number']}): {default['value']:.4f}." if default else "."),
             "", f"Best config: `best.yaml` (`seqlab train --config {out / 'best.yaml'} --out DIR`); "
             f"final bundle: `final/`.", ""]
    if report["final_metrics"]:
        for split, values in report["final_metrics"].items():
            shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float))
            lines.append(f"- final bundle, {split}: {shown}")
        lines.append("")
    lines += ["![optimization history](history.png) ![parameter importance](importance.png)", "",
              "```", format_table([{k: _cell(v) for k, v in r.items()} for r in rows], columns), "```", ""]
    atomic_write_text(out / "tune.md", "\n".join(lines))
    return report


def _describe(search: Search) -> str:
    if search.choices is not None:
        return "one of " + ", ".join(map(str, search.choices))
    scale = " (log)" if search.log else ""
    return f"{search.low:g} to {search.high:g}{scale}"


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else ""
    return f"{value:.4g}" if isinstance(value, float) else ("" if value is None else value)
