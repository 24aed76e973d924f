"""Named datasets: where to find them, where to get them, how to read them.

`resolve(name)` looks, in order, in the data dir (argument, else $SEQLAB_DATA_DIR), in
the cache ($SEQLAB_CACHE_DIR or ~/.cache/seqlab, laid out as `<name>/<filename>`), and
finally downloads the publisher's files into the cache: with a progress bar on stderr,
into a temp file beside the target, checked against the published sha256, then renamed
into place (atomic, so the cache never holds a half file). Files found in a data dir are
the user's own copies and are not checksummed (re-packs such as ../shared/data's IMDB
have other checksums than the published archive).

Adding a dataset is one entry in DATASETS: its published files, the local names to look for,
its reader (`loader`) and the task shapes it is made for.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seqlab.data.formats import Example, read_folder_per_class
from seqlab.data.splits import stratified_split
from seqlab.errors import SeqlabError
from seqlab.files import open_text_lines

log = logging.getLogger(__name__)
NAMES_SPLIT_SEED = 0  # fixed, independent of any training seed: every task shares one split
_CHUNK = 1 << 20
_TIMEOUT_S = 60


@dataclass(frozen=True)
class RemoteFile:
    """One published file; sha256=None means no published checksum was found."""

    url: str
    filename: str
    sha256: str | None


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: its published files, local names to look for, and its reader."""

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    # Paths tried under a data dir, first match wins (archives or extracted folders).
    local_names: tuple[str, ...]
    # Reads the resolved path into {split: examples}; None = resolve-only for now.
    loader: Callable[[Path], dict[str, list[Example]]] | None = None
    # Task shapes the loader's examples are made for (checked before anything is read).
    tasks: tuple[str, ...] = ()
    # Label columns the loader can read (its `label_column` keyword), the default first;
    # empty = one label only. `load_dataset(..., label_column=...)` checks against these.
    label_columns: tuple[str, ...] = ()


# --- loaders --------------------------------------------------------------------------


def _load_imdb(path: Path) -> dict[str, list[Example]]:
    """{"train": 25k, "test": 25k}, labels "neg"/"pos"; the caller carves validation."""
    splits = read_folder_per_class(path)
    missing = {"train", "test"} - set(splits)
    if missing:
        raise SeqlabError(
            f"{path}: no {'/'.join(sorted(missing))} split; expected aclImdb/{{train,test}}/{{neg,pos}}/*.txt"
        )
    return {"train": splits["train"], "test": splits["test"]}


