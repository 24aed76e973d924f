"""The lowest layer: reading text files line by line and writing files atomically.

Everything above imports from here (readers, streams, bundles, reports); this module imports
nothing of seqlab's but the error type, so there are no import cycles through it.

Reading: `iter_lines` / `open_text_lines` / `read_text` stream a text file (gzip too) and turn
every problem into one SeqlabError naming the file, the line or byte offset and what to do.
Writing: `atomic_write_text` / `atomic_write_json` / `atomic_path` write to a temp file beside
the target and rename it into place, so a reader never sees half a file.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import lzma
import os
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from seqlab.errors import SeqlabError

# Errors that mean "the compressed stream or archive is damaged".
CORRUPT_ERRORS = (EOFError, zlib.error, lzma.LZMAError, tarfile.TarError, zipfile.BadZipFile)


# --- plain text -----------------------------------------------------------------------


def check_file(path: Path) -> None:
    """Fail early with a clear message instead of a traceback from open()."""
    if not path.exists():
        raise SeqlabError(f"{path}: no such file")
    if path.is_dir():
        raise SeqlabError(f"{path}: is a folder, expected a file")


def codec_name(encoding: str) -> str:
    """Normalize an encoding name, rejecting unknown ones up front."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise SeqlabError(
            f"unknown encoding {encoding!r}; pass --encoding utf-8, latin-1, ..."
        ) from None


@contextmanager
def corrupt_as_error(path: Path, what: str = "gzip data") -> Iterator[None]:
    """Turn low-level decompression errors into one actionable line."""
    try:
        yield
    except PermissionError:
        raise SeqlabError(f"{path}: permission denied; check the file's permissions") from None
    except (*CORRUPT_ERRORS, OSError) as err:
        why = str(err) or type(err).__name__
        raise SeqlabError(
            f"{path}: {what} is truncated or corrupt ({why}); download it again"
        ) from None


def decode_error(where: str, offset: int, bad: int, encoding: str, gz: bool) -> SeqlabError:
    """The message for a byte the encoding cannot decode; suggests latin-1 for utf-8."""
    after = " (after decompression)" if gz else ""
    hint = "latin-1 (or the file's real encoding)" if codec_name(encoding) == "utf-8" else "NAME"
    return SeqlabError(
        f"{where}: byte 0x{bad:02x} at offset {offset}{after} is not valid {encoding}; "
        f"pass --encoding {hint}"
    )


def line_of(data: bytes, offset: int) -> int:
    """1-based line number of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


def bom_codec(head: bytes) -> str | None:
    """The UTF-16/32 encoding a byte-order mark announces (Windows' "Unicode" text), or None."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return None


def iter_lines(path: Path, encoding: str, keepends: bool) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) decoding line by line, so errors know their byte offset."""
    check_file(path)
    codec = codec_name(encoding)
    gz = path.suffix == ".gz"
    what = "gzip data" if gz else "file"
    with corrupt_as_error(path, what), gzip.open(path, "rb") if gz else open(path, "rb") as fh:
        if codec == "utf-8" and (announced := bom_codec(fh.peek(4)[:4])):
            codec = encoding = announced  # a UTF-16/32 byte-order mark: read the file as it says
        if codec.startswith(("utf-16", "utf-32")):
            # b"\n" is not a line break in these encodings: let io split, lose the offset.
            yield from _iter_wide_lines(path, fh, encoding, keepends)
            return
        offset = 0
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode(codec)
            except UnicodeDecodeError as err:
                at = offset + err.start
                raise decode_error(
                    f"{path}: line {lineno}", at, raw[err.start], encoding, gz
                ) from None
            offset += len(raw)
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # byte-order mark written by Excel & co.
            yield lineno, (line if keepends else line.rstrip("\r\n"))


def _iter_wide_lines(
    path: Path, fh: io.BufferedIOBase, encoding: str, keepends: bool
) -> Iterator[tuple[int, str]]:
    """Line iteration for UTF-16/32, where only the line number of a bad byte is known."""
    text = io.TextIOWrapper(fh, encoding=encoding, newline="")
    lineno = 0
    try:
        for lineno, line in enumerate(text, 1):  # noqa: B007 (lineno used in the except)
            line = line.removeprefix("\ufeff") if lineno == 1 else line
            yield lineno, (line if keepends else line.rstrip("\r\n"))
    except UnicodeDecodeError:
        raise SeqlabError(
            f"{path}: line {lineno + 1}: not valid {encoding}; pass --encoding NAME"
        ) from None


def open_text_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Stream (1-based line number, line without newline) from a text file, `.gz` or not."""
    yield from iter_lines(Path(path), encoding, keepends=False)


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Read a whole text file (`.gz` or not); an empty file is an error."""
    path = Path(path)
    check_file(path)
    codec = codec_name(encoding)
    gz = path.suffix == ".gz"
    what = "gzip data" if gz else "file"
    with corrupt_as_error(path, what), gzip.open(path, "rb") if gz else open(path, "rb") as fh:
        data = fh.read()
    if codec == "utf-8" and (announced := bom_codec(data[:4])):
        codec = encoding = announced
    try:
        text = data.decode(codec).removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        where = f"{path}: line {line_of(data, err.start)}"
        raise decode_error(where, err.start, data[err.start], encoding, gz) from None
    if not text.strip():
        raise SeqlabError(f"{path}: file is empty")
    return text


# --- atomic writes --------------------------------------------------------------------


def publish(tmp: str | Path, path: Path) -> None:
    """Rename a finished temp file into place with the permissions a plain open() would give
    (mkstemp makes files private, but bundles and plots are meant to be shared)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside `path` to write to; renamed onto `path` when the block succeeds,
    removed when it fails (for writers that want a file name: safetensors, matplotlib)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def build_lock(path: Path, what: str) -> Iterator[None]:
    """One builder at a time of a cached file or folder (`path`: its lock file): processes that
    need the same build at once (the ranks of a distributed run, which torchrun starts
    together) wait here, say so on stderr ("waiting for another process to <what>"), and then
    find the first one's result instead of each building it again. An OS lock (flock), so a
    builder that dies releases it; where there is none (Windows), or the lock file cannot be
    made (a read-only cache), every process builds, and the builder's atomic rename still
    leaves exactly one result."""
    try:
        import fcntl

        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except (ImportError, OSError):  # no flock here, or a cache we cannot write: build unlocked
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"seqlab: waiting for another process to {what}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock; the empty lock file stays (removing it would race)
