"""Labeled text bigger than memory: a classification or tagging file encoded once, in
chunks, into token ids on disk, and batched from there.

`<cache>/encoded/<key>/` holds `ids.bin` (every example's token ids, concatenated, uint16 or
int32), `offsets.npy` (N + 1 positions into ids.bin) and `header.json` (written last, with
`labels`: the file's own label or tag names), plus what the task needs: `labels.npy` (one
label per example, an index into those names), `tags.bin` (one tag per token, likewise) and
for spelled words `chars.bin` with `char_offsets.bin` (N_tokens + 1 positions). The key hashes
the file (path, size, mtime), how it is read, the tokenizer and the task's encoding settings,
like the language-model streams (data/stream.py), so a second run on the same file reuses it.
Processes that need the same corpus at once (the ranks of a distributed run) take turns on a
lock: the first encodes, the others wait and reuse its corpus.

A split is an `EncodedSplit`: the corpus plus the example numbers it holds, in order, so
shuffling and length bucketing work on the index (offsets), never on loaded texts. Examples
are read with `os.pread`, not a memory map: mapped file pages count as the process's resident
memory once touched, and an epoch touches them all.

Only labels (one small int per example) and the index are in memory; texts are streamed from
the file on each pass: labels (for the split), vocabulary (fit on the training examples: the
whole stream, not a sample), encoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqlab.errors import SeqlabError
from seqlab.files import build_lock

ENCODED_FORMAT = 2
CHUNK_EXAMPLES = 4096  # examples handed to the tokenizer at a time
AUTO_BYTES = 256 * 2**20  # --on-disk auto: files larger than this are encoded to disk
READERS = ("table", "fasttext", "conllu", "token-tag")


@dataclass(frozen=True)
class DataFile:
    """One data file and how to read it: `reader` is a table (csv/tsv/jsonl, `fmt`) or
    fastText file of {"text", "label"}, or a CoNLL-U / token<TAB>tag file of {"tokens", "tags"}."""

    path: Path
    reader: str
    fmt: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    tag_column: str = "upos"
    encoding: str = "utf-8"
    progress: bool = False  # show each named pass over the file on stderr (not part of the key)

    def examples(self, what: str | None = None, total: int | None = None) -> Iterator[dict]:
        """The file's examples, streamed; a pass named by `what` shows its progress."""
        from seqlab.data.conllu import iter_conllu, iter_token_tag
        from seqlab.data.formats import iter_fasttext, iter_table

        if self.reader == "fasttext":
            stream = iter_fasttext(self.path, self.encoding)
        elif self.reader == "conllu":
            stream = iter_conllu(self.path, tag_column=self.tag_column, encoding=self.encoding)
        elif self.reader == "token-tag":
            stream = iter_token_tag(self.path, encoding=self.encoding)
        else:
            stream = iter_table(self.path, text_column=self.text_column, label_column=self.label_column,
                                encoding=self.encoding, fmt=self.fmt)
        return _shown(stream, f"{self.path.name}: {what}", total) if self.progress and what else stream

    def fingerprint(self) -> str:
        st = self.path.stat()
        return (f"{self.path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{self.reader}:{self.fmt}:{self.text_column}:"
                f"{self.label_column}:{self.tag_column}:{self.encoding}")


