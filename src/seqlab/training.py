"""Training: one generic LightningModule driven by the task, and the Trainer set-up.

This is the only module that imports Lightning, so prediction and serving start fast.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from torch import nn
from torchmetrics import MeanMetric

from seqlab.config import TrainConfig
from seqlab.data.batching import GHOST
from seqlab.errors import SeqlabError
from seqlab.tasks.base import Task, tokens_in


def _quiet_lightning() -> None:
    """Lightning announces hardware and tips at INFO; people see our progress bar instead."""
    if not os.environ.get("SEQLAB_VERBOSE"):
        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)


class SeqlabModule(L.LightningModule):
    """Shared train/val/test steps; the task supplies loss and metrics."""

    def __init__(self, task: Task, model: nn.Module, train_cfg: TrainConfig, identity: dict | None = None):
        super().__init__()
        self.identity = identity or {}
        self.task = task
        self.model = model
        self.train_cfg = train_cfg
        self.val_metrics = task.make_metrics()
        # the validation loss as sum / count over every rank's examples (torchmetrics syncs
        # the weighted sums), so N processes report what one process reports
        self.val_loss = MeanMetric()
        # what each mode's last batch carried into the next (the lm's recurrent state):
        # validation keeps its own, so it never disturbs the training pass
        self._carry: dict[str, Any] = {}

    def on_train_batch_start(self, batch, batch_idx) -> None:
        # Randomness (dropout) depends only on (seed, epoch, rank): a run resumed from an epoch
        # checkpoint continues exactly as the uninterrupted run would have; ranks draw
        # independent masks (their examples differ, so equal masks would correlate them).
        if batch_idx == 0:
            torch.manual_seed(self.train_cfg.seed * 100_003 + self.current_epoch + 7_919 * self.global_rank)

    def on_train_start(self) -> None:
        self._start = time.perf_counter()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # what run this is (task, family, data), so --resume can name a mismatch in one line
        checkpoint["seqlab"] = dict(self.identity)

    def _elapsed(self) -> float:
        """Seconds since training started: the CSV log's wall-time axis (loss vs. time)."""
        return time.perf_counter() - getattr(self, "_start", time.perf_counter())

    def _step(self, mode: str, batch):
        out = self.task.step(self.model, batch, self._carry.get(mode))
        self._carry[mode] = out.state
        return out

    def training_step(self, batch, batch_idx):
        loss = self._step("train", batch).loss
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["lengths"]))
        self.log("elapsed_s", self._elapsed(), batch_size=len(batch["lengths"]))
        world = self.trainer.world_size
        if world > 1:
            # DDP averages the W ranks' gradients; each rank's share of the global batch
            # weighs its count of loss terms over the global count, so the average is the
            # gradient of the one-process batch mean (uneven shares and ghosts included)
            count = self.task.loss_count(batch).float()
            total = self.trainer.strategy.reduce(count.clone(), reduce_op="sum")
            loss = loss * (count * world / total.clamp(min=1))
        return loss

    def validation_step(self, batch, batch_idx):
        if batch.get(GHOST):  # a rank's empty share of the last batch: counts for nothing
            return
        out = self._step("eval", batch)  # one forward pass: the loss and the metrics' outputs
        self.val_loss.update(out.loss.detach().float(), weight=self.task.loss_count(batch))
        self.log("val_loss", self.val_loss, prog_bar=True, batch_size=len(batch["lengths"]))
        self.task.update_metrics(self.val_metrics, out, batch)

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.log_dict({f"val_{k}": v for k, v in values.items()}, prog_bar=True)
        self.log("elapsed_s", self._elapsed())
        self.val_metrics.reset()

    def configure_optimizers(self):
        params = list(self.model.parameters())
        # The fused kernel updates each tensor in one pass instead of ~10: on CPU at 1 thread
        # Adam's step over an 11M-parameter table (bow with 2**16 bigram buckets) takes 43 ms
        # instead of 203 ms (a one-tensor timing, issue 14; a CR 3-fold job of that bow recipe went
        # from 155 s to 95 s, same accuracy). Same update rule; other devices (mps, xla) keep the
        # reference implementation.
        fused = bool(params) and all(p.device.type in ("cpu", "cuda") for p in params)
        optimizer = torch.optim.Adam(
            params, lr=self.train_cfg.lr, weight_decay=self.train_cfg.weight_decay, fused=fused or None
        )
        decay = self.train_cfg.lr_decay
        if decay == 1.0:
            return optimizer
        # per epoch, as char-rnn does: deterministic, so resumed runs stay exact
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(optimizer, decay)}