def _names_from_zip(path: Path) -> dict[str, list[str]]:
    """Language -> names from the tutorial's data.zip (members data/names/<Language>.txt)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.endswith(".txt") and "/names/" in f"/{n}"]
            return {Path(n).stem: archive.read(n).decode("utf-8").splitlines() for n in members}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise SeqlabError(
            f"{path}: archive is truncated or corrupt ({err}); download it again"
        ) from None
    except UnicodeDecodeError as err:
        raise SeqlabError(f"{path}: a names file is not valid utf-8 ({err.reason})") from None


def _names_source(path: Path) -> dict[str, list[str]]:
    """Language -> names from a folder of <Language>.txt, data.zip, or a folder holding either."""
    if path.is_file():
        return _names_from_zip(path)
    if any(path.glob("*.txt")):
        return {f.stem: [line for _, line in open_text_lines(f)] for f in path.glob("*.txt")}
    for inner in (path / "data.zip", path / "data" / "names", path / "names"):
        if inner.exists():
            return _names_source(inner)
    raise SeqlabError(
        f"{path}: no <Language>.txt files or data.zip; expected the tutorial's data/names/*.txt"
    )


def _load_names(path: Path) -> dict[str, list[Example]]:
    """{"text": name, "label": language}, split 80/10/10 by language with a fixed seed.

    Names are kept as published (20,074 lines, duplicates included), in language order
    then file order, so the folder and the zip give the same split. For the generate
    direction (language -> name) remap with `as_generate` below.
    """
    by_language = _names_source(path)
    examples = [
        {"text": name.strip(), "label": language}
        for language in sorted(by_language)
        for name in by_language[language]
        if name.strip()
    ]
    if not examples:
        raise SeqlabError(f"{path}: the names files are empty")
    return stratified_split(examples, (0.8, 0.1, 0.1), seed=NAMES_SPLIT_SEED)


def _load_ud_ewt(path: Path, tag_column: str = "upos") -> dict[str, list[dict]]:
    """{"train", "validation", "test"} sentences {"tokens", "tags", "id"} (UPOS by default)."""
    from seqlab.data.conllu import read_ud_folder

    return read_ud_folder(path, "en_ewt-ud", tag_column=tag_column)


def _load_tinyshakespeare(path: Path) -> dict[str, str]:
    """{"train": first 90% of the characters, "validation": the last 10%} (nanoGPT's split).

    Splits are plain text, not examples: the lm task streams them as one corpus each."""
    from seqlab.files import read_text

    text = read_text(path / "input.txt" if path.is_dir() else path)
    cut = int(len(text) * 0.9)
    return {"train": text[:cut], "validation": text[cut:]}


def _load_multi30k(path: Path) -> dict[str, list[dict[str, str]]]:
    """German -> English {"source", "target"} pairs: train 29,000, validation 1,014 (val),
    test 1,000 (test_2016_flickr), raw text as published."""
    from seqlab.data.parallel import find_side, read_parallel

    folder = path if path.is_dir() else path.parent
    return {
        split: read_parallel(find_side(folder, f"{stem}.de"), find_side(folder, f"{stem}.en"))
        for split, stem in (("train", "train"), ("validation", "val"), ("test", "test_2016_flickr"))
    }


# The sentence-classification suite of Kim (2014): one sentence per line, a file per label
# (CR, MPQA, SUBJ) or `COARSE:fine question` lines (TREC), as FreedomIntelligence/qnn ships them.
_SENTENCE_FILES: dict[str, dict[str, str]] = {
    "cr": {"custrev.pos": "pos", "custrev.neg": "neg"},
    "mpqa": {"mpqa.pos": "pos", "mpqa.neg": "neg"},
    "subj": {"subj.subjective": "subjective", "subj.objective": "objective"},
}
TREC_LABEL_COLUMNS = ("coarse", "fine")  # "label" (the classify default) means coarse


def _sentence_file(folder: Path, filename: str) -> Path:
    """folder/filename, or its gzip copy; an error naming both when neither exists."""
    for candidate in (folder / filename, folder / f"{filename}.gz"):
        if candidate.is_file():
            return candidate
    raise SeqlabError(f"{folder}: no {filename} (or {filename}.gz); expected the publisher's files there")


def _read_sentences(path: Path, encoding: str = "utf-8") -> list[str]:
    """Non-empty lines, surrounding white space removed."""
    return [line.strip() for _, line in open_text_lines(path, encoding) if line.strip()]


def _sentence_loader(name: str) -> Callable[[Path], dict[str, list[Example]]]:
    files = _SENTENCE_FILES[name]

    def load(path: Path) -> dict[str, list[Example]]:
        """{"train": every sentence} (no official split: the caller carves validation, or
        cross-validates); labels in the order of the files, sentences in file order."""
        folder = path if path.is_dir() else path.parent
        examples = [
            {"text": text, "label": label}
            for filename, label in files.items()
            for text in _read_sentences(_sentence_file(folder, filename))
        ]
        if not examples:
            raise SeqlabError(f"{folder}: the {name} files are empty")
        return {"train": examples}

    load.__name__ = f"_load_{name}"
    return load


def _read_trec(path: Path, fine: bool) -> list[Example]:
    """`COARSE:fine question` lines (latin-1) -> {"text", "label"}; the fine label keeps its
    coarse prefix ("NUM:dist"), as fine names repeat across coarse types ("other")."""
    examples = []
    for number, line in open_text_lines(path, "latin-1"):
        if not line.strip():
            continue
        label, _, text = line.strip().partition(" ")
        coarse, colon, detail = label.partition(":")
        if not colon or not coarse or not detail or not text.strip():
            raise SeqlabError(
                f"{path}:{number}: expected 'COARSE:fine question', got {line.strip()[:60]!r}"
            )
        examples.append({"text": text.strip(), "label": label if fine else coarse})
    if not examples:
        raise SeqlabError(f"{path}: no questions in the file")
    return examples


def _load_trec(path: Path, label_column: str = "coarse") -> dict[str, list[Example]]:
    """{"train": 5,452, "test": 500} questions (TREC_10 is the official test set); the
    caller carves validation. label_column: "coarse" (6 types; "label" means the same) or
    "fine" (50 types, written "NUM:dist")."""
    if label_column not in ("label", *TREC_LABEL_COLUMNS):
        raise SeqlabError(
            f"trec has the label columns coarse (the default, 6 types) and fine (50 types), "
            f"not {label_column!r}"
        )
    folder = path if path.is_dir() else path.parent
    fine = label_column == "fine"
    return {
        "train": _read_trec(_sentence_file(folder, "train_5500.label"), fine),
        "test": _read_trec(_sentence_file(folder, "TREC_10.label"), fine),
    }


def as_generate(dataset: dict[str, list[Example]]) -> dict[str, list[dict[str, str]]]:
    """Classify-shaped {"text", "label"} -> generate-shaped {"condition": label, "text"}."""
    return {
        split: [{"condition": ex["label"], "text": ex["text"]} for ex in examples]
        for split, examples in dataset.items()
    }


# --- the table ------------------------------------------------------------------------

_MULTI30K = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"
_UD_EWT = "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/master/"
_QNN = "https://raw.githubusercontent.com/FreedomIntelligence/qnn/master/data/"
_SUITE_SOURCE = "(Kim 2014's preprocessing, via FreedomIntelligence/qnn)"

def _suite_spec(name: str, folder: str, description: str) -> DatasetSpec:
    """One of the suite's one-split sets (CR, MPQA, SUBJ): a file per class in the publisher's
    folder, read from sentence_benchmarks/<name> in a data dir."""
    return DatasetSpec(
        name=name,
        description=description,
        files=tuple(RemoteFile(_QNN + f"{folder}/{f}", f, None) for f in _SENTENCE_FILES[name]),
        local_names=(f"sentence_benchmarks/{name}", name, folder),
        loader=_sentence_loader(name),
        tasks=("classify",),
    )


DATASETS: dict[str, DatasetSpec] = {
    "imdb": DatasetSpec(
        name="imdb",
        description="IMDB movie reviews, sentiment neg/pos: 25k train + 25k test (Maas et al. 2011)",
        files=(
            RemoteFile(
                url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                filename="aclImdb_v1.tar.gz",
                # From TensorFlow Datasets' checksums.tsv for imdb_reviews (84,125,825 bytes).
                sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
            ),
        ),
        local_names=("imdb/aclImdb_v1.tar.gz", "aclImdb_v1.tar.gz", "imdb/aclImdb", "aclImdb"),
        loader=_load_imdb,
        tasks=("classify",),
    ),
    "names": DatasetSpec(
        name="names",
        description="20,074 surnames in 18 languages (PyTorch tutorial); split 80/10/10, seed 0",
        # No published checksum found for data.zip: the download logs that it is unverified.
        files=(RemoteFile("https://download.pytorch.org/tutorial/data.zip", "data.zip", None),),
        local_names=("names", "data/names", "names/data.zip", "data.zip"),
        loader=_load_names,
        tasks=("classify", "generate"),
    ),
    "tinyshakespeare": DatasetSpec(
        name="tinyshakespeare",
        description="Tiny Shakespeare, 1,115,394 characters (char-rnn); 90% train, 10% validation",
        files=(
            RemoteFile(
                url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                filename="input.txt",
                # From TensorFlow Datasets' checksums.tsv for tiny_shakespeare (1,115,394 bytes).
                sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            ),
        ),
        local_names=("tinyshakespeare/input.txt", "tinyshakespeare"),
        loader=_load_tinyshakespeare,
        tasks=("lm",),
    ),
    "multi30k": DatasetSpec(
        name="multi30k",
        description="Multi30k task 1 German->English image captions: 29,000 / 1,014 / 1,000 (test2016)",
        files=tuple(
            RemoteFile(_MULTI30K + f"{split}.{lang}.gz", f"{split}.{lang}.gz", None)
            for split in ("train", "val", "test_2016_flickr")
            for lang in ("de", "en")
        ),
        local_names=("multi30k",),
        loader=_load_multi30k,
        tasks=("translate",),
    ),
    "ud-ewt": DatasetSpec(
        name="ud-ewt",
        description="UD English Web Treebank (UPOS tagging), CoNLL-U, about 12.5k/2k/2k sentences",
        # The main branch moves, so there is no fixed checksum to publish.
        files=tuple(
            RemoteFile(_UD_EWT + f"en_ewt-ud-{split}.conllu", f"en_ewt-ud-{split}.conllu", None)
            for split in ("train", "dev", "test")
        ),
        local_names=("ud_english_ewt", "ud-ewt", "UD_English-EWT"),
        loader=_load_ud_ewt,
        tasks=("tag",),
    ),
    # The sentence-classification suite (Kim 2014). No published checksums: unverified downloads.
    "cr": _suite_spec("cr", "CR", f"CR customer reviews, polarity pos/neg: 2,405 + 1,366 sentences, no split {_SUITE_SOURCE}"),
    "mpqa": _suite_spec("mpqa", "MPQA", f"MPQA opinion polarity pos/neg: 3,311 + 7,292 phrases, no split {_SUITE_SOURCE}"),
    "subj": _suite_spec("subj", "SUBJ", f"SUBJ subjectivity: 5,000 subjective + 5,000 objective sentences, no split {_SUITE_SOURCE}"),
    "trec": DatasetSpec(
        name="trec",
        description=f"TREC question type: 5,452 train / 500 test, 6 coarse types (or 50 fine) {_SUITE_SOURCE}",
        files=tuple(
            RemoteFile(_QNN + f"TREC/{f}", f, None) for f in ("train_5500.label", "TREC_10.label")
        ),
        local_names=("sentence_benchmarks/trec", "trec", "TREC"),
        loader=_load_trec,
        tasks=("classify",),
        label_columns=TREC_LABEL_COLUMNS,
    ),
}


def check_task(name: str, task: str) -> None:
    """Refuse, before reading anything, a named dataset that is not made for `task`."""
    spec = get_spec(name)
    if task not in spec.tasks:
        fitting = [n for n, other in DATASETS.items() if task in other.tasks]
        raise SeqlabError(
            f"{name} is a dataset for --task {' / '.join(spec.tasks) or '(none yet)'}, not {task}; "
            f"datasets for {task}: {', '.join(fitting) or 'none yet'} (or give a file)"
        )


# --- resolving ------------------------------------------------------------------------


def cache_dir() -> Path:
    """$SEQLAB_CACHE_DIR, else ~/.cache/seqlab."""
    return Path(os.environ.get("SEQLAB_CACHE_DIR") or Path.home() / ".cache" / "seqlab")


def get_spec(name: str) -> DatasetSpec:
    """The spec for a name, or an error listing the names there are."""
    if name not in DATASETS:
        raise SeqlabError(f"unknown dataset {name!r}; datasets are: {', '.join(DATASETS)}")
    return DATASETS[name]


def _find_in(spec: DatasetSpec, folder: Path) -> Path | None:
    """The first of spec.local_names that exists under folder."""
    for local in spec.local_names:
        if (folder / local).exists():
            return folder / local
    return None


def _cache_target(spec: DatasetSpec) -> Path:
    """What the cache resolves to: the file for one-file datasets, else their folder."""
    folder = cache_dir() / spec.name
    return folder / spec.files[0].filename if len(spec.files) == 1 else folder


def _in_cache(spec: DatasetSpec) -> bool:
    return all((cache_dir() / spec.name / f.filename).is_file() for f in spec.files)


def _locate(spec: DatasetSpec, data_dir: str | Path | None) -> tuple[Path | None, str]:
    """(path, where) without downloading; where is "data dir", "cache" or "download"."""
    if data_dir is not None:
        found = _find_in(spec, Path(data_dir))
        if found is None:
            looked = ", ".join(spec.local_names)
            raise SeqlabError(
                f"{spec.name}: not found in --data-dir {data_dir} (looked for {looked}); "
                "put the publisher's files there or leave out --data-dir to download"
            )
        return found, "data dir"
    env_dir = os.environ.get("SEQLAB_DATA_DIR")
    if env_dir and not Path(env_dir).is_dir():
        raise SeqlabError(f"SEQLAB_DATA_DIR={env_dir}: no such folder; point it at the folder with the "
                          "publishers' files, or unset it to use the cache and downloads")
    if env_dir:  # unlike an explicit --data-dir, this may lack some datasets
        found = _find_in(spec, Path(env_dir))
        if found is not None:
            return found, "data dir"
    if _in_cache(spec):
        return _cache_target(spec), "cache"
    return None, "download"


def _download(remote: RemoteFile, target: Path, progress: bool) -> None:
    """Fetch url into a temp file beside target, check sha256, rename atomically."""
    from tqdm import tqdm  # only needed when downloading

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(remote.url, timeout=_TIMEOUT_S) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=remote.filename,
                    file=sys.stderr,
                    disable=not progress,
                ) as bar:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        bar.update(len(chunk))
        if total is not None and size != total:
            raise SeqlabError(
                f"{remote.url}: download cut short ({size} of {total} bytes); try again"
            )
        got = digest.hexdigest()
        if remote.sha256 is None:
            log.warning(
                "%s: no published sha256 to check it against (got %s); not verified",
                remote.url,
                got,
            )
        elif got != remote.sha256.lower():
            raise SeqlabError(
                f"{remote.url}: checksum mismatch: expected sha256 {remote.sha256}, got {got}; "
                "nothing was kept; try again later or download it yourself and pass --data-dir"
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        reason = err if isinstance(err, urllib.error.HTTPError) else getattr(err, "reason", err)
        raise SeqlabError(
            f"could not download {remote.url} ({reason}); check the network, or download "
            "it yourself and pass --data-dir DIR"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
        try:
            target.parent.rmdir()  # only succeeds when empty: a failed first download
        except OSError:
            pass


def resolve(
    name: str, data_dir: str | Path | None = None, *, download: bool = True, progress: bool = True
) -> Path:
    """The local path of a named dataset: data dir, then cache, then a download."""
    spec = get_spec(name)
    found, _ = _locate(spec, data_dir)
    if found is not None:
        return found
    if not download:
        raise SeqlabError(
            f"{name}: not found locally; run `seqlab datasets --fetch {name}` or pass --data-dir DIR"
        )
    for remote in spec.files:
        target = cache_dir() / spec.name / remote.filename
        if not target.is_file():
            _download(remote, target, progress)
    return _cache_target(spec)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    progress: bool = True,
    label_column: str | None = None,
) -> dict[str, list[Example]]:
    """Resolve a named dataset and read it into {split: examples}.

    label_column picks which labels a dataset with several reads (TREC: "coarse" or
    "fine"); None or "label" (DataConfig's default) is the dataset's own default. Checked
    before anything is resolved or downloaded."""
    spec = get_spec(name)
    if spec.loader is None:
        raise SeqlabError(
            f"{name}: not readable with load_dataset yet; use resolve({name!r}) for its path"
        )
    options = {}
    if label_column not in (None, "label"):
        if label_column not in spec.label_columns:
            has = f"label columns {', '.join(spec.label_columns)}" if spec.label_columns else "one label only"
            with_columns = [n for n, other in DATASETS.items() if other.label_columns]
            raise SeqlabError(
                f"{name} has {has}, not {label_column!r}"
                + (f" (datasets with several: {', '.join(with_columns)})" if with_columns else "")
            )
        options["label_column"] = label_column
    return spec.loader(resolve(name, data_dir, download=download, progress=progress), **options)


def describe(data_dir: str | Path | None = None) -> list[dict[str, str]]:
    """One row per dataset for `seqlab datasets`, without downloading.

    Keys: name, description, source ("data dir", "cache", "download" or "missing from data
    dir") and where (the path it resolves to now, or the URL it would download from).
    """
    rows = []
    for spec in DATASETS.values():
        try:
            found, source = _locate(spec, data_dir)
        except SeqlabError:  # an explicit data dir lacking this one: say so, keep listing
            found, source = None, "missing from data dir"
        if found is not None:
            where = str(found)
        else:  # several files: name their common folder rather than every URL
            url = (
                spec.files[0].url
                if len(spec.files) == 1
                else spec.files[0].url.rsplit("/", 1)[0] + "/"
            )
            where = f"not found: will download from {url}"
        rows.append(
            {"name": spec.name, "description": spec.description, "source": source, "where": where}
        )
    return rows
