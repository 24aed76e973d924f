"""Readers that turn files into classification examples ({"text", "label"} dicts).

Formats: CSV / TSV / JSON lines (optionally gzipped), fastText (`__label__X text`), and
folder-per-class, either a directory or an archive read in place (never extracted).
Every problem a user can cause raises SeqlabError with one line naming the file and the
line (or member / byte offset) and what to do about it.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import os
import re
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from seqlab.errors import SeqlabError
from seqlab.files import (
    codec_name,
    corrupt_as_error,
    decode_error,
    iter_lines,
    line_of,
)

Example = dict[str, str]
FORMATS = ("csv", "tsv", "jsonl", "fasttext", "folder")
# Folder names that mark a split; "valid" and "dev" are spellings of "validation".
SPLIT_NAMES = {"train": "train", "test": "test", **dict.fromkeys(("valid", "dev"), "validation")}
SPLIT_NAMES["validation"] = "validation"
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FASTTEXT_SUFFIXES = (".txt", ".ft")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".zip")
LABEL_PREFIX = "__label__"
# Leading `__label__X` tokens (any number), then the text.
_FASTTEXT_LINE = re.compile(r"\s*((?:__label__\S*\s*)+)(.*)", re.DOTALL)
# Compression recognized by its first bytes, whatever the file is called.
_OPENERS: dict[bytes, Callable[..., BinaryIO]] = {
    b"\x1f\x8b": gzip.open,
    b"BZh": bz2.open,
    b"\xfd7zXZ\x00": lzma.open,
}
_CHUNK = 1 << 20
_LAYOUT_HELP = (
    "expected [top/]SPLIT/LABEL/*.txt (SPLIT: train, test, valid, dev) or [top/]LABEL/*.txt"
)


# --- tables: csv / tsv / jsonl --------------------------------------------------------


def _table_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    fmt = TABLE_SUFFIXES.get(os.path.splitext(name)[1])
    if fmt is None:
        raise SeqlabError(f"{path}: not a .csv, .tsv, .jsonl or .ndjson file; pass --format NAME")
    return fmt


def _check_columns(
    path: Path, have: list[str], text_column: str, label_column: str | None, noun: str
) -> None:
    """A missing column names the columns the file does have, and the flag to fix it."""
    for column, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
        if column is not None and column not in have:
            raise SeqlabError(
                f"{path}: no {noun} {column!r}; {noun}s are: {', '.join(map(str, have))}; "
                f"pass {flag} NAME"
            )


def _delimited_records(
    path: Path, encoding: str, delimiter: str, text_column: str, label_column: str | None
) -> Iterator[tuple[int, dict[str, object]]]:
    """CSV/TSV rows as (line where the record starts, {column: value}); first row = header."""
    reader = csv.reader(
        (line for _, line in iter_lines(path, encoding, keepends=True)), delimiter=delimiter
    )
    header: list[str] | None = None
    rows = 0
    try:
        while True:
            start = reader.line_num + 1  # a quoted field may span lines: report the first
            row = next(reader, None)
            if row is None:
                break
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if header is None:
                header = [column.strip() for column in row]
                twice = sorted({c for c in header if header.count(c) > 1})
                if twice:
                    raise SeqlabError(f"{path}: the header names column {twice[0]!r} more than once; "
                                      "rename one so it is clear which holds what")
                _check_columns(path, header, text_column, label_column, "column")
                continue
            if len(row) > len(header):
                sep = "tab" if delimiter == "\t" else repr(delimiter)
                raise SeqlabError(
                    f"{path}:{start}: row has {len(row)} fields but the header has {len(header)}; "
                    f"quote fields that contain a {sep}"
                )
            rows += 1
            yield start, dict(zip(header, row))
    except csv.Error as err:
        raise SeqlabError(f"{path}:{reader.line_num}: {err}; check the quoting") from None
    if header is None:
        raise SeqlabError(f"{path}: file is empty")
    if rows == 0:
        raise SeqlabError(f"{path}: has a header but no rows")


def _json_records(
    path: Path, encoding: str, text_column: str, label_column: str | None
) -> Iterator[tuple[int, dict[str, object]]]:
    """JSON lines as (line number, object); blank lines are skipped."""
    first = True
    for lineno, line in iter_lines(path, encoding, keepends=False):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise SeqlabError(
                f"{path}:{lineno}: not valid JSON ({err.msg} at column {err.colno}); "
                "write one JSON object per line"
            ) from None
        if not isinstance(record, dict):
            raise SeqlabError(
                f"{path}:{lineno}: expected a JSON object, not {type(record).__name__}"
            )
        if first:  # fields are checked on the first object, as a header would be
            _check_columns(path, list(record), text_column, label_column, "field")
            first = False
        yield lineno, record
    if first:
        raise SeqlabError(f"{path}: file is empty")


def _example(
    path: Path, lineno: int, record: dict[str, object], text_column: str, label_column: str | None
) -> Example:
    """Pick text (and label, as str) from one record, rejecting empty or odd values."""
    text = record.get(text_column)
    if not isinstance(text, str) and text is not None:
        raise SeqlabError(f"{path}:{lineno}: {text_column!r} is a {type(text).__name__}, not text")
    if text is None or not text.strip():
        raise SeqlabError(f"{path}:{lineno}: row has no text; fill in {text_column!r} or delete it")
    example = {"text": text.strip()}
    if label_column is not None:
        label = record.get(label_column)
        if isinstance(label, (dict, list)):
            raise SeqlabError(f"{path}:{lineno}: {label_column!r} is a {type(label).__name__}")
        label = "" if label is None else str(label).strip()
        if not label:
            raise SeqlabError(
                f"{path}:{lineno}: row has no label; fill in {label_column!r} or delete it"
            )
        example["label"] = label
    return example


def iter_table(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    encoding: str = "utf-8",
    fmt: str | None = None,
) -> Iterator[Example]:
    """Stream examples from a .csv/.tsv/.jsonl/.ndjson file (optionally .gz).

    `fmt` ("csv", "tsv", "jsonl") overrides the extension. `label_column=None` reads
    unlabeled text (for prediction): examples then only carry "text".
    """
    path = Path(path)
    fmt = fmt or _table_format(path)
    if fmt == "jsonl":
        records = _json_records(path, encoding, text_column, label_column)
    else:
        records = _delimited_records(
            path, encoding, "\t" if fmt == "tsv" else ",", text_column, label_column
        )
    for lineno, record in records:
        yield _example(path, lineno, record, text_column, label_column)


def read_table(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    encoding: str = "utf-8",
    fmt: str | None = None,
) -> list[Example]:
    """All examples of a table file; see `iter_table`."""
    return list(
        iter_table(
            path, text_column=text_column, label_column=label_column, encoding=encoding, fmt=fmt
        )
    )


# --- fastText -------------------------------------------------------------------------


def iter_fasttext(path: str | Path, encoding: str = "utf-8") -> Iterator[Example]:
    """Stream `__label__X [__label__Y ...] text` lines; the first label is the label."""
    path = Path(path)
    seen = False
    for lineno, line in iter_lines(path, encoding, keepends=False):
        if not line.strip():
            continue
        seen = True
        match = _FASTTEXT_LINE.fullmatch(line)
        if match is None:
            raise SeqlabError(
                f"{path}:{lineno}: no {LABEL_PREFIX}LABEL; write '__label__pos some text'"
            )
        label = match.group(1).split()[0].removeprefix(LABEL_PREFIX)
        text = match.group(2).strip()
        if not label:
            raise SeqlabError(f"{path}:{lineno}: empty label; write {LABEL_PREFIX}NAME")
        if not text:
            raise SeqlabError(f"{path}:{lineno}: row has no text; fill it in or delete the line")
        yield {"text": text, "label": label}
    if not seen:
        raise SeqlabError(f"{path}: file is empty")


def read_fasttext(path: str | Path, encoding: str = "utf-8") -> list[Example]:
    """All examples of a fastText-format file; see `iter_fasttext`."""
    return list(iter_fasttext(path, encoding))


# --- folder per class (directory, tar or zip) -----------------------------------------

# A member of a folder or archive: its path parts and a function returning its bytes. The
# function is only valid during iteration (a streamed tar cannot go back).
Member = tuple[tuple[str, ...], Callable[[], bytes]]


def _wanted(parts: tuple[str, ...]) -> bool:
    """Could this member be a labeled text? Cheap test before reading any bytes."""
    return (
        2 <= len(parts) <= 4
        and parts[-1].endswith(".txt")
        and parts[-2] != "unsup"  # IMDB's unlabeled reviews
        and not any(p.startswith(".") or p == "__MACOSX" for p in parts)
    )


def _members(path: Path) -> Iterator[Member]:
    """Members of a directory, zip or tar (tar: streamed in one pass, never extracted)."""
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d != "unsup" and not d.startswith(".")]
            rel = Path(root).relative_to(path).parts
            for name in files:
                full = Path(root, name)
                yield (*rel, name), full.read_bytes
    elif path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield tuple(info.filename.strip("/").split("/")), lambda i=info: archive.read(i)
    else:
        with _open_decompressed(path) as raw, tarfile.open(fileobj=raw, mode="r|") as archive:
            for member in archive:
                if member.isfile():
                    parts = tuple(p for p in member.name.split("/") if p not in ("", "."))
                    yield parts, lambda m=member: archive.extractfile(m).read()  # type: ignore[union-attr]
            # tarfile quietly stops where a cut stream ends; reading the compressed stream
            # to its end makes gzip/bz2/xz raise EOFError (and check the CRC) instead.
            while raw.read(_CHUNK):
                pass


def _open_decompressed(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it starts with a gzip/bz2/xz signature."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    for magic, opener in _OPENERS.items():
        if head.startswith(magic):
            return opener(path, "rb")
    return open(path, "rb")


def _collect(path: Path, encoding: str) -> list[tuple[tuple[str, ...], str]]:
    """Read and decode every candidate .txt member."""
    codec = codec_name(encoding)
    found = []
    for parts, read in _members(path):
        if not _wanted(parts):
            continue
        data = read()
        try:
            found.append((parts, data.decode(codec).removeprefix("\ufeff")))
        except UnicodeDecodeError as err:
            where = f"{path}: {'/'.join(parts)}: line {line_of(data, err.start)}"
            raise decode_error(where, err.start, data[err.start], encoding, False) from None
    return found


def _assign(
    found: list[tuple[tuple[str, ...], str]],
) -> list[tuple[str, str, tuple[str, ...], str]]:
    """Pick the layout and return (split, label, parts, text) for the members in it.

    SPLIT/LABEL/*.txt wins when any member fits it (files beside the label folders, such
    as IMDB's urls_*.txt, are then ignored); otherwise LABEL/*.txt, under one optional
    top folder.
    """
    split_layout = [f for f in found if len(f[0]) >= 3 and f[0][-3].lower() in SPLIT_NAMES]
    if split_layout:
        return [(SPLIT_NAMES[p[-3].lower()], p[-2], p, t) for p, t in split_layout]
    deep = [f for f in found if len(f[0]) == 3]
    chosen = deep if len({p[0] for p, _ in deep}) == 1 else [f for f in found if len(f[0]) == 2]
    return [("train", p[-2], p, t) for p, t in chosen]


def read_folder_per_class(path: str | Path, encoding: str = "utf-8") -> dict[str, list[Example]]:
    """Read `[top/]split/label/*.txt` or `[top/]label/*.txt` from a folder or archive.

    Archives (.tar.gz, .tgz, .tar, .zip) are read in place. Examples are
    {"text", "label", "source": member path}, sorted by (label, file name) within each
    split so the result does not depend on archive order; shuffle before training.
    """
    path = Path(path)
    if not path.exists():
        raise SeqlabError(f"{path}: no such file or folder")
    if path.is_dir():
        found = _collect(path, encoding)
    else:
        with corrupt_as_error(path, "archive"):
            found = _collect(path, encoding)
    splits: dict[str, list[Example]] = {}
    for split, label, parts, text in _assign(found):
        if not text.strip():
            raise SeqlabError(f"{path}: {'/'.join(parts)}: file is empty; delete it or add text")
        splits.setdefault(split, []).append(
            {"text": text.strip(), "label": label, "source": "/".join(parts)}
        )
    if not splits:
        raise SeqlabError(f"{path}: no label folders with .txt files; {_LAYOUT_HELP}")
    for examples in splits.values():
        examples.sort(key=lambda e: (e["label"], e["source"].rsplit("/", 1)[-1], e["source"]))
    return splits


# --- dispatch -------------------------------------------------------------------------


def guess_format(path: str | Path) -> str:
    """The format name for a path: a folder or archive, a table, or fastText text."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir() or name.endswith(ARCHIVE_SUFFIXES):
        return "folder"
    stem_suffix = os.path.splitext(name.removesuffix(".gz"))[1]
    if stem_suffix in TABLE_SUFFIXES:
        return TABLE_SUFFIXES[stem_suffix]
    if stem_suffix in FASTTEXT_SUFFIXES:
        return "fasttext"
    raise SeqlabError(
        f"{path}: cannot tell the format from the name; formats are: csv, tsv, jsonl "
        "(.ndjson), fasttext (.txt, .ft), folder (a folder, .tar.gz, .tgz, .tar, .zip); "
        "pass --format NAME"
    )


def read_classification(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    encoding: str = "utf-8",
    fmt: str | None = None,
) -> dict[str, list[Example]]:
    """Read labeled text in any supported format as {split: examples}.

    A single file gives {"train": [...]}; a folder/archive gives the splits it holds.
    `fmt` is one of FORMATS and overrides the guess from the path.
    """
    path = Path(path)
    if not path.exists():
        raise SeqlabError(f"{path}: no such file or folder")
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise SeqlabError(f"unknown format {fmt!r}; pass --format {' | '.join(FORMATS)}")
    if fmt == "folder":
        return read_folder_per_class(path, encoding)
    if fmt == "fasttext":
        return {"train": read_fasttext(path, encoding)}
    table = read_table(
        path, text_column=text_column, label_column=label_column, encoding=encoding, fmt=fmt
    )
    return {"train": table}