class Throughput(Callback):
    """Real training tokens over the wall time of the training batches, data loading between
    them included and validation excluded: the figure a plain PyTorch loop would report."""

    def __init__(self):
        self.tokens = 0
        self.seconds = 0.0
        self.epoch_seconds: list[float] = []
        self._first = self._last = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            self._first = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._last = time.perf_counter()
        self.tokens += 0 if batch.get(GHOST) else tokens_in(batch)

    def on_validation_start(self, trainer, pl_module):
        self._close_epoch()

    def on_train_epoch_end(self, trainer, pl_module):
        self._close_epoch()

    def _close_epoch(self):
        if self._last > self._first:
            self.epoch_seconds.append(self._last - self._first)
            self.seconds += self._last - self._first
            self._first = self._last = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


@dataclass
class FitResult:
    best_checkpoint: str | None
    epochs_run: int
    best_epochs: int  # epochs trained when the kept weights were saved (the last, without validation)
    train_seconds: float
    tokens_per_s: float
    seconds_per_epoch: float
    log_dir: Path


def _checkpoint(task: Task, ckpt_dir: Path) -> ModelCheckpoint:
    """best.ckpt by the task's monitored metric."""
    monitor, mode = task.monitor
    return ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode=mode, save_top_k=1,
                           enable_version_counter=False)


def _last_checkpoints(cfg: TrainConfig, ckpt_dir: Path) -> list[Callback]:
    """last.ckpt at the end of every epoch, improved or not (Lightning's save_last writes it only
    when the monitored checkpoint is saved), and every --checkpoint-every minutes within one.
    Lightning writes checkpoints atomically (temp file + move); the run folder is ours alone
    (seqlab.runfolder), so no versioned last-v1.ckpt ever appears beside it."""
    callbacks: list[Callback] = [ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1,
                                                 enable_version_counter=False)]
    if cfg.checkpoint_every:
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1,
                                         enable_version_counter=False, save_on_train_epoch_end=False,
                                         train_time_interval=timedelta(minutes=cfg.checkpoint_every)))
    return callbacks


class _StderrBar(TQDMProgressBar):
    """Lightning's bars, written to stderr: stdout holds only the verb's result (--json)."""

    def init_train_tqdm(self):
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_train_tqdm()

    def init_validation_tqdm(self):
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_validation_tqdm()

    def init_sanity_tqdm(self):
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_sanity_tqdm()


class _EpochLines(Callback):
    """Progress when stderr is not a terminal (a log file, a pipe): one line per epoch."""

    def on_train_epoch_end(self, trainer, pl_module):  # after the epoch's validation
        if not trainer.is_global_zero:
            return
        shown = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("train_", "val_"))}
        text = "  ".join(f"{k} {v:.4f}" for k, v in sorted(shown.items()))
        print(f"seqlab: epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {text}", file=sys.stderr, flush=True)


# A plain function called after each epoch's validation with (epoch from 0, the logged metrics:
# val_*, train_*): how code that must not import Lightning watches a run (seqlab.tune's pruning).
EpochHook = Callable[[int, dict[str, float]], None]


class _EpochHooks(Callback):
    """Calls the run's epoch hooks on every rank (a hook that raises stops each rank alike).
    An exception a hook raises (optuna.TrialPruned) ends the run and propagates out of `fit`."""

    def __init__(self, hooks: Sequence[EpochHook]):
        self.hooks = list(hooks)

    def on_train_epoch_end(self, trainer, pl_module):  # after the epoch's validation
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("train_", "val_"))}
        for hook in self.hooks:
            hook(trainer.current_epoch, metrics)


def _progress(cfg: TrainConfig) -> list[Callback]:
    if not cfg.progress:
        return []
    return [_StderrBar()] if sys.stderr.isatty() else [_EpochLines()]


class _AppendingWriter(ExperimentWriter):
    """metrics.csv is continued on --resume (Lightning's writer deletes it): the rows the
    checkpoint already covers are kept, those of the lost partial epoch are dropped."""

    keep_below_step: int | None = None

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self.keep_below_step is None or not path.is_file():
            path.unlink(missing_ok=True)
            return
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            keys = list(reader.fieldnames or [])
            rows = [r for r in reader if r.get("step", "").isdigit() and int(r["step"]) < self.keep_below_step]
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(keys)


