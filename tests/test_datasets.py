"""Named datasets (resolve order, download, checksums) and the split helpers."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import socket
import threading
import zipfile
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from seqlab.data import datasets
from seqlab.data.datasets import (
    DATASETS,
    RemoteFile,
    as_generate,
    cache_dir,
    describe,
    load_dataset,
    resolve,
)
from seqlab.data.splits import carve_validation, stratified_split
from seqlab.errors import SeqlabError

LANGUAGES = {"Alpha": 30, "Beta": 20, "Gamma": 10}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No real cache, no data dir from the shell, and no proxy for 127.0.0.1."""
    monkeypatch.setenv("SEQLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SEQLAB_DATA_DIR", raising=False)
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "*")


def make_names_zip(path: Path, languages: dict[str, int] = LANGUAGES) -> Path:
    """A small stand-in for the tutorial's data.zip: data/names/<Language>.txt."""
    with zipfile.ZipFile(path, "w") as archive:
        for language, count in languages.items():
            names = "".join(f"{language[:2]}name{i}\n" for i in range(count))
            archive.writestr(f"data/names/{language}.txt", names)
    return path


class QuietHandler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        QuietHandler.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    QuietHandler.requests = []
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def point_names_at(monkeypatch, url: str, sha256: str | None) -> None:
    spec = dataclasses.replace(DATASETS["names"], files=(RemoteFile(url, "data.zip", sha256),))
    monkeypatch.setitem(DATASETS, "names", spec)


# --- resolving ------------------------------------------------------------------------


def test_unknown_name_lists_names():
    with pytest.raises(SeqlabError) as err:
        resolve("imbd")
    assert "unknown dataset 'imbd'" in str(err.value)
    for name in ("imdb", "names", "tinyshakespeare", "multi30k", "ud-ewt"):
        assert name in str(err.value)


