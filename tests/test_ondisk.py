"""Classification data kept on disk (data/ondisk.py): the same split, vocabulary, batches and
hence the same model and predictions as the in-memory path, from token ids on disk."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from seqlab.api import load_bundle
from seqlab.cli import main
from seqlab.data import ondisk
from seqlab.data.builtin import make_corpus


def _write(path, examples):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows([ex["text"], ex["label"]] for ex in examples)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    corpus = make_corpus(seed=0)
    folder = tmp_path_factory.mktemp("ondisk")
    return _write(folder / "train.csv", corpus["train"][:600]), _write(folder / "test.csv", corpus["test"][:200])


def _curve(out):
    rows = csv.DictReader(open(out / "logs" / "metrics.csv", encoding="utf-8"))
    return [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss")]


def test_on_disk_training_equals_in_memory(tmp_path, files, monkeypatch):
    monkeypatch.setenv("SEQLAB_CACHE_DIR", str(tmp_path / "cache"))
    train, test = files
    args = ["train", "--data", str(train), "--test-data", str(test), "--family", "gru", "--embed-dim", "16",
            "--hidden-dim", "16", "--epochs", "2", "--limit", "500", "--no-progress",  # word dropout on
            "--refit", "no"]  # a file streamed from disk is never refit: nor is the one in memory here
    assert main([*args, "--on-disk", "no", "--out", str(tmp_path / "mem")]) == 0
    assert not (tmp_path / "cache" / "encoded").exists()
    assert main([*args, "--on-disk", "yes", "--out", str(tmp_path / "disk")]) == 0
    encoded = sorted((tmp_path / "cache" / "encoded").glob("*/ids.bin"))
    assert len(encoded) == 2  # train and test file, each encoded once
    assert _curve(tmp_path / "disk") == _curve(tmp_path / "mem")
    mem, disk = (json.loads((tmp_path / m / "metrics.json").read_text()) for m in ("mem", "disk"))
    assert disk["test"] == mem["test"] and disk["validation"] == mem["validation"]
    texts = [row["text"] for row in csv.DictReader(open(test, encoding="utf-8"))]
    a, b = (load_bundle(tmp_path / m) for m in ("mem", "disk"))
    assert np.array_equal(a.task.predict_proba(a.model, texts), b.task.predict_proba(b.model, texts))
    # `seqlab test --data FILE` scores a file kept on disk (all of it) as it scores one in memory
    from seqlab.api import test as test_bundle

    scored = test_bundle(tmp_path / "disk", data=str(test), on_disk="yes")
    assert scored == test_bundle(tmp_path / "disk", data=str(test), on_disk="no")
    assert scored["metrics"]["examples"] == 200


def test_auto_rule_and_the_encoded_index(tmp_path, files, monkeypatch):
    from seqlab.data.tokenize import TextTokenizer

    monkeypatch.setenv("SEQLAB_CACHE_DIR", str(tmp_path / "cache"))
    train, _ = files
    assert not ondisk.use_on_disk("auto", train) and ondisk.use_on_disk("yes", train)
    monkeypatch.setattr(ondisk, "AUTO_BYTES", train.stat().st_size - 1)
    assert ondisk.use_on_disk("auto", train) and not ondisk.use_on_disk("no", train)
    source = ondisk.DataFile(train, "table", "csv")
    rows = list(csv.DictReader(open(train, encoding="utf-8")))
    tok = TextTokenizer.fit(r["text"] for r in rows)

    def encode(examples):
        return [{"ids": ids} for ids in tok.encode_batch([ex["text"] for ex in examples], 5)]

    corpus = ondisk.EncodedCorpus.build(source, "cut5", encode, target="label", vocab_size=tok.vocab_size)
    again = ondisk.EncodedCorpus.build(source, "cut5", encode, target="label", vocab_size=tok.vocab_size)
    assert again.directory == corpus.directory  # built once, reused
    assert len(corpus) == len(rows) and corpus.offsets[-1] == sum(min(len(tok.encode(r["text"])), 5) for r in rows)
    split = ondisk.EncodedSplit(corpus, np.array([7, 3]), ["neg", "pos"])
    assert split[0]["ids"].tolist() == tok.encode(rows[7]["text"])[:5]
    assert split.gold() == [rows[7]["label"], rows[3]["label"]] and split.lengths.tolist() == [
        len(split[0]["ids"]), len(split[1]["ids"])]


def test_tagging_on_disk_equals_in_memory(tmp_path, shared_data, monkeypatch):
    """CoNLL-U kept on disk (words, tags and spelled characters): the same model as in memory."""
    import gzip

    monkeypatch.setenv("SEQLAB_CACHE_DIR", str(tmp_path / "cache"))
    text = gzip.open(shared_data / "ud_english_ewt" / "en_ewt-ud-train.conllu.gz", "rt", encoding="utf-8").read()
    data = tmp_path / "train.conllu"
    data.write_text("\n\n".join(text.split("\n\n")[:300]) + "\n\n", encoding="utf-8")
    args = ["train", "--task", "tag", "--data", str(data), "--family", "gru", "--embed-dim", "16",
            "--hidden-dim", "16", "--char-filters", "8", "--char-dim", "8", "--epochs", "2", "--max-length", "20",
            "--no-progress"]  # --max-length cuts some sentences: tags and characters are cut alike
    assert main([*args, "--on-disk", "no", "--out", str(tmp_path / "mem")]) == 0
    assert main([*args, "--on-disk", "yes", "--out", str(tmp_path / "disk")]) == 0
    assert len(list((tmp_path / "cache" / "encoded").glob("*/chars.bin"))) == 1
    assert _curve(tmp_path / "disk") == _curve(tmp_path / "mem")
    mem, disk = (json.loads((tmp_path / m / "metrics.json").read_text()) for m in ("mem", "disk"))
    assert disk["validation"] == mem["validation"]
    assert (tmp_path / "disk" / "model.safetensors").read_bytes() == (tmp_path / "mem" / "model.safetensors").read_bytes()


def test_a_second_run_on_the_same_file_never_reads_its_text_again(tmp_path, files, monkeypatch):
    """The label pass, the fitted tokenizer and the encoding are cached per file and split: a
    second run (another family, a tune trial) trains from the cache alone; another split or
    tokenizer setting fits again."""
    monkeypatch.setenv("SEQLAB_CACHE_DIR", str(tmp_path / "cache"))
    train, _ = files
    args = ["train", "--data", str(train), "--on-disk", "yes", "--epochs", "1", "--limit", "300", "--no-progress"]
    assert main([*args, "--family", "bow", "--out", str(tmp_path / "bow")]) == 0
    reads = []
    real = ondisk.DataFile.examples
    monkeypatch.setattr(ondisk.DataFile, "examples", lambda self, *a: reads.append(self.path) or real(self, *a))
    assert main([*args, "--family", "gru", "--embed-dim", "8", "--hidden-dim", "8", "--out", str(tmp_path / "gru")]) == 0
    assert reads == []
    bow, gru = (load_bundle(tmp_path / m) for m in ("bow", "gru"))
    assert bow.task.tokenizer.to_json() == gru.task.tokenizer.to_json() and bow.task.labels == gru.task.labels
    assert main([*args, "--family", "bow", "--max-vocab", "50", "--out", str(tmp_path / "small")]) == 0
    assert reads and load_bundle(tmp_path / "small").task.tokenizer.vocab_size < bow.task.tokenizer.vocab_size


# builds a cache entry in a fresh process: the label pass or an encoded corpus (data/ondisk.py),
# or a language-model stream (data/stream.py). Each pass is logged with the process id, and
# waits until both processes have come to build, so that the other one arrives while it runs
BUILD = """
import os, sys, time
from pathlib import Path

