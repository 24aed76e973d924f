"""Readers: each format on small files, the real IMDB archive, and every bad input."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from seqlab.data.formats import (
    guess_format,
    read_classification,
    read_fasttext,
    read_folder_per_class,
    read_table,
)
from seqlab.errors import SeqlabError
from seqlab.files import open_text_lines, read_text


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_tar(path: Path, members: dict[str, str]) -> Path:
    """A .tar.gz holding the given member path -> text, in the given order."""
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


IMDB_LIKE = {
    "aclImdb/README": "readme",
    "aclImdb/imdb.vocab": "the\na\n",
    "aclImdb/train/urls_pos.txt": "http://example.com\n",
    "aclImdb/train/labeledBow.feat": "0:1\n",
    "aclImdb/train/pos/10_9.txt": "Great film.",
    "aclImdb/train/pos/2_8.txt": "Loved it.\n",
    "aclImdb/train/neg/1_1.txt": "Awful.",
    "aclImdb/train/unsup/0_0.txt": "no label here",
    "aclImdb/test/pos/0_10.txt": "Superb.",
    "aclImdb/test/neg/0_2.txt": "Dull.",
}


# --- plain text -----------------------------------------------------------------------


def test_open_text_lines_plain_gz_crlf_bom(tmp_path):
    plain = write(tmp_path / "a.txt", "\ufefffirst\r\nsecond\nthird")
    assert list(open_text_lines(plain)) == [(1, "first"), (2, "second"), (3, "third")]
    packed = write(tmp_path / "a.txt.gz", "x\ny\n")
    assert list(open_text_lines(packed)) == [(1, "x"), (2, "y")]


def test_missing_file(tmp_path):
    with pytest.raises(SeqlabError, match=r"nope\.txt: no such file"):
        list(open_text_lines(tmp_path / "nope.txt"))
    with pytest.raises(SeqlabError, match="no such file"):
        read_table(tmp_path / "nope.csv")


def test_read_text_and_empty_file(tmp_path):
    assert read_text(write(tmp_path / "t.txt.gz", "hello\n")) == "hello\n"
    with pytest.raises(SeqlabError, match=r"e\.txt: file is empty"):
        read_text(write(tmp_path / "e.txt", ""))
    with pytest.raises(SeqlabError, match="file is empty"):
        read_table(write(tmp_path / "e.csv", "\n\n"))


def test_non_utf8_names_line_offset_and_latin1_works(tmp_path):
    path = write(tmp_path / "reviews.csv", b"text,label\ngood,pos\ncaf\xe9 bad,neg\n")
    with pytest.raises(SeqlabError) as err:
        read_table(path)
    message = str(err.value)
    assert "reviews.csv: line 3: byte 0xe9 at offset 23" in message
    assert "--encoding latin-1" in message
    rows = read_table(path, encoding="latin-1")
    assert rows[1] == {"text": "café bad", "label": "neg"}
    with pytest.raises(SeqlabError, match=r"line 2: byte 0xff at offset 3 \(after decompression\)"):
        read_text(write(tmp_path / "b.txt.gz", b"ok\n\xff\n"))
    with pytest.raises(SeqlabError, match="unknown encoding"):
        read_text(path, encoding="no-such-codec")


def test_utf16_table(tmp_path):
    path = tmp_path / "excel.tsv"
    path.write_bytes("text\tlabel\nhé\tx\n".encode("utf-16"))
    assert read_table(path, encoding="utf-16") == [{"text": "hé", "label": "x"}]


def test_truncated_gzip(tmp_path):
    data = gzip.compress(b"text,label\n" + b"some words,pos\n" * 500)
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SeqlabError, match="truncated or corrupt.*download it again"):
        read_table(path)


# --- tables ---------------------------------------------------------------------------


def test_csv_basic_quoting_and_start_line(tmp_path):
    path = write(tmp_path / "d.csv", 'id,text,label\n1,"a, b",pos\n2,"line one\nline two",neg\n')
    rows = read_table(path)
    assert rows == [
        {"text": "a, b", "label": "pos"},
        {"text": "line one\nline two", "label": "neg"},
    ]
    bad = write(tmp_path / "m.csv", 'text,label\n"multi\nline",\nx,y\n')
    with pytest.raises(SeqlabError, match=r"m\.csv:2: row has no label"):
        read_table(bad)


def test_csv_missing_column_lists_columns(tmp_path):
    path = write(tmp_path / "data.csv", "id,text,sentiment\n1,hi,pos\n")
    with pytest.raises(SeqlabError) as err:
        read_table(path, text_column="review", label_column="sentiment")
    assert str(err.value) == (
        f"{path}: no column 'review'; columns are: id, text, sentiment; pass --text-column NAME"
    )
    with pytest.raises(SeqlabError, match="no column 'label'.*--label-column NAME"):
        read_table(path)
    assert read_table(path, label_column="sentiment") == [{"text": "hi", "label": "pos"}]


def test_csv_row_problems_name_file_and_line(tmp_path):
    path = write(tmp_path / "data.csv", "text,label\nok,pos\n\nfine,\n")
    with pytest.raises(SeqlabError, match=r"data\.csv:4: row has no label"):
        read_table(path)
    with pytest.raises(SeqlabError, match=r"t\.csv:2: row has no text"):
        read_table(write(tmp_path / "t.csv", "text,label\n  ,pos\n"))
    with pytest.raises(SeqlabError, match=r"w\.csv:2: row has 3 fields but the header has 2"):
        read_table(write(tmp_path / "w.csv", "text,label\nhello, world,pos\n"))
    with pytest.raises(SeqlabError, match="has a header but no rows"):
        read_table(write(tmp_path / "h.csv", "text,label\n"))


def test_unlabeled_table_and_tsv(tmp_path):
    path = write(tmp_path / "p.tsv", "text\nfirst, with comma\nsecond\n")
    assert read_table(path, label_column=None) == [
        {"text": "first, with comma"},
        {"text": "second"},
    ]


def test_jsonl_plain_gz_and_errors(tmp_path):
    lines = [{"text": "good", "label": 1}, {"text": "bad", "label": 0, "extra": True}]
    body = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    for name in ("d.jsonl", "d.ndjson", "d.jsonl.gz"):
        assert read_table(write(tmp_path / name, body)) == [
            {"text": "good", "label": "1"},
            {"text": "bad", "label": "0"},
        ]
    with pytest.raises(SeqlabError, match=r"x\.jsonl:2: not valid JSON"):
        read_table(write(tmp_path / "x.jsonl", '{"text": "a", "label": "b"}\n{"text": \n'))
    with pytest.raises(SeqlabError, match="no field 'label'; fields are: text, y"):
        read_table(write(tmp_path / "f.jsonl", '{"text": "a", "y": "b"}\n'))
    with pytest.raises(SeqlabError, match=r"n\.jsonl:2: row has no label"):
        read_table(write(tmp_path / "n.jsonl", '{"text": "a", "label": "b"}\n{"text": "c"}\n'))
    with pytest.raises(SeqlabError, match=r"o\.jsonl:1: expected a JSON object"):
        read_table(write(tmp_path / "o.jsonl", "[1, 2]\n"))


# --- fastText -------------------------------------------------------------------------


def test_fasttext(tmp_path):
    path = write(tmp_path / "d.txt", "__label__pos __label__x Great movie\n\n__label__neg\tmeh\n")
    assert read_fasttext(path) == [
        {"text": "Great movie", "label": "pos"},
        {"text": "meh", "label": "neg"},
    ]
    with pytest.raises(SeqlabError, match=r"b\.txt:2: no __label__LABEL"):
        read_fasttext(write(tmp_path / "b.txt", "__label__a ok\nno label here\n"))
    with pytest.raises(SeqlabError, match=r"c\.txt:1: row has no text"):
        read_fasttext(write(tmp_path / "c.txt", "__label__a\n"))


# --- folder per class -----------------------------------------------------------------


def test_folder_split_layout_from_tar_dir_and_zip(tmp_path):
    archive = make_tar(tmp_path / "imdb.tar.gz", IMDB_LIKE)
    folder = tmp_path / "extracted"
    for name, text in IMDB_LIKE.items():
        write(folder / name, text)
    zipped = tmp_path / "imdb.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for name, text in IMDB_LIKE.items():
            z.writestr(name, text)
    expected_train = [
        {"text": "Awful.", "label": "neg", "source": "aclImdb/train/neg/1_1.txt"},
        {"text": "Great film.", "label": "pos", "source": "aclImdb/train/pos/10_9.txt"},
        {"text": "Loved it.", "label": "pos", "source": "aclImdb/train/pos/2_8.txt"},
    ]
    for path in (archive, zipped, folder, folder / "aclImdb"):
        data = read_folder_per_class(path)
        assert set(data) == {"train", "test"}
        assert [{**e, "source": e["source"].removeprefix("aclImdb/")} for e in data["train"]] == [
            {**e, "source": e["source"].removeprefix("aclImdb/")} for e in expected_train
        ]
        assert [e["label"] for e in data["test"]] == ["neg", "pos"]


def test_folder_label_layout_and_split_names(tmp_path):
    flat = make_tar(tmp_path / "flat.tgz", {"top/spam/1.txt": "buy", "top/ham/2.txt": "hi"})
    assert {e["label"] for e in read_folder_per_class(flat)["train"]} == {"spam", "ham"}
    for name in ("b/1.txt", "a/2.txt"):
        write(tmp_path / "plain" / name, "x")
    assert [e["label"] for e in read_folder_per_class(tmp_path / "plain")["train"]] == ["a", "b"]
    splits = make_tar(tmp_path / "s.tar", {"dev/a/1.txt": "x", "valid/b/2.txt": "y"})
    assert [e["label"] for e in read_folder_per_class(splits)["validation"]] == ["a", "b"]


def test_truncated_archive(tmp_path):
    members = {f"train/pos/{i}.txt": f"review number {i} " * 50 for i in range(200)}
    data = make_tar(tmp_path / "ok.tar.gz", members).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    # Cut inside the tar data, and inside the gzip trailer (all members still readable).
    for keep in (len(data) // 10, len(data) // 2, len(data) - 4):
        cut.write_bytes(data[:keep])
        with pytest.raises(SeqlabError) as err:
            read_folder_per_class(cut)
        assert str(err.value).startswith(f"{cut}: archive is truncated or corrupt (")
        assert str(err.value).endswith("download it again")
    junk = write(tmp_path / "junk.tar.gz", b"<html>not found</html>")
    with pytest.raises(SeqlabError, match="archive is truncated or corrupt"):
        read_folder_per_class(junk)


def test_folder_without_label_folders(tmp_path):
    write(tmp_path / "loose" / "a.txt", "x")
    with pytest.raises(SeqlabError, match=r"no label folders.*expected \[top/\]SPLIT/LABEL"):
        read_folder_per_class(tmp_path / "loose")
    with pytest.raises(SeqlabError, match="no such file or folder"):
        read_folder_per_class(tmp_path / "absent.tar.gz")


def test_folder_member_not_utf8(tmp_path):
    archive = tmp_path / "l.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("pos/1.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"caf\xe9"))
    with pytest.raises(SeqlabError, match=r"pos/1\.txt: line 1: byte 0xe9 at offset 3"):
        read_folder_per_class(archive)
    assert read_folder_per_class(archive, encoding="latin-1")["train"][0]["text"] == "café"


def test_real_imdb_archive(imdb_real):
    assert {split: len(rows) for split, rows in imdb_real.items()} == {
        "train": 25000,
        "test": 25000,
    }
    for rows in imdb_real.values():
        assert {e["label"] for e in rows} == {"neg", "pos"}
        assert sum(e["label"] == "pos" for e in rows) == 12500
        assert all(e["text"] and "/unsup/" not in e["source"] for e in rows)
    train = imdb_real["train"]
    assert train[0]["source"].startswith("aclImdb/train/neg/")
    keys = [(e["label"], e["source"].rsplit("/", 1)[1]) for e in train]
    assert keys == sorted(keys)


# --- dispatch -------------------------------------------------------------------------


def test_read_classification_dispatch(tmp_path):
    csv_path = write(tmp_path / "d.csv", "text,label\nhi,a\n")
    assert read_classification(csv_path) == {"train": [{"text": "hi", "label": "a"}]}
    ft = write(tmp_path / "d.ft", "__label__a hi\n")
    assert read_classification(ft)["train"] == [{"text": "hi", "label": "a"}]
    tsv_as_txt = write(tmp_path / "t.txt", "text\tlabel\nhi\ta\n")
    assert read_classification(tsv_as_txt, fmt="tsv")["train"] == [{"text": "hi", "label": "a"}]
    archive = make_tar(tmp_path / "a.tar.gz", IMDB_LIKE)
    assert set(read_classification(archive)) == {"train", "test"}
    assert guess_format(tmp_path) == "folder"
    assert guess_format("x.jsonl.gz") == "jsonl"


def test_unknown_extension_and_format(tmp_path):
    path = write(tmp_path / "d.xlsx", "x")
    with pytest.raises(SeqlabError) as err:
        read_classification(path)
    assert "csv, tsv, jsonl" in str(err.value) and "--format" in str(err.value)
    with pytest.raises(SeqlabError, match="unknown format 'xml'"):
        read_classification(path, fmt="xml")