class _CSVLogger(CSVLogger):
    def __init__(self, *args, keep_below_step: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._keep_below_step = keep_below_step

    @property
    @rank_zero_experiment  # as Lightning's own: other ranks get a dummy, only rank 0 writes the log
    def experiment(self):
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            writer = _AppendingWriter.__new__(_AppendingWriter)
            writer.keep_below_step = self._keep_below_step
            writer.__init__(log_dir=self.log_dir)
            self._experiment = writer
        return self._experiment


def _training_callbacks(task: Task, cfg: TrainConfig, validated: bool) -> list[Callback]:
    """The weight average and early stopping, when the settings ask for them (early stopping
    only when there is a validation split to watch)."""
    monitor, mode = task.monitor
    callbacks: list[Callback] = []
    if cfg.ema:
        callbacks.append(ema_callback(cfg.ema))
    if validated and cfg.patience and cfg.patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=cfg.patience))
    return callbacks


def _trainer(cfg: TrainConfig, callbacks: list[Callback], logger) -> L.Trainer:
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        return _make_trainer(cfg, callbacks, logger)
    except (MisconfigurationException, ValueError, RuntimeError) as exc:  # e.g. --accelerator gpu, no GPU
        message = " ".join(str(exc).split())
        raise SeqlabError(f"cannot train with --accelerator {cfg.accelerator} --devices {cfg.devices} --strategy "
                          f"{cfg.strategy} --precision {cfg.precision}: {message}") from None


def _make_trainer(cfg: TrainConfig, callbacks: list[Callback], logger) -> L.Trainer:
    return L.Trainer(
        max_epochs=cfg.epochs,
        # a time-limited run stops after a validation, so the best checkpoint is still written
        max_time=timedelta(minutes=cfg.max_minutes) if cfg.max_minutes else None,
        accelerator=cfg.accelerator,
        devices=_devices(str(cfg.devices)),
        strategy=cfg.strategy,
        num_nodes=cfg.num_nodes,
        precision=cfg.precision,
        gradient_clip_val=cfg.grad_clip or None,
        callbacks=callbacks,
        logger=logger,
        enable_progress_bar=any(isinstance(c, TQDMProgressBar) for c in callbacks),
        enable_model_summary=False,
        # our bucket sampler shards batches across ranks itself
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
    )


def _devices(value: str):
    return int(value) if value.isdigit() else value


def fit(
    task: Task,
    model: nn.Module,
    train_items: list[dict],
    val_items: list[dict] | None,
    cfg: TrainConfig,
    out_dir: Path,
    *,
    resume: str | None = None,
    epoch_hooks: Sequence[EpochHook] = (),
) -> FitResult:
    """Train with Lightning; afterwards `model` holds the best validation weights (without
    `val_items`: the weights after the last of cfg.epochs, as a refit on all the data wants).
    `epoch_hooks` are called after each epoch's validation (EpochHook)."""
    _quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    ckpt_dir = out_dir / "checkpoints"
    run = task.cfg
    identity = {"task": run.task, "family": run.model.family, "data": run.data.source or run.data.source_file}
    module = SeqlabModule(task, model, cfg, identity)
    ckpt_path = _resume_path(resume, ckpt_dir)
    resumed_step = _check_resume(ckpt_path, identity, module) if ckpt_path else None
    checkpoint = _checkpoint(task, ckpt_dir) if val_items is not None else None
    throughput = Throughput()
    logger = _CSVLogger(str(out_dir), name="logs", version="", keep_below_step=resumed_step)
    callbacks = [*_last_checkpoints(cfg, ckpt_dir), throughput, *_training_callbacks(task, cfg, checkpoint is not None)]
    if checkpoint is not None:
        callbacks.insert(0, checkpoint)
    if epoch_hooks:
        callbacks.append(_EpochHooks(epoch_hooks))
    trainer = _trainer(cfg, [*callbacks, *_progress(cfg)], logger)
    start = time.perf_counter()
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        trainer.fit(
            module,
            train_dataloaders=task.loader(train_items, shuffle=True),
            val_dataloaders=task.loader(val_items, shuffle=False) if val_items is not None else None,
            ckpt_path=ckpt_path,
        )
    except MisconfigurationException as exc:  # e.g. resuming past --epochs
        raise SeqlabError(f"cannot resume from {ckpt_path}: {str(exc).strip()}") from None
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into exit(1) after a graceful stop
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None
        raise
    train_seconds = time.perf_counter() - start
    best = (checkpoint.best_model_path or None) if checkpoint is not None else None
    best_epochs = trainer.current_epoch
    if best and trainer.is_global_zero:
        saved = torch.load(best, map_location="cpu", weights_only=True)
        module.load_state_dict(saved["state_dict"])
        best_epochs = saved["epoch"] + 1  # Lightning stores the 0-based epoch it was saved in
    epochs = throughput.epoch_seconds
    tokens_per_s = throughput.tokens_per_s
    if trainer.world_size > 1:  # every rank's tokens over this rank's time: the run's throughput
        _destroy_process_group_at_exit()
        best_epochs = trainer.strategy.broadcast(best_epochs, src=0)  # rank 0 read it from best.ckpt
        rate = torch.tensor(tokens_per_s, dtype=torch.float64, device=trainer.strategy.root_device)
        tokens_per_s = float(trainer.strategy.reduce(rate, reduce_op="sum"))
    return FitResult(
        best_checkpoint=best,
        epochs_run=trainer.current_epoch,
        best_epochs=best_epochs,
        train_seconds=train_seconds,
        tokens_per_s=tokens_per_s,
        seconds_per_epoch=sum(epochs) / len(epochs) if epochs else 0.0,
        log_dir=Path(logger.log_dir),
    )


