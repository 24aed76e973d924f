"""Parallel text for translation: two aligned files (one sentence per line, gzip or plain)
or one TSV with a source and a target column. Examples are {"source": str, "target": str}.

Alignment is by line, so the readers refuse files whose line counts differ (saying both
counts) and empty lines on either side (saying file:line): either would silently pair
every later sentence with the wrong translation.
"""

from __future__ import annotations

from pathlib import Path

from seqlab.errors import SeqlabError
from seqlab.files import open_text_lines

_TSV_HEADERS = {("source", "target"), ("src", "tgt"), ("de", "en"), ("en", "de")}


def read_parallel(source: str | Path, target: str | Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    """Two line-aligned files -> [{"source", "target"}]."""
    source, target = Path(source), Path(target)
    src = [line for _, line in open_text_lines(source, encoding)]
    tgt = [line for _, line in open_text_lines(target, encoding)]
    # a final newline at the end of one file only is not a misalignment
    while src and tgt and len(src) != len(tgt) and not (src[-1].strip() and tgt[-1].strip()):
        if not src[-1].strip():
            src.pop()
        else:
            tgt.pop()
    if len(src) != len(tgt):
        raise SeqlabError(f"{source} has {len(src):,} lines but {target} has {len(tgt):,}; "
                          "parallel files must be aligned line by line")
    examples = []
    for lineno, (s, t) in enumerate(zip(src, tgt), 1):
        for path, text in ((source, s), (target, t)):
            if not text.strip():
                raise SeqlabError(f"{path}:{lineno}: empty line; every line needs a sentence on both sides "
                                  "(remove the pair from both files)")
        examples.append({"source": s.strip(), "target": t.strip()})
    if not examples:
        raise SeqlabError(f"{source}: file is empty")
    return examples


def read_parallel_tsv(path: str | Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    """`source<TAB>target` per line (an optional header line such as `source<TAB>target`)."""
    path = Path(path)
    examples = []
    for lineno, line in open_text_lines(path, encoding):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != 2:
            raise SeqlabError(f"{path}:{lineno}: expected 2 tab-separated columns (source, target), "
                              f"found {len(cells)}")
        s, t = (c.strip() for c in cells)
        if lineno == 1 and (s.lower(), t.lower()) in _TSV_HEADERS:
            continue
        if not s or not t:
            raise SeqlabError(f"{path}:{lineno}: empty {'source' if not s else 'target'} column")
        examples.append({"source": s, "target": t})
    if not examples:
        raise SeqlabError(f"{path}: no sentence pairs")
    return examples


def find_side(folder: Path, stem: str) -> Path:
    """`stem` or `stem.gz` in folder (publishers ship either)."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise SeqlabError(f"{folder}: missing {stem}(.gz)")