def _shown(stream: Iterator[dict], what: str, total: int | None) -> Iterator[dict]:
    """A pass over a big file can take minutes: a bar on a terminal, else a line when it
    starts and one when it ends (a log file)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(stream, desc=what, total=total, unit=" examples", unit_scale=True, file=sys.stderr,
                        mininterval=0.5, leave=False)
        return
    print(f"seqlab: {what} ...", file=sys.stderr, flush=True)
    start, n = time.perf_counter(), 0
    for n, ex in enumerate(stream, 1):  # noqa: B007 (n is the count after the loop)
        yield ex
    print(f"seqlab: {what}: {n:,} examples in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


def use_on_disk(setting: str, path: Path) -> bool:
    """--on-disk yes/no, or auto: a single file larger than AUTO_BYTES (folders and archives,
    and named datasets, are read into memory)."""
    if setting == "yes":
        return True
    return setting == "auto" and path.is_file() and path.stat().st_size > AUTO_BYTES


def read_label_codes(source: DataFile, field: str | None) -> tuple[np.ndarray, list[str]]:
    """Pass 1: each example's `field` as a code into the file's names (first-seen order); all
    zeros and one name "" when `field` is None (the examples are only counted). Kept in the
    cache (keyed by the file and `field`), so a second run on the same file skips the pass."""
    directory = _cache_key_dir("labels", f"{source.fingerprint()}|{field}")

    def cached() -> tuple[np.ndarray, list[str]]:
        names_read = json.loads((directory / "names.json").read_text(encoding="utf-8"))
        return np.load(directory / "codes.npy"), names_read

    def read() -> tuple[np.ndarray, list[str]]:
        names: dict[str, int] = {}
        codes = array("i")
        for ex in source.examples("reading the labels"):
            codes.append(names.setdefault(ex[field], len(names)) if field else 0)
        if not codes:
            raise SeqlabError(f"{source.path}: no examples")
        return np.frombuffer(codes, dtype=np.int32).copy(), list(names) if field else [""]

    def files(result: tuple[np.ndarray, list[str]]) -> dict[str, Callable[[Path], None]]:
        return {"codes.npy": lambda path: np.save(path, result[0]),
                "names.json": lambda path: path.write_text(json.dumps(result[1]), encoding="utf-8")}

    return _once(directory, cached, read, files, f"read the labels of {source.path}")


def fitted_once(split: FileSplit, settings: str, fit: Callable[[], dict]) -> dict:
    """What `fit` learns from the training examples of `split` (JSON-able: a tokenizer, the
    label set), kept in the cache and keyed by the file, which examples the split holds and
    `settings` (everything else `fit` depends on). The streamed pass over a big file is then
    paid once per file and split, not once per run (another family, a `seqlab tune` trial)."""
    which = hashlib.sha256(np.ascontiguousarray(split.positions, dtype=np.int64).tobytes()).hexdigest()
    directory = _cache_key_dir("fitted", f"{split.source.fingerprint()}|{which}|{settings}")
    return _once(directory, lambda: json.loads((directory / "fitted.json").read_text(encoding="utf-8")), fit,
                 lambda value: {"fitted.json": lambda path: path.write_text(json.dumps(value), encoding="utf-8")},
                 f"fit the vocabulary of {split.source.path}")


def _once(directory: Path, cached: Callable, compute: Callable, files: Callable[..., dict], what: str):
    """`cached()`, or else `compute()` kept in `directory` (`files(value)`: its writers), so
    the pass over the file is paid once: by the first run, and among the ranks of a
    distributed run that start together (torchrun), by the first rank while the others wait."""
    try:
        return cached()
    except (OSError, ValueError):
        pass  # not cached yet (or a cut write): read the file
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # a cache we cannot write: computed every time
    with build_lock(directory.parent / f".{directory.name}.lock", what):
        try:
            return cached()  # a rank that waited finds the first one's
        except (OSError, ValueError):
            pass
        value = compute()
        _save_cached(directory, files(value))
        return value


def _cache_key_dir(kind: str, key: str) -> Path:
    from seqlab.data.datasets import cache_dir

    return cache_dir() / kind / hashlib.sha256(f"{ENCODED_FORMAT}|{key}".encode()).hexdigest()[:24]


def _save_cached(directory: Path, writers: dict[str, Callable[[Path], None]]) -> None:
    """Write the files into a temp folder and rename it into place: a reader sees all of
    them or none. A cache that cannot be written (read-only, full disk) is skipped."""
    try:  # the parent folder is _once's (made for the lock), if it could be made at all
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    except OSError:
        return
    try:
        for name, write in writers.items():
            write(tmp / name)
        os.replace(tmp, directory)
    except OSError:
        pass  # another run cached it meanwhile, or the disk is full: the value is still returned
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def examples_of(source: DataFile, keep: np.ndarray | None = None, what: str | None = None) -> Iterator[dict]:
    """The examples whose `keep` flag is set (all when None), streamed (`what`: the pass's name)."""
    for i, ex in enumerate(source.examples(what, None if keep is None else len(keep))):
        if keep is None or keep[i]:
            yield ex


def _corpus_dir(source: DataFile, settings: str) -> Path:
    return _cache_key_dir("encoded", f"{source.fingerprint()}|{settings}")


def _read(fd: int, dtype: np.dtype, start: int, stop: int) -> np.ndarray:
    data = os.pread(fd, (stop - start) * dtype.itemsize, start * dtype.itemsize)
    return np.frombuffer(data, dtype=dtype)


# what an encoder returns per example: "ids" (token ids, already cut), and "chars" (each
# kept token's character ids) when words are spelled
Encoder = Callable[[list[dict]], list[dict]]


class EncodedCorpus:
    """A file's examples as token ids on disk (see the module doc); built once per key."""

    def __init__(self, directory: Path):
        header = json.loads((directory / "header.json").read_text(encoding="utf-8"))
        self.directory = directory
        self.dtype = np.dtype(header["dtype"])
        self.target: str = header["target"]
        self.spelled: bool = header["spelled"]
        self.label_names: list[str] = header["labels"]
        self.offsets = np.load(directory / "offsets.npy")
        self.labels = np.load(directory / "labels.npy") if self.target == "label" else None
        self._fds: dict[str, int] = {}
        self._pid = -1

    @classmethod
    def build(cls, source: DataFile, settings: str, encode: Encoder, *, target: str, vocab_size: int
              ) -> EncodedCorpus:
        """Encode `source` (or reuse it): `settings` names everything `encode` depends on
        (tokenizer, cut, character table); `target` is "label" (one per example) or "tags"."""
        directory = _corpus_dir(source, settings)
        if (directory / "header.json").is_file():
            return cls(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        # the ranks of a distributed run take turns: the first encodes, the others reuse its corpus
        with build_lock(directory.parent / f".{directory.name}.lock", f"encode {source.path}"):
            if (directory / "header.json").is_file():  # built while this process waited
                return cls(directory)
            # built in a temp folder and renamed into place: a reader never sees half a corpus
            tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
            try:
                _write(tmp, source, encode, target, vocab_size)
                try:
                    os.replace(tmp, directory)
                except OSError:  # another run built it meanwhile (a filesystem without locks)
                    if not (directory / "header.json").is_file():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return cls(directory)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _fd(self, name: str) -> int:
        if self._pid != os.getpid():  # a forked loader worker opens its own descriptors
            self._fds, self._pid = {}, os.getpid()
        if name not in self._fds:
            self._fds[name] = os.open(self.directory / name, os.O_RDONLY)
        return self._fds[name]

    def example(self, k: int) -> dict:
        """Example k from disk: "ids" (int64), "label" or "tags" (codes into label_names),
        and "chars" (a list of arrays) when spelled."""
        start, stop = int(self.offsets[k]), int(self.offsets[k + 1])
        out: dict = {"ids": _read(self._fd("ids.bin"), self.dtype, start, stop).astype(np.int64)}
        if self.labels is not None:
            out["label"] = int(self.labels[k])
        else:
            out["tags"] = _read(self._fd("tags.bin"), np.dtype(np.int32), start, stop)
        if self.spelled:
            bounds = _read(self._fd("char_offsets.bin"), np.dtype(np.int64), start, stop + 1)
            flat = _read(self._fd("chars.bin"), np.dtype(np.uint16), int(bounds[0]), int(bounds[-1]))
            out["chars"] = np.split(flat.astype(np.int64), (bounds[1:-1] - bounds[0]).tolist())
        return out

    def token_counts(self, vocab_size: int, keep: np.ndarray) -> np.ndarray:
        """How often each token id occurs in the examples whose `keep` flag is set, read in
        chunks of 4M ids."""
        counts = np.zeros(vocab_size, dtype=np.int64)
        total, step = int(self.offsets[-1]), 1 << 22
        for lo in range(0, total, step):
            hi = min(lo + step, total)
            chunk = _read(self._fd("ids.bin"), self.dtype, lo, hi).astype(np.int64)
            # which example each id belongs to: the last offset at or below its position
            example = np.searchsorted(self.offsets, np.arange(lo, hi), side="right") - 1
            counts += np.bincount(chunk[keep[example]], minlength=vocab_size)
        return counts


def _write(tmp: Path, source: DataFile, encode: Encoder, target: str, vocab_size: int) -> None:
    dtype = np.dtype(np.uint16 if vocab_size <= np.iinfo(np.uint16).max else np.int32)
    names: dict[str, int] = {}
    lengths, labels = array("q"), array("i")
    files = {name: open(tmp / name, "wb") for name in ("ids.bin", "tags.bin", "chars.bin", "char_offsets.bin")}
    chars_done = 0
    spelled = False
    try:
        np.zeros(1, dtype=np.int64).tofile(files["char_offsets.bin"])
        batch: list[dict] = []

        def flush() -> None:
            nonlocal chars_done, spelled
            for ex, enc in zip(batch, encode(batch)):
                ids = np.asarray(enc["ids"], dtype=dtype)
                ids.tofile(files["ids.bin"])
                lengths.append(len(ids))
                if target == "label":
                    labels.append(names.setdefault(ex["label"], len(names)))
                else:
                    tags = [names.setdefault(t, len(names)) for t in ex["tags"][: len(ids)]]
                    np.asarray(tags, dtype=np.int32).tofile(files["tags.bin"])
                if "chars" in enc:
                    spelled = True
                    words = enc["chars"]
                    np.asarray([c for w in words for c in w], dtype=np.uint16).tofile(files["chars.bin"])
                    ends = chars_done + np.cumsum([len(w) for w in words], dtype=np.int64)
                    ends.tofile(files["char_offsets.bin"])
                    chars_done = int(ends[-1]) if len(ends) else chars_done
            batch.clear()

        for ex in source.examples("encoding the token ids"):
            batch.append(ex)
            if len(batch) >= CHUNK_EXAMPLES:
                flush()
        flush()
    finally:
        for fh in files.values():
            fh.close()
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.frombuffer(lengths, dtype=np.int64), out=offsets[1:])
    np.save(tmp / "offsets.npy", offsets)
    if target == "label":
        np.save(tmp / "labels.npy", np.frombuffer(labels, dtype=np.int32))
    header = {"format": ENCODED_FORMAT, "dtype": dtype.name, "examples": len(lengths), "tokens": int(offsets[-1]),
              "target": target, "spelled": spelled, "labels": list(names), "source": source.fingerprint()}
    (tmp / "header.json").write_text(json.dumps(header), encoding="utf-8")


class EncodedSplit:
    """Examples `index` (in this order) of an EncodedCorpus, as the items a task's loader
    batches: {"ids", "label" or "tags", ("chars"), "index"}, labels and tags as indices into
    `labels` (`missing` where a name is not one of them)."""

    def __init__(self, corpus: EncodedCorpus, index: np.ndarray, labels: list[str], missing: int = -1):
        self.corpus, self.index = corpus, np.asarray(index, dtype=np.int64)
        known = {name: i for i, name in enumerate(labels)}
        self._map = np.array([known.get(n, missing) for n in corpus.label_names] or [missing], dtype=np.int64)
        self.lengths = np.diff(corpus.offsets)[self.index]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, j: int) -> dict:
        item = self.corpus.example(int(self.index[j]))
        if "label" in item:
            item["label"] = int(self._map[item["label"]])
        else:
            item["tags"] = self._map[item["tags"]].tolist()
        item["index"] = j
        return item

    def gold(self) -> list[str]:
        """The split's labels as written in the file (classification)."""
        names = self.corpus.label_names
        return [names[c] for c in self.corpus.labels[self.index]]


@dataclass
class FileSplit:
    """A split of a LabeledFile before encoding: the example positions it holds (in order)
    and every example's label code into `names` (the whole file's)."""

    source: DataFile
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


def file_splits(source: DataFile, *, validation_fraction: float, seed: int, limit: int | None,
                test: DataFile | None = None, stratify: str | None = "label") -> dict[str, FileSplit]:
    """train/validation (the stratified split `carve_validation` makes of the same file, from
    the labels alone) and, given a test file, test; --limit as `limit_examples` applies it."""
    import random

    from seqlab.data.splits import split_positions

    codes, names = read_label_codes(source, stratify)
    train, validation = split_positions(codes, names, (1 - validation_fraction, validation_fraction), seed)
    out = {"train": FileSplit(source, np.asarray(train), codes, names),
           "validation": FileSplit(source, np.asarray(validation), codes, names)}
    if test is not None:
        test_codes, test_names = read_label_codes(test, stratify)
        out["test"] = FileSplit(test, np.arange(len(test_codes)), test_codes, test_names)
    if limit:
        for split in out.values():
            if len(split) > limit:  # the positions random.sample picks from a list of that length
                split.positions = split.positions[random.Random(seed).sample(range(len(split)), limit)]
    return out