@functools.cache  # registered once per process, however many fits it runs
def _destroy_process_group_at_exit() -> None:
    """Lightning leaves the process group open after fit (a later fit reuses it). Left to the
    interpreter's own shutdown, gloo's worker threads can outlive it and abort the process
    ("terminate called without an active exception", SIGABRT), and Lightning then kills every
    rank, rank 0 too, while it is still writing the bundle (pytorch/pytorch#190489). So the
    group is destroyed at exit, while the interpreter is whole."""
    import atexit

    def destroy() -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            with contextlib.suppress(Exception):  # exiting anyway: a failed teardown must not mask the result
                dist.destroy_process_group()

    atexit.register(destroy)


def ema_decay(decay: float, updates: torch.Tensor | int) -> torch.Tensor:
    """The decay used at the n-th update: min(decay, (1 + n) / (10 + n)), as TensorFlow's
    ExponentialMovingAverage does with num_updates, so the first (random-ish) weights are
    forgotten quickly instead of keeping decay**steps of the final average. Tensor math, so
    the count stays on the device (no GPU sync per parameter)."""
    n = torch.as_tensor(updates, dtype=torch.float32)
    return ((1 + n) / (10 + n)).clamp(max=decay)


def ema_callback(decay: float) -> Callback:
    """Lightning's WeightAveraging with an exponential moving average: validation, the
    checkpoints (hence the best model and the bundle) see the averaged weights, and a resumed
    run restores the average (and its update count) too."""
    from lightning.pytorch.callbacks import WeightAveraging

    def average(averaged: torch.Tensor, current: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        d = ema_decay(decay, updates).to(averaged.dtype)
        return d * averaged + (1 - d) * current

    return WeightAveraging(avg_fn=average)


def _resume_path(resume: str | None, ckpt_dir: Path) -> str | None:
    """`--resume` alone means the run's own last checkpoint; a path names one."""
    if not resume:
        return None
    path = ckpt_dir / "last.ckpt" if resume == "last" else Path(resume)
    if not path.is_file():
        raise SeqlabError(f"{path}: no checkpoint to resume from; train without --resume first")
    return str(path)


def _check_resume(path: str, identity: dict, module: nn.Module) -> int:
    """One line when `path` cannot continue this run: not a checkpoint, another task, family or
    data set, or weights of another shape. Loaded weights-only: a malicious pickle runs no
    code. Returns the checkpoint's global step."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise SeqlabError(f"{path}: not a seqlab training checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise SeqlabError(f"{path}: not a seqlab training checkpoint (no state_dict)")
    theirs = ckpt.get("seqlab") or {}
    for key, flag in (("task", "--task"), ("family", "--family"), ("data", "--data")):
        if key in theirs and theirs[key] != identity.get(key):
            raise SeqlabError(f"{path}: a checkpoint of {key} {theirs[key]!r}, but this run's {key} is "
                              f"{identity.get(key)!r}; resume with the same {flag}, or train without --resume "
                              "(--overwrite to start over)")
    mine = module.state_dict()
    state = ckpt["state_dict"]
    for name in sorted(set(mine) | set(state)):
        a, b = state.get(name), mine.get(name)
        if a is None or b is None or tuple(a.shape) != tuple(b.shape):
            got = "missing" if a is None else tuple(a.shape)
            want = "absent" if b is None else tuple(b.shape)
            raise SeqlabError(f"{path}: the checkpoint's weights do not fit this model ({name}: checkpoint "
                              f"{got}, this run {want}); resume with the settings it was trained with")
    return int(ckpt.get("global_step", 0))
