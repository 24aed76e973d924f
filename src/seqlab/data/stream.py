"""Language-model token streams: a corpus as one contiguous array of token ids on disk, read
in windows for truncated backpropagation through time (TBPTT).

A split's text is a `TextSource` (in-memory text, or a character range of a file read line
by line), so a corpus never has to fit in memory as text. It is encoded once, chunk by chunk,
into `<cache>/streams/<key>.bin` (raw uint16/int32 ids) beside `<key>.json` (a small header);
the key hashes the source and the tokenizer, so a second run on the same corpus reuses it.
Training then reads the ids through np.memmap.

Windows follow char-rnn and PyTorch's word_language_model: the N ids are cut into B parallel
contiguous rows (row r owns ids [r*L, (r+1)*L] for L = (N-1) // B); window k holds steps
[k*T, (k+1)*T) of every row as inputs (B, T) and the ids one step later as targets (B, T).
Window k+1 continues each row exactly where window k stopped, so a recurrent state carried
from one window to the next (and detached between them) sees one unbroken text per row.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from seqlab.data.batching import distributed_rank_and_size
from seqlab.errors import SeqlabError
from seqlab.files import atomic_write_json, build_lock

STREAM_FORMAT = 1
_CHUNK_CHARS = 1 << 16  # text handed to the tokenizer at a time


# --- sources ------------------------------------------------------------------------------


@dataclass
class TextSource:
    """The text of one split: `text` in memory, or characters [start, stop) of a file.

    Iterating yields chunks of whole lines (a word never straddles two chunks)."""

    text: str | None = None
    path: Path | None = None
    encoding: str = "utf-8"
    start: int = 0
    stop: int | None = None  # None: to the end

    def lines(self) -> Iterator[str]:
        """The split's lines, newline kept (the first/last may be partial at a split point)."""
        if self.text is not None:
            yield from self.text[self.start : self.stop].splitlines(keepends=True)
            return
        from seqlab.files import iter_lines  # streams, names file:line on bad bytes

        pos = 0
        for _, line in iter_lines(Path(self.path), self.encoding, keepends=True):
            end = pos + len(line)
            if end > self.start and (self.stop is None or pos < self.stop):
                lo = max(self.start - pos, 0)
                hi = len(line) if self.stop is None else min(self.stop - pos, len(line))
                yield line[lo:hi]
            pos = end
            if self.stop is not None and pos >= self.stop:
                return

    def __iter__(self) -> Iterator[str]:
        chunk: list[str] = []
        size = 0
        for line in self.lines():
            chunk.append(line)
            size += len(line)
            if size >= _CHUNK_CHARS:
                yield "".join(chunk)
                chunk, size = [], 0
        if chunk:
            yield "".join(chunk)

    def __bool__(self) -> bool:
        return any(line for line in self.lines())

    def fingerprint(self) -> str:
        """Identifies the text cheaply: a hash of in-memory text; path, size, mtime of a file."""
        if self.text is not None:
            body = hashlib.sha256(self.text[self.start : self.stop].encode("utf-8", "surrogatepass"))
            return f"text:{body.hexdigest()}"
        st = Path(self.path).stat()
        where = Path(self.path).resolve()
        return f"file:{where}:{st.st_size}:{st.st_mtime_ns}:{self.encoding}:{self.start}:{self.stop}"


def count_chars(path: str | Path, encoding: str = "utf-8") -> int:
    """Characters (code points) in a text file, streamed."""
    from seqlab.files import iter_lines

    return sum(len(line) for _, line in iter_lines(Path(path), encoding, keepends=True))


def split_file(path: str | Path, encoding: str, validation_fraction: float) -> dict[str, TextSource]:
    """A plain-text file -> first (1 - f) of its characters for train, the rest for validation
    (nanoGPT's split of Tiny Shakespeare), without reading the file into memory."""
    total = count_chars(path, encoding)
    if total == 0:
        raise SeqlabError(f"{path}: file is empty")
    cut = int(total * (1 - validation_fraction))
    return {
        "train": TextSource(path=Path(path), encoding=encoding, stop=cut),
        "validation": TextSource(path=Path(path), encoding=encoding, start=cut),
    }


def as_source(value) -> TextSource:
    """A TextSource, a str, or a list of str chunks (e.g. a flattened file) -> TextSource."""
    if isinstance(value, TextSource):
        return value
    if isinstance(value, str):
        return TextSource(text=value)
    if isinstance(value, Iterable):
        return TextSource(text="".join(value))
    raise SeqlabError(f"cannot read {type(value).__name__} as language-model text")


# --- encoding to a memmap -------------------------------------------------------------------


def stream_dir() -> Path:
    from seqlab.data.datasets import cache_dir

    return cache_dir() / "streams"


def _encode_chunks(source: TextSource, tokenizer, eos_per_line: bool) -> Iterator[list[int]]:
    """Token ids chunk by chunk. Word level marks each line end with <eos> (as the PyTorch
    word_language_model does), since the word tokenizer drops newlines."""
    from seqlab.data.tokenize import EOS_ID

    if not eos_per_line:
        for chunk in source:
            yield tokenizer.encode(chunk)
        return
    batch: list[str] = []
    for line in source.lines():
        batch.append(line)
        if len(batch) >= 1024:
            yield [i for ids in tokenizer.encode_batch(batch) for i in (*ids, EOS_ID)]
            batch = []
    if batch:
        yield [i for ids in tokenizer.encode_batch(batch) for i in (*ids, EOS_ID)]


