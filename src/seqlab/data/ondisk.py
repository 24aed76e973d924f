"""Labeled text bigger than memory: a classification file encoded once, in chunks, into token
ids on disk, and batched from there.

`<cache>/encoded/<key>/` holds `ids.bin` (every example's token ids, concatenated, uint16 or
int32), `offsets.npy` (N + 1 positions into ids.bin), `labels.npy` (each example's label as an
index into `header.json`'s `labels`, the file's own label names) and `header.json`, written
last. The key hashes the file (path, size, mtime), how it is read (format, columns, encoding),
the tokenizer and --max-length, like the language-model streams (data/stream.py), so a second
run on the same file reuses it.

A split is an `EncodedSplit`: the corpus plus the example numbers it holds, in order, so
shuffling and length bucketing work on the index (offsets), never on loaded texts. Examples
are read with `os.pread`, not a memory map: mapped file pages count as the process's resident
memory once touched, and an epoch touches them all.

Only labels (one small int per example) and the index are in memory; texts are streamed from
the file on each pass: labels (for the split), tokenizer (fit on the training examples, the
whole stream), encoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqlab.errors import SeqlabError

ENCODED_FORMAT = 1
CHUNK_EXAMPLES = 4096  # texts handed to the tokenizer at a time
AUTO_BYTES = 256 * 2**20  # --on-disk auto: files larger than this are encoded to disk


@dataclass(frozen=True)
class LabeledFile:
    """One classification file and how to read it (a table or fastText file)."""

    path: Path
    fmt: str
    text_column: str = "text"
    label_column: str = "label"
    encoding: str = "utf-8"

    def examples(self) -> Iterator[dict]:
        """{"text", "label"} per example, streamed."""
        from seqlab.data.formats import iter_fasttext, iter_table

        if self.fmt == "fasttext":
            return iter_fasttext(self.path, self.encoding)
        return iter_table(self.path, text_column=self.text_column, label_column=self.label_column,
                          encoding=self.encoding, fmt=self.fmt)

    def fingerprint(self) -> str:
        st = self.path.stat()
        return (f"{self.path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{self.fmt}:{self.text_column}:"
                f"{self.label_column}:{self.encoding}")


def use_on_disk(setting: str, path: Path) -> bool:
    """--on-disk yes/no, or auto: a single file larger than AUTO_BYTES (folders and archives,
    and named datasets, are read into memory)."""
    if setting == "yes":
        return True
    return setting == "auto" and path.is_file() and path.stat().st_size > AUTO_BYTES


def read_label_codes(source: LabeledFile) -> tuple[np.ndarray, list[str]]:
    """Pass 1: each example's label as a code into the file's label names (first-seen order)."""
    names: dict[str, int] = {}
    codes = array("i")
    for ex in source.examples():
        codes.append(names.setdefault(ex["label"], len(names)))
    if not codes:
        raise SeqlabError(f"{source.path}: no examples")
    return np.frombuffer(codes, dtype=np.int32).copy(), list(names)


def texts_of(source: LabeledFile, keep: np.ndarray | None = None) -> Iterator[str]:
    """The texts of the examples whose `keep` flag is set (all when None), streamed."""
    for i, ex in enumerate(source.examples()):
        if keep is None or keep[i]:
            yield ex["text"]


def _corpus_dir(source: LabeledFile, tokenizer, max_length: int | None) -> Path:
    from seqlab.data.datasets import cache_dir

    tok_hash = hashlib.sha256(tokenizer.to_json().encode()).hexdigest()
    key = hashlib.sha256(
        f"{ENCODED_FORMAT}|{source.fingerprint()}|{tok_hash}|{max_length}".encode()).hexdigest()[:24]
    return cache_dir() / "encoded" / key


class EncodedCorpus:
    """A file's examples as token ids on disk (see the module doc); built once per key."""

    def __init__(self, directory: Path):
        header = json.loads((directory / "header.json").read_text(encoding="utf-8"))
        self.directory = directory
        self.dtype = np.dtype(header["dtype"])
        self.label_names: list[str] = header["labels"]
        self.offsets = np.load(directory / "offsets.npy")
        self.labels = np.load(directory / "labels.npy")
        self._fd: int | None = None
        self._pid = -1

    @classmethod
    def build(cls, source: LabeledFile, tokenizer, max_length: int | None) -> EncodedCorpus:
        directory = _corpus_dir(source, tokenizer, max_length)
        if (directory / "header.json").is_file():
            return cls(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        # built in a temp folder and renamed into place: a reader never sees half a corpus
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
        try:
            cls._write(tmp, source, tokenizer, max_length)
            try:
                os.replace(tmp, directory)
            except OSError:  # another run built it meanwhile
                if not (directory / "header.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return cls(directory)

    @staticmethod
    def _write(tmp: Path, source: LabeledFile, tokenizer, max_length: int | None) -> None:
        dtype = np.dtype(np.uint16 if tokenizer.vocab_size <= np.iinfo(np.uint16).max else np.int32)
        names: dict[str, int] = {}
        lengths, labels = array("q"), array("i")
        with open(tmp / "ids.bin", "wb") as out:
            texts: list[str] = []

            def flush() -> None:
                for ids in tokenizer.encode_batch(texts, max_length):
                    np.asarray(ids, dtype=dtype).tofile(out)
                    lengths.append(len(ids))
                texts.clear()

            for ex in source.examples():
                texts.append(ex["text"])
                labels.append(names.setdefault(ex["label"], len(names)))
                if len(texts) >= CHUNK_EXAMPLES:
                    flush()
            flush()
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(lengths, dtype=np.int64), out=offsets[1:])
        np.save(tmp / "offsets.npy", offsets)
        np.save(tmp / "labels.npy", np.frombuffer(labels, dtype=np.int32))
        header = {"format": ENCODED_FORMAT, "dtype": dtype.name, "examples": len(lengths),
                  "tokens": int(offsets[-1]), "labels": list(names), "source": source.fingerprint()}
        (tmp / "header.json").write_text(json.dumps(header), encoding="utf-8")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def ids(self, k: int) -> np.ndarray:
        """Example k's token ids (int64), read from disk."""
        if self._pid != os.getpid():  # a forked loader worker opens its own descriptor
            self._fd, self._pid = os.open(self.directory / "ids.bin", os.O_RDONLY), os.getpid()
        start, stop = int(self.offsets[k]), int(self.offsets[k + 1])
        size = self.dtype.itemsize
        data = os.pread(self._fd, (stop - start) * size, start * size)
        return np.frombuffer(data, dtype=self.dtype).astype(np.int64)

    def token_counts(self, vocab_size: int, keep: np.ndarray) -> np.ndarray:
        """How often each token id occurs in the examples whose `keep` flag is set, read in
        chunks of 4M ids."""
        counts = np.zeros(vocab_size, dtype=np.int64)
        ids = np.memmap(self.directory / "ids.bin", dtype=self.dtype, mode="r") if self.offsets[-1] else None
        step = 1 << 22
        for lo in range(0, int(self.offsets[-1]), step):
            hi = min(lo + step, int(self.offsets[-1]))
            chunk = np.asarray(ids[lo:hi], dtype=np.int64)
            # which example each id belongs to: the last offset at or below its position
            example = np.searchsorted(self.offsets, np.arange(lo, hi), side="right") - 1
            counts += np.bincount(chunk[keep[example]], minlength=vocab_size)
        del ids
        return counts


class EncodedSplit:
    """Examples `index` (in this order) of an EncodedCorpus, as the items a task's loader
    batches: {"ids", "label", "index"}, label as an index into `labels` (-1: not one of them)."""

    def __init__(self, corpus: EncodedCorpus, index: np.ndarray, labels: list[str]):
        self.corpus, self.index = corpus, np.asarray(index, dtype=np.int64)
        known = {name: i for i, name in enumerate(labels)}
        self._label_map = np.array([known.get(n, -1) for n in corpus.label_names], dtype=np.int64)
        self.lengths = np.diff(corpus.offsets)[self.index]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, j: int) -> dict:
        k = int(self.index[j])
        return {"ids": self.corpus.ids(k), "label": int(self._label_map[self.corpus.labels[k]]), "index": j}

    def gold(self) -> list[str]:
        """The split's labels as written in the file."""
        names = self.corpus.label_names
        return [names[c] for c in self.corpus.labels[self.index]]


