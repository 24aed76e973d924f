"""Scaling out is the same run: --batch-size is the global batch, so N DDP processes (Lightning's
engine, gloo on CPU) or two torchrun "nodes" on this machine log the validation losses of one
process, step for step (dropout 0: the ranks' masks are drawn independently, so with dropout
the runs would differ by chance, not by recipe)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seqlab.cli import main

# no dropout, so the one- and two-process runs draw no random numbers that differ
EXACT = ["--dropout", "0", "--word-dropout", "0", "--seed", "3", "--no-progress"]
# 290 * 0.9 = 261 training examples = 10 batches of 26 + 1: on 2 ranks one of them steps on a
# ghost (weighted 0) once per epoch; 29 validation examples = 26 + 3, split 2 + 1
# one training run each (a streamed file is never refit; test_two_processes_refit_together refits)
GRU = ["--family", "gru", "--embed-dim", "16", "--hidden-dim", "16", "--batch-size", "26", "--refit", "no", *EXACT]
CLASSIFY = ["--data", "demo", "--limit", "290", *GRU]


def _seqlab(*argv: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqlab", *argv], capture_output=True, text=True, timeout=timeout)


def _ddp(*argv: str) -> subprocess.CompletedProcess:
    proc = _seqlab("train", *argv, "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def val_losses(out: Path) -> list[tuple[int, float]]:
    """(step, val_loss) per epoch from the run's metrics.csv."""
    rows = csv.DictReader(open(out / "logs" / "metrics.csv", encoding="utf-8"))
    return [(int(r["step"]), float(r["val_loss"])) for r in rows if r.get("val_loss")]


def epochs_run(out: Path) -> int:
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))["epochs"]