def encode_stream(source: TextSource, tokenizer, *, eos_per_line: bool = False,
                  directory: Path | None = None) -> np.ndarray:
    """The split's token ids as a read-only np.memmap (N,), built once and cached."""
    directory = Path(directory or stream_dir())
    tok_hash = hashlib.sha256(tokenizer.to_json().encode()).hexdigest()
    key = hashlib.sha256(
        f"{STREAM_FORMAT}|{source.fingerprint()}|{tok_hash}|{eos_per_line}".encode()
    ).hexdigest()[:24]
    header_path, bin_path = directory / f"{key}.json", directory / f"{key}.bin"
    dtype = np.dtype(np.uint16 if tokenizer.vocab_size <= np.iinfo(np.uint16).max else np.int32)
    built = _built(header_path, bin_path)
    if built is not None:
        return built
    directory.mkdir(parents=True, exist_ok=True)
    # the ranks of a distributed run take turns: the first encodes, the others reuse its stream
    with build_lock(directory / f".{key}.lock", "encode the language-model text"):
        built = _built(header_path, bin_path)
        if built is not None:
            return built
        # written to temp files, renamed into place, header last: a reader never sees half a stream
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{key}.", suffix=".bin.tmp")
        n = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for ids in _encode_chunks(source, tokenizer, eos_per_line):
                    np.asarray(ids, dtype=dtype).tofile(f)
                    n += len(ids)
            os.replace(tmp, bin_path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        header = {"format": STREAM_FORMAT, "dtype": dtype.name, "n_tokens": n,
                  "vocab_size": tokenizer.vocab_size, "source": source.fingerprint()}
        atomic_write_json(header_path, header)
    return _open(bin_path, header)


def _built(header_path: Path, bin_path: Path) -> np.ndarray | None:
    """The stream already encoded (header and ids complete), or None."""
    if header_path.is_file() and bin_path.is_file():
        header = json.loads(header_path.read_text())
        if bin_path.stat().st_size == header["n_tokens"] * np.dtype(header["dtype"]).itemsize:
            return _open(bin_path, header)
    return None


def _open(path: Path, header: dict) -> np.ndarray:
    if header["n_tokens"] == 0:
        return np.zeros(0, dtype=header["dtype"])
    return np.memmap(path, dtype=header["dtype"], mode="r", shape=(header["n_tokens"],))


# --- windows for truncated BPTT ----------------------------------------------------------


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if world_size is None:
        return distributed_rank_and_size()
    return rank or 0, world_size


class StreamWindows(Dataset):
    """Window k of a token stream cut into parallel rows: a ready batch per index.

    Each item: {"ids": (B, t), "targets": (B, t), "lengths": (B,) all t, "reset": bool}
    with t = seq_len except in the last window; "reset" is True for window 0 (a new pass
    over the rows: carried state must start from zero). `batch_size` is the global number
    of rows: under DDP each rank reads its own contiguous share of the one-process run's rows
    (B = 5 on 2 ranks: rows 0-2 and 3-4), so every rank gets the same number of windows and
    the global batch is the one-process batch.
    Fewer than `batch_size` rows are used when the corpus is too short for each row to hold
    a whole window.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int, *,
                 rank: int | None = None, world_size: int | None = None, what: str = "corpus"):
        if seq_len < 1:
            raise SeqlabError(f"--seq-len must be at least 1 (got {seq_len})")
        self.ids, self.batch_size, self.seq_len, self.what = ids, batch_size, seq_len, what
        # rank/world None: read torch.distributed when iterated, since Lightning starts the
        # process group only inside trainer.fit, after the loaders are built
        self._fixed = (rank, world_size) if world_size is not None else None
        self._layout(*_rank_world(rank, world_size))  # fails early on a too-short corpus

    def _layout(self, rank: int, world_size: int) -> None:
        n = len(self.ids) - 1  # the last id is only ever a target
        # the rows of the one-process run (batch_size is global); each rank reads its share
        total = min(self.batch_size, n // self.seq_len)
        if total < world_size or total < 1:
            need = self.seq_len * world_size + 1
            raise SeqlabError(
                f"the {self.what} has {len(self.ids)} tokens, too short for one window"
                f"{' per rank' if world_size > 1 else ''}: "
                f"--seq-len {self.seq_len} needs at least {need} tokens"
                f"{' over all ranks' if world_size > 1 else ''}; use a longer text or a "
                f"--seq-len of at most {max(n // world_size, 1)}"
            )
        mine = np.array_split(np.arange(total), world_size)[rank]  # rows r*k .. of the one-process layout
        self.rank, self.world_size, self.rows = rank, world_size, len(mine)
        self.row_len = n // total  # L: steps each row covers
        self.row_starts = (mine * self.row_len)[:, None]  # (B, 1)

    def _refresh(self) -> None:
        if self._fixed is None:
            rank, world = _rank_world(None, None)
            if (rank, world) != (self.rank, self.world_size):
                self._layout(rank, world)

    def __len__(self) -> int:
        self._refresh()
        return math.ceil(self.row_len / self.seq_len)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if not 0 <= k < len(self):
            raise IndexError(k)
        t = min(self.seq_len, self.row_len - k * self.seq_len)
        index = self.row_starts + k * self.seq_len + np.arange(t + 1)[None, :]  # (B, t+1)
        window = torch.from_numpy(np.asarray(self.ids[index], dtype=np.int64))  # (B, t+1)
        return {
            "ids": window[:, :-1],  # (B, t)
            "targets": window[:, 1:],  # (B, t): the next token at each step
            "lengths": torch.full((self.rows,), t, dtype=torch.long),
            "reset": torch.tensor(k == 0),
        }


def window_loader(windows: StreamWindows) -> DataLoader:
    """Windows in order (the order is what carries the state), already batched."""
    return DataLoader(windows, batch_size=None, shuffle=False)