@dataclass
class FileSplit:
    """A split of a LabeledFile before encoding: the example positions it holds (in order)
    and every example's label code into `names` (the whole file's)."""

    source: LabeledFile
    positions: np.ndarray
    codes: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.positions)

    def keep(self) -> np.ndarray:
        """One flag per example of the file: whether it is in this split."""
        flags = np.zeros(len(self.codes), dtype=bool)
        flags[self.positions] = True
        return flags

    def label_set(self) -> set[str]:
        return {self.names[c] for c in np.unique(self.codes[self.positions])}


def whole_file(split: FileSplit) -> FileSplit:
    """Every example of the split's file (a file given to `seqlab test` is all test data)."""
    return FileSplit(split.source, np.arange(len(split.codes)), split.codes, split.names)


def file_splits(source: LabeledFile, *, validation_fraction: float, seed: int, limit: int | None,
                test: LabeledFile | None = None) -> dict[str, FileSplit]:
    """train/validation (the stratified split `carve_validation` makes of the same file, from
    the labels alone) and, given a test file, test; --limit as `limit_examples` applies it."""
    import random

    from seqlab.data.splits import split_positions

    codes, names = read_label_codes(source)
    train, validation = split_positions(codes, names, (1 - validation_fraction, validation_fraction), seed)
    out = {"train": FileSplit(source, np.asarray(train), codes, names),
           "validation": FileSplit(source, np.asarray(validation), codes, names)}
    if test is not None:
        test_codes, test_names = read_label_codes(test)
        out["test"] = FileSplit(test, np.arange(len(test_codes)), test_codes, test_names)
    if limit:
        for split in out.values():
            if len(split) > limit:  # the positions random.sample picks from a list of that length
                split.positions = split.positions[random.Random(seed).sample(range(len(split)), limit)]
    return out