def assert_same_run(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [s for s, _ in got] == [s for s, _ in want]  # as many steps per epoch as one process
    for (_, a), (_, b) in zip(got, want):
        assert abs(a - b) <= 1e-3 * abs(b), (got, want)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> list[tuple[int, float]]:
    out = tmp_path_factory.mktemp("one") / "m"
    assert main(["train", *CLASSIFY, "--epochs", "3", "--out", str(out)]) == 0
    return val_losses(out)


def test_two_processes_train_the_one_process_run_and_resume_it(tmp_path, one_process):
    """classify (GRU, the family's EMA on): 2 epochs on 2 ranks, then --resume to 3 on 2 ranks,
    equals 3 epochs of one process; only rank 0 writes (one bundle, one log)."""
    out = tmp_path / "m"
    _ddp(*CLASSIFY, "--epochs", "2", "--out", str(out))
    assert (out / "model.safetensors").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    _ddp(*CLASSIFY, "--epochs", "3", "--out", str(out), "--resume")
    assert epochs_run(out) == 3
    assert_same_run(val_losses(out), one_process)
    assert len(one_process) == 3 and one_process[-1][1] < one_process[0][1]  # it learned


def _write_csv(path: Path, examples: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows([ex["text"], ex["label"]] for ex in examples)
    return path


def encoded_corpora(cache: Path) -> list[Path]:
    """The corpora built in `cache` (data/ondisk.py), checked whole: no temp folder left."""
    folders = [p for p in (cache / "encoded").iterdir() if p.is_dir()]
    assert not [p for p in folders if p.name.startswith(".")], folders
    assert all((p / "header.json").is_file() for p in folders)
    return folders


def assert_same_model(a: Path, b: Path, texts: list[str]) -> None:
    """Two bundles' final outputs: the same predictions, probabilities within float noise."""
    import numpy as np

    from seqlab.api import load_bundle

    one, two = load_bundle(a), load_bundle(b)
    p, q = one.task.predict_proba(one.model, texts), two.task.predict_proba(two.model, texts)
    assert (p.argmax(1) == q.argmax(1)).all() and np.allclose(p, q, atol=1e-4)


def test_two_processes_on_disk_classify_like_one_in_memory(tmp_path, monkeypatch):
    """classify from a file kept on disk (--on-disk yes): 2 ranks, each reading its shares of the
    encoded index, train what one process trains from memory; rank 0 encodes the train and
    test files once (the other rank, started by Lightning afterwards, reuses them)."""
    from seqlab.data.builtin import make_corpus

    monkeypatch.setenv("SEQLAB_CACHE_DIR", str(tmp_path / "cache"))  # the ranks' environment too
    corpus = make_corpus(seed=0)
    train = _write_csv(tmp_path / "train.csv", corpus["train"][:290])  # 10 batches + 1: a ghost
    test = _write_csv(tmp_path / "test.csv", corpus["test"][:60])
    args = ["--data", str(train), "--test-data", str(test), *GRU, "--lr", "0.02", "--epochs", "3"]
    assert main(["train", *args, "--on-disk", "no", "--out", str(tmp_path / "one")]) == 0
    _ddp(*args, "--on-disk", "yes", "--out", str(tmp_path / "two"))
    assert len(encoded_corpora(tmp_path / "cache")) == 2
    one = val_losses(tmp_path / "one")
    assert_same_run(val_losses(tmp_path / "two"), one)
    assert one[-1][1] < 0.8 * one[0][1]  # it learned: the predictions compared below mean something
    mine, theirs = (json.loads((tmp_path / m / "metrics.json").read_text()) for m in ("one", "two"))
    for split in ("validation", "test"):
        assert theirs[split]["confusion_matrix"] == mine[split]["confusion_matrix"]
    assert_same_model(tmp_path / "one", tmp_path / "two", [ex["text"] for ex in corpus["test"][:60]])


@pytest.fixture(scope="module")
def tagging(tmp_path_factory, shared_data) -> tuple[list[str], Path]:
    """250 CoNLL-U sentences, and the one-process run on them (in memory): its flags and --out."""
    import gzip

    folder = tmp_path_factory.mktemp("tag")
    text = gzip.open(shared_data / "ud_english_ewt" / "en_ewt-ud-train.conllu.gz", "rt", encoding="utf-8").read()
    data = folder / "train.conllu"
    data.write_text("\n\n".join(text.split("\n\n")[:250]) + "\n\n", encoding="utf-8")
    args = ["--task", "tag", "--data", str(data), "--family", "gru", "--embed-dim", "16", "--hidden-dim", "16",
            "--char-filters", "8", "--char-dim", "8", "--batch-size", "24", "--epochs", "2", *EXACT]
    assert main(["train", *args, "--on-disk", "no", "--out", str(folder / "one")]) == 0
    return args, folder / "one"


@pytest.mark.parametrize("on_disk", ["no", "yes"])
def test_two_processes_tag_like_one(tmp_path, tagging, on_disk, monkeypatch):
    """tag (token-weighted loss: sentences of unequal length split across the ranks), read into
    memory or kept on disk (words, tags and spelled characters read from the encoded index)."""
    monkeypatch.setenv("SEQLAB_CACHE_DIR", str(tmp_path / "cache"))
    args, one = tagging
    _ddp(*args, "--on-disk", on_disk, "--out", str(tmp_path / "two"))
    assert_same_run(val_losses(tmp_path / "two"), val_losses(one))
    mine, theirs = (json.loads((m / "metrics.json").read_text()) for m in (one, tmp_path / "two"))
    assert theirs["validation"]["accuracy"] == mine["validation"]["accuracy"]
    if on_disk == "yes":
        assert len(encoded_corpora(tmp_path / "cache")) == 1


@pytest.mark.slow
def test_two_processes_lm_like_one(tmp_path, shared_data):
    """lm: each rank reads its share of the one-process rows (5 rows: 3 + 2)."""
    data = tmp_path / "shk.txt"
    data.write_text((shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:20_000])
    args = ["--task", "lm", "--data", str(data), "--family", "gru", "--embed-dim", "16", "--hidden-dim", "32",
            "--batch-size", "5", "--seq-len", "32", "--epochs", "2", *EXACT]
    assert main(["train", *args, "--out", str(tmp_path / "one")]) == 0
    _ddp(*args, "--out", str(tmp_path / "two"))
    assert_same_run(val_losses(tmp_path / "two"), val_losses(tmp_path / "one"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_torchrun_nodes_on_one_machine(tmp_path, one_process):
    """`torchrun --nnodes 2` twice on 127.0.0.1 with --num-nodes 2: the same run again; each
    "node" has its own --out and only node 0 writes a bundle or checkpoint."""
    port = str(_free_port())
    procs = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--node-rank", str(node), "--master-addr", "127.0.0.1", "--master-port", port,
               "-m", "seqlab", "train", *CLASSIFY, "--epochs", "2", "--out", str(tmp_path / f"node{node}"),
               "--accelerator", "cpu", "--num-nodes", "2", "--devices", "1", "--strategy", "ddp"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "OMP_NUM_THREADS": "1"}))
    results = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    assert_same_run(val_losses(tmp_path / "node0"), one_process[:2])
    assert (tmp_path / "node0" / "config.json").is_file()
    written = [f for f in (tmp_path / "node1").rglob("*") if f.is_file()] if (tmp_path / "node1").exists() else []
    assert not [f for f in written if f.suffix in (".json", ".safetensors", ".ckpt", ".csv")], written


def test_early_stopping_stops_every_rank_at_the_same_epoch(tmp_path):
    """A run that cannot improve (lr ~0) stops after --patience 1 epoch on both ranks: a rank
    left training alone would hang the other in DDP, so finishing at all is the proof."""
    _ddp(*CLASSIFY, "--lr", "1e-12", "--patience", "1", "--epochs", "5", "--out", str(tmp_path / "m"))
    assert epochs_run(tmp_path / "m") == 2


def test_two_processes_refit_together(tmp_path):
    """--refit on 2 ranks (the demo's 290 training + 290 validation examples): rank 0 reads the chosen epoch count from best.ckpt and every rank
    trains the refit for it (a rank that trained a different count would hang the other)."""
    out = tmp_path / "m"
    _ddp(*CLASSIFY, "--epochs", "2", "--refit", "yes", "--out", str(out))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["refit"]["examples"] == 580 and metrics["epochs"] == 2 >= metrics["refit"]["epochs"] >= 1