def test_cache_dir(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("SEQLAB_CACHE_DIR")
    assert cache_dir() == Path.home() / ".cache" / "seqlab"


def test_resolve_from_data_dir_and_env(shared_data, monkeypatch):
    expected = shared_data / "imdb" / "aclImdb_v1.tar.gz"
    assert resolve("imdb", shared_data) == expected
    assert resolve("names", shared_data) == shared_data / "names"
    assert resolve("tinyshakespeare", shared_data) == shared_data / "tinyshakespeare" / "input.txt"
    assert resolve("ud-ewt", shared_data) == shared_data / "ud_english_ewt"
    monkeypatch.setenv("SEQLAB_DATA_DIR", str(shared_data))
    assert resolve("imdb", download=False) == expected


def test_explicit_data_dir_without_dataset(tmp_path):
    with pytest.raises(SeqlabError) as err:
        resolve("imdb", tmp_path)
    message = str(err.value)
    assert f"not found in --data-dir {tmp_path}" in message
    assert "imdb/aclImdb_v1.tar.gz, aclImdb_v1.tar.gz, imdb/aclImdb, aclImdb" in message


def test_env_data_dir_falls_through(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQLAB_DATA_DIR", str(tmp_path / "missing"))  # a typo is said, not downloaded past
    with pytest.raises(SeqlabError, match="SEQLAB_DATA_DIR=.*missing: no such folder"):
        resolve("imdb", download=False)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("SEQLAB_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(SeqlabError, match="imdb: not found locally.*--data-dir"):
        resolve("imdb", download=False)
    cached = cache_dir() / "imdb" / "aclImdb_v1.tar.gz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert resolve("imdb", download=False) == cached


def test_describe_does_not_download(shared_data, tmp_path):
    rows = {row["name"]: row for row in describe()}
    assert set(rows) == set(DATASETS)
    assert rows["imdb"]["source"] == "download"
    assert rows["imdb"]["where"] == (
        "not found: will download from "
        "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    )
    assert not (tmp_path / "cache").exists()
    rows = {row["name"]: row for row in describe(shared_data)}
    assert rows["imdb"]["where"] == str(shared_data / "imdb" / "aclImdb_v1.tar.gz")
    assert rows["multi30k"]["source"] == "data dir"


def test_every_dataset_is_readable_and_declares_its_tasks():
    for spec in DATASETS.values():
        assert spec.loader is not None and spec.tasks


def test_checksums_are_hex_or_none():
    for spec in DATASETS.values():
        for remote in spec.files:
            assert remote.sha256 is None or len(bytes.fromhex(remote.sha256)) == 32


# --- real data ------------------------------------------------------------------------


def test_load_imdb(imdb_real):
    assert set(imdb_real) == {"train", "test"}
    assert len(imdb_real["train"]) == len(imdb_real["test"]) == 25000


def test_load_names_real_folder_and_zip_agree(shared_data, tmp_path):
    data = load_dataset("names", shared_data)
    sizes = {split: len(rows) for split, rows in data.items()}
    assert sum(sizes.values()) == 20074
    assert sizes == {"train": 16059, "validation": 2008, "test": 2007}
    for rows in data.values():
        assert len({e["label"] for e in rows}) == 18
    zipped = tmp_path / "data.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted((shared_data / "names").glob("*.txt")):
            archive.write(path, f"data/names/{path.name}")
    assert load_dataset("names", tmp_path) == data  # same split from the zip
    assert load_dataset("names", shared_data) == data  # and again: fixed seed


def test_as_generate():
    data = {"train": [{"text": "Nakamura", "label": "Japanese"}]}
    assert as_generate(data) == {"train": [{"condition": "Japanese", "text": "Nakamura"}]}


# --- downloading ----------------------------------------------------------------------


def test_download_checks_sha_and_lands_in_cache(server, monkeypatch):
    root, base = server
    payload = make_names_zip(root / "data.zip").read_bytes()
    point_names_at(monkeypatch, f"{base}/data.zip", hashlib.sha256(payload).hexdigest())
    data = load_dataset("names", progress=False)
    assert Counter(e["label"] for e in data["train"]) == {"Alpha": 24, "Beta": 16, "Gamma": 8}
    cached = cache_dir() / "names" / "data.zip"
    assert cached.read_bytes() == payload
    assert [p.name for p in cached.parent.iterdir()] == ["data.zip"]  # no temp file left
    assert load_dataset("names") == data
    assert QuietHandler.requests == ["/data.zip"]  # second load came from the cache


def test_checksum_mismatch_leaves_nothing(server, monkeypatch):
    root, base = server
    payload = make_names_zip(root / "data.zip").read_bytes()
    point_names_at(monkeypatch, f"{base}/data.zip", "0" * 64)
    with pytest.raises(SeqlabError) as err:
        resolve("names", progress=False)
    message = str(err.value)
    assert f"{base}/data.zip" in message
    assert f"expected sha256 {'0' * 64}, got {hashlib.sha256(payload).hexdigest()}" in message
    folder = cache_dir() / "names"
    assert not folder.exists() or not any(folder.iterdir())


def test_unverified_download_warns(server, monkeypatch, caplog):
    root, base = server
    make_names_zip(root / "data.zip")
    point_names_at(monkeypatch, f"{base}/data.zip", None)
    with caplog.at_level(logging.WARNING, logger=datasets.__name__):
        path = resolve("names", progress=False)
    assert path == cache_dir() / "names" / "data.zip"
    assert "not verified" in caplog.text


def test_network_errors_name_url_and_data_dir(server, monkeypatch):
    _, base = server
    point_names_at(monkeypatch, f"{base}/missing.zip", None)
    with pytest.raises(SeqlabError, match=r"could not download .*missing\.zip.*404.*--data-dir"):
        resolve("names", progress=False)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data.zip"
    point_names_at(monkeypatch, url, None)
    with pytest.raises(SeqlabError) as err:
        resolve("names", progress=False)
    assert url in str(err.value) and "--data-dir" in str(err.value)
    assert not (cache_dir() / "names").exists()


# --- splits ---------------------------------------------------------------------------


def labeled(counts: dict[str, int]) -> list[dict[str, str]]:
    return [
        {"text": f"{label}{i}", "label": label} for label, n in counts.items() for i in range(n)
    ]


def test_carve_validation_is_stratified_and_deterministic():
    examples = labeled({"a": 90, "b": 10})
    train, val = carve_validation(examples, 0.1, seed=3)
    assert len(train) == 90 and len(val) == 10
    assert Counter(e["label"] for e in val) == {"a": 9, "b": 1}
    assert (train, val) == carve_validation(examples, 0.1, seed=3)
    assert val != carve_validation(examples, 0.1, seed=4)[1]
    assert sorted(e["text"] for e in train + val) == sorted(e["text"] for e in examples)
    assert [e["label"] for e in train] != sorted(e["label"] for e in train)  # shuffled


def test_carve_validation_small_and_bad_inputs():
    train, val = carve_validation(labeled({"a": 2, "b": 2}), 0.1)
    assert len(train) == 3 and len(val) == 1
    with pytest.raises(SeqlabError, match="too few examples"):
        carve_validation(labeled({"a": 1}))
    with pytest.raises(SeqlabError, match="between 0 and 1"):
        carve_validation(labeled({"a": 5}), 1.5)
    unlabeled = [{"text": str(i)} for i in range(10)]
    assert [len(part) for part in carve_validation(unlabeled, 0.2)] == [8, 2]


def test_stratified_split():
    parts = stratified_split(labeled({"a": 50, "b": 30, "c": 20}), seed=1)
    assert {k: len(v) for k, v in parts.items()} == {"train": 80, "validation": 10, "test": 10}
    assert Counter(e["label"] for e in parts["test"]) == {"a": 5, "b": 3, "c": 2}
    with pytest.raises(SeqlabError, match="add up to 1"):
        stratified_split(labeled({"a": 10}), (0.5, 0.1, 0.1))
    with pytest.raises(SeqlabError, match="too few examples"):
        stratified_split(labeled({"a": 2}))


# --- the sentence-classification suite (cr, mpqa, subj, trec) -------------------------

SUITE_SIZES = {"cr": 3771, "mpqa": 10603, "subj": 10000}


def test_suite_resolves_from_data_dir(shared_data):
    for name in ("cr", "mpqa", "subj", "trec"):
        assert resolve(name, shared_data) == shared_data / "sentence_benchmarks" / name
        assert DATASETS[name].tasks == ("classify",)


def test_load_suite_real(shared_data):
    for name, size in SUITE_SIZES.items():
        data = load_dataset(name, shared_data)
        assert set(data) == {"train"} and len(data["train"]) == size  # blank lines dropped
        assert len({e["label"] for e in data["train"]}) == 2
        assert all(e["text"] and e["text"] == e["text"].strip() for e in data["train"])
    assert Counter(e["label"] for e in load_dataset("subj", shared_data)["train"]) == {
        "subjective": 5000, "objective": 5000}


def test_load_trec_real_coarse_and_fine(shared_data):
    coarse = load_dataset("trec", shared_data)
    assert {k: len(v) for k, v in coarse.items()} == {"train": 5452, "test": 500}
    assert {e["label"] for e in coarse["train"]} == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    assert coarse["test"][0] == {"text": "How far is it from Denver to Aspen ?", "label": "NUM"}
    assert load_dataset("trec", shared_data, label_column="label") == coarse  # the classify default
    fine = load_dataset("trec", shared_data, label_column="fine")
    assert len({e["label"] for e in fine["train"]}) == 50
    assert fine["test"][0]["label"] == "NUM:dist"
    assert [e["text"] for e in fine["train"]] == [e["text"] for e in coarse["train"]]
    assert any("\u00e9" in e["text"] or "\u00f0" in e["text"] for e in coarse["train"])  # latin-1 read


def test_label_column_checked_before_reading(tmp_path):
    with pytest.raises(SeqlabError, match="trec has label columns coarse, fine, not 'coarse2'"):
        load_dataset("trec", tmp_path, label_column="coarse2")
    with pytest.raises(SeqlabError, match=r"cr has one label only, not 'fine' \(datasets with several: trec\)"):
        load_dataset("cr", tmp_path, label_column="fine")


TREC_TRAIN = "DESC:manner How did serfdom develop ?\nNUM:date When did Caf\xe9 open ?\nHUM:ind Who ?\n"


def test_trec_download_lands_in_cache(server, monkeypatch):
    root, base = server
    (root / "train_5500.label").write_bytes(TREC_TRAIN.encode("latin-1"))
    (root / "TREC_10.label").write_bytes(b"NUM:dist How far is it ?\n")
    files = tuple(RemoteFile(f"{base}/{f}", f, None) for f in ("train_5500.label", "TREC_10.label"))
    monkeypatch.setitem(DATASETS, "trec", dataclasses.replace(DATASETS["trec"], files=files))
    data = load_dataset("trec", progress=False)
    assert data["train"][1] == {"text": "When did Caf\xe9 open ?", "label": "NUM"}
    assert data["test"] == [{"text": "How far is it ?", "label": "NUM"}]
    assert resolve("trec", download=False) == cache_dir() / "trec"
    assert load_dataset("trec", label_column="fine")["train"][0]["label"] == "DESC:manner"
    assert sorted(QuietHandler.requests) == ["/TREC_10.label", "/train_5500.label"]  # once each


def test_suite_urls_point_at_the_publisher():
    for name, folder in (("cr", "CR"), ("mpqa", "MPQA"), ("subj", "SUBJ"), ("trec", "TREC")):
        for remote in DATASETS[name].files:
            assert remote.url == (
                "https://raw.githubusercontent.com/FreedomIntelligence/qnn/master/data/"
                f"{folder}/{remote.filename}"
            )


def test_suite_gzip_copies_and_missing_files(tmp_path):
    import gzip

    folder = tmp_path / "cr"
    folder.mkdir()
    with gzip.open(folder / "custrev.pos.gz", "wt") as f:
        f.write("i love it !\n\n")
    (folder / "custrev.neg").write_text("it broke .\n")
    data = load_dataset("cr", tmp_path)
    assert data == {"train": [{"text": "i love it !", "label": "pos"}, {"text": "it broke .", "label": "neg"}]}
    (folder / "custrev.neg").unlink()
    with pytest.raises(SeqlabError, match=r"no custrev\.neg \(or custrev\.neg\.gz\)"):
        load_dataset("cr", tmp_path)


def test_trec_malformed_line_names_file_and_line(tmp_path):
    folder = tmp_path / "trec"
    folder.mkdir()
    (folder / "train_5500.label").write_text("NUM:dist How far ?\nWhat is this ?\n")
    (folder / "TREC_10.label").write_text("NUM:dist How far ?\n")
    with pytest.raises(SeqlabError, match=r"train_5500\.label:2: expected 'COARSE:fine question'"):
        load_dataset("trec", tmp_path)
