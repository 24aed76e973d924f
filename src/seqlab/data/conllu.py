"""Readers for token-level tagging data: CoNLL-U and two-column `token<TAB>tag` files.

Both stream sentences as {"tokens": [...], "tags": [...], "id": ...}, one tag per token.
Files may be gzipped; encodings, decompression and decode errors are handled by
`open_text_lines`, so every problem is one SeqlabError naming file:line and what was expected.

CoNLL-U (https://universaldependencies.org/format.html): ten tab-separated columns per word,
`# sent_id = ...` comments, blank lines between sentences. Multiword-token ranges (`1-2`
"don't") and empty nodes (`8.1`) are not words of the syntactic tokenization the tags belong
to, so they are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from seqlab.errors import SeqlabError
from seqlab.files import open_text_lines

Sentence = dict  # {"tokens": list[str], "tags": list[str], "id": str}
# CoNLL-U column index (0-based) of each tag set a user can choose.
TAG_COLUMNS = {"upos": 3, "xpos": 4}
TAG_FORMATS = ("conllu", "tsv")  # tsv = two columns: token<TAB>tag
N_COLUMNS = 10
_RANGE = re.compile(r"\d+-\d+")
_EMPTY_NODE = re.compile(r"\d+\.\d+")
_SENT_ID = re.compile(r"#\s*sent_id\s*=\s*(.*\S)")


def check_tag_column(tag_column: str) -> int:
    if tag_column not in TAG_COLUMNS:
        raise SeqlabError(
            f"unknown tag column {tag_column!r}; choose one of: {', '.join(TAG_COLUMNS)}"
        )
    return TAG_COLUMNS[tag_column]


def _columns_error(path: Path, lineno: int, line: str, expected: str, found: int) -> SeqlabError:
    hint = "; separate columns with tabs, not spaces" if found == 1 and " " in line.strip() else ""
    return SeqlabError(
        f"{path}:{lineno}: expected {expected} tab-separated columns, found {found}{hint}"
    )


def iter_conllu(
    path: str | Path, *, tag_column: str = "upos", encoding: str = "utf-8"
) -> Iterator[Sentence]:
    """Stream the sentences of a CoNLL-U file (`.gz` or not) with UPOS or XPOS tags."""
    path = Path(path)
    column = check_tag_column(tag_column)
    tokens: list[str] = []
    tags: list[str] = []
    sent_id: str | None = None
    start = 0  # line of the sentence's first word (its id when it has no sent_id comment)
    seen = False

    def sentence() -> Sentence:
        return {"tokens": tokens, "tags": tags, "id": sent_id or f"{path.name}:{start}"}

    for lineno, line in open_text_lines(path, encoding):
        if not line.strip():
            if tokens:
                seen = True
                yield sentence()
            tokens, tags, sent_id = [], [], None
            continue
        if line.startswith("#"):
            if tokens:  # a comment after words starts the next sentence (blank line missing)
                seen = True
                yield sentence()
                tokens, tags, sent_id = [], [], None
            match = _SENT_ID.match(line)
            if match:
                sent_id = match.group(1)
            continue
        fields = line.split("\t")
        if len(fields) != N_COLUMNS:
            raise _columns_error(path, lineno, line, str(N_COLUMNS), len(fields))
        index = fields[0]
        if _RANGE.fullmatch(index) or _EMPTY_NODE.fullmatch(index):
            continue
        if not index.isdigit():
            raise SeqlabError(
                f"{path}:{lineno}: expected a word index (1, 2, ...) in column 1, found {index!r}"
            )
        if int(index) != len(tokens) + 1:
            raise SeqlabError(
                f"{path}:{lineno}: expected word index {len(tokens) + 1}, found {index}; "
                "is a blank line missing between sentences?"
            )
        form, tag = fields[1], fields[column].strip()
        if not form.strip():
            raise SeqlabError(f"{path}:{lineno}: expected a word form in column 2, found nothing")
        if tag in ("", "_"):
            other = "xpos" if tag_column == "upos" else "upos"
            raise SeqlabError(
                f"{path}:{lineno}: expected a {tag_column.upper()} tag in column {column + 1}, "
                f"found {tag or 'nothing'!r}; this file may lack them (try --tag-column {other})"
            )
        if not tokens:
            start = lineno
        tokens.append(form)
        tags.append(tag)
    if tokens:
        seen = True
        yield sentence()
    if not seen:
        raise SeqlabError(f"{path}: no sentences; expected CoNLL-U lines of {N_COLUMNS} columns")


def iter_token_tag(path: str | Path, *, encoding: str = "utf-8") -> Iterator[Sentence]:
    """Stream sentences of a two-column file: `token<TAB>tag` per line, blank lines between
    sentences (the CoNLL-2000/2003 layout with exactly two columns)."""
    path = Path(path)
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    seen = False
    for lineno, line in open_text_lines(path, encoding):
        if not line.strip():
            if tokens:
                seen = True
                yield {"tokens": tokens, "tags": tags, "id": f"{path.name}:{start}"}
            tokens, tags = [], []
            continue
        fields = line.split("\t")
        if len(fields) == 1 or (len(fields) == 2 and not fields[1].strip()):
            if " " not in line.strip():  # a token alone: its tag is missing
                raise SeqlabError(
                    f"{path}:{lineno}: token {fields[0].strip()!r} has no tag; the sentence has "
                    f"{len(tokens) + 1} tokens but {len(tokens)} tags (expected token<TAB>tag)"
                )
            raise _columns_error(path, lineno, line, "2 (token, tag)", len(fields))
        if len(fields) != 2:
            raise _columns_error(path, lineno, line, "2 (token, tag)", len(fields))
        token, tag = fields[0].strip(), fields[1].strip()
        if not token:
            raise SeqlabError(f"{path}:{lineno}: tag {tag!r} has no token (expected token<TAB>tag)")
        if not tokens:
            start = lineno
        tokens.append(token)
        tags.append(tag)
    if tokens:
        seen = True
        yield {"tokens": tokens, "tags": tags, "id": f"{path.name}:{start}"}
    if not seen:
        raise SeqlabError(f"{path}: no sentences; expected token<TAB>tag lines")


def guess_tag_format(path: str | Path) -> str:
    """conllu for .conllu / .conllx (optionally .gz), else the two-column format."""
    name = Path(path).name.lower().removesuffix(".gz")
    return "conllu" if name.endswith((".conllu", ".conllx")) else "tsv"


def read_tagging(
    path: str | Path, *, fmt: str | None = None, tag_column: str = "upos", encoding: str = "utf-8"
) -> list[Sentence]:
    """All sentences of a tagging file; `fmt` (conllu | tsv) overrides the guess by name."""
    path = Path(path)
    if path.is_dir():
        raise SeqlabError(f"{path}: is a folder; give a .conllu or token<TAB>tag file")
    fmt = fmt or guess_tag_format(path)
    if fmt == "conllu":
        return list(iter_conllu(path, tag_column=tag_column, encoding=encoding))
    if fmt == "tsv":
        return list(iter_token_tag(path, encoding=encoding))
    raise SeqlabError(f"unknown tagging format {fmt!r}; pass --format {' or '.join(TAG_FORMATS)}")


UD_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def read_ud_folder(
    path: str | Path, prefix: str, *, tag_column: str = "upos", encoding: str = "utf-8"
) -> dict[str, list[Sentence]]:
    """A UD treebank folder: {prefix}-{train,dev,test}.conllu(.gz) -> {train, validation, test}."""
    path = Path(path)
    splits: dict[str, list[Sentence]] = {}
    for part, split in UD_SPLITS.items():
        for name in (f"{prefix}-{part}.conllu", f"{prefix}-{part}.conllu.gz"):
            if (path / name).is_file():
                splits[split] = read_tagging(path / name, fmt="conllu", tag_column=tag_column,
                                             encoding=encoding)
                break
    if "train" not in splits:
        raise SeqlabError(
            f"{path}: no {prefix}-train.conllu(.gz); expected {prefix}-{{train,dev,test}}.conllu"
        )
    return splits