path, log, arrived = (Path(a) for a in sys.argv[2:5])

def encoding(value):
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    deadline = time.monotonic() + 60
    while len(list(arrived.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the other one, arrived, reaches the lock
    return value

if sys.argv[1] == "labels":
    from seqlab.data import ondisk

    read = ondisk.DataFile.examples
    ondisk.DataFile.examples = lambda self, *args: encoding(read(self, *args))
    (arrived / str(os.getpid())).touch()
    codes, names = ondisk.read_label_codes(ondisk.DataFile(path, "table", "csv"), "label")
    print(len(codes), names)
elif sys.argv[1] == "corpus":
    from seqlab.data import ondisk

    encode = lambda examples: encoding([{"ids": [4 + len(ex["text"]) % 50]} for ex in examples])
    (arrived / str(os.getpid())).touch()
    built = ondisk.EncodedCorpus.build(ondisk.DataFile(path, "table", "csv"), "s", encode, target="label",
                                       vocab_size=60)
    print(len(built), built.directory)
else:
    from seqlab.data.stream import TextSource, encode_stream

    class Tokenizer:
        vocab_size = 60

        def to_json(self):
            return "a stand-in tokenizer"

        def encode(self, text):
            return encoding([4 + len(line) % 50 for line in text.splitlines()])

    (arrived / str(os.getpid())).touch()
    print(len(encode_stream(TextSource(path=path), Tokenizer())))
"""


# what each kind of cache entry is: its folder in the cache, the entries one build leaves there,
# what a waiting process is told, and the count the build script prints
CACHED = {"labels": ("labels", 1, "read the labels of", 600), "corpus": ("encoded", 1, "encode", 600),
          "stream": ("streams", 2, "encode the language-model text", 601)}  # + the csv header line


@pytest.mark.parametrize("kind", list(CACHED))
def test_processes_building_one_cache_entry_at_once_build_it_once(tmp_path, files, kind):
    """Ranks started together (torchrun) all need the same label pass, encoded corpus or
    language-model stream: the first builds it, the others wait on its lock and reuse it; one
    result, no temp file or folder left, nothing read or encoded twice."""
    import os
    import subprocess
    import sys

    folder, entries, told, count = CACHED[kind]
    train, _ = files
    log, arrived = tmp_path / "encode.log", tmp_path / "arrived"
    arrived.mkdir()
    env = {**os.environ, "SEQLAB_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-c", BUILD, kind, str(train), str(log), str(arrived)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    (out1, err1), (out2, err2) = (p.communicate(timeout=120) for p in procs)
    assert [p.returncode for p in procs] == [0, 0], err1 + err2
    builders = set(log.read_text().split())
    assert len(builders) == 1  # one process built; the other waited for it
    waited = err2 if builders == {str(procs[0].pid)} else err1
    assert f"waiting for another process to {told}" in waited
    assert out1 == out2 and int(out1.split()[0]) == count
    cache = tmp_path / "cache" / folder
    left = [p.name for p in cache.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]
    assert not left and len([p for p in cache.iterdir() if not p.name.startswith(".")]) == entries


def test_each_rank_reads_only_its_shares(tmp_path, files, monkeypatch):
    """Under DDP the bucketed sampler hands each rank its share of every global batch: from
    disk, a rank reads those examples and no others (the ghost of a short last batch rereads
    one), and the ranks together read the split once."""
    from seqlab.data.batching import BucketBatchSampler, ListDataset

    monkeypatch.setenv("SEQLAB_CACHE_DIR", str(tmp_path / "cache"))
    train, _ = files

    def encode(examples):
        return [{"ids": [4 + i % 7] * (1 + len(ex["text"]) % 9)} for i, ex in enumerate(examples)]

    corpus = ondisk.EncodedCorpus.build(ondisk.DataFile(train, "table", "csv"), "s", encode, target="label",
                                        vocab_size=20)
    split = ondisk.EncodedSplit(corpus, np.arange(1, 600, 2), ["neg", "pos"])  # 300 = 13 x 23 + 1
    reads: list[int] = []
    monkeypatch.setattr(corpus, "example", lambda k, read=corpus.example: reads.append(k) or read(k))
    per_rank = []
    for rank in (0, 1):
        reads.clear()
        data = ListDataset(split)
        for batch in BucketBatchSampler(split.lengths, 23, seed=1, rank=rank, world_size=2):
            items = [data[i] for i in batch]
            assert [len(it["ids"]) for it in items] == [split.lengths[i % len(split)] for i in batch]
        per_rank.append(list(reads))
    assert len(per_rank[0]) == 13 * 12 + 1 and len(per_rank[1]) == 13 * 11 + 1  # the last: its one, a ghost
    assert len(set(per_rank[0]) & set(per_rank[1])) == 1  # the ghost: the last batch's one example
    assert sorted(set(per_rank[0]) | set(per_rank[1])) == list(range(1, 600, 2))
