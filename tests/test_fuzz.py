"""Property-based: malformed data files (CSV, TSV, JSONL, fastText, CoNLL-U, parallel text),
YAML configs and flag values, run through the CLI in this process. Every outcome is exit 0,
or exit 2 with exactly one `seqlab: error:` line; never a traceback, and a failed run leaves
no bundle behind. Small on purpose: a few examples per property, tiny data, one epoch."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from seqlab.cli import main  # noqa: E402

FAST = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TINY = ["--epochs", "1", "--limit", "40", "--embed-dim", "4", "--hidden-dim", "4", "--no-progress"]

# pieces that break readers: separators, quotes, tabs, blank lines, odd Unicode, NUL
piece = st.sampled_from(["good", "bad", "film", ",", "\t", '"', "'", " ", "\n", "\r\n", "", "é", "🙂", "\x00",
                         "__label__pos", "__label__neg", "{", "}", ":", "[", "1", "1.0", "NN", "_", "#"])
junk = st.lists(piece, max_size=12).map("".join)


def _run(capsys, argv: list[str], out: Path) -> None:
    try:
        code = main(argv)
    except BaseException as exc:  # anything escaping main is a bug: a traceback for the user
        pytest.fail(f"{argv}: {type(exc).__name__}: {exc}")
    err = capsys.readouterr().err
    if os.environ.get("FUZZ_LOG"):
        with open(os.environ["FUZZ_LOG"], "a") as fh:
            fh.write(f"{code} {argv[1:4]} {err.strip().splitlines()[-1:] }\n")
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith("seqlab: error:")]
        assert len(errors) == 1, err
        assert not (out / "config.json").exists(), "a failed run left a bundle"
        assert not any(out.glob("*.safetensors")), "a failed run left weights"


def _rows(draw, valid_row, n: int) -> str:
    """Mostly well-formed rows with junk spliced in."""
    rows = [draw(junk) if draw(st.integers(0, 9)) == 0 else valid_row(i) for i in range(n)]  # 1 in 10 junk
    return "\n".join(rows) + draw(st.sampled_from(["", "\n", "\n\n"]))


@st.composite
def table_file(draw):
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl", "txt"]))
    sep = {"csv": ",", "tsv": "\t"}.get(fmt, "")

    def valid(i: int) -> str:
        label = "pos" if i % 2 else "neg"
        if fmt == "jsonl":
            return json.dumps({"text": f"film {i} good", "label": label})
        if fmt == "txt":
            return f"__label__{label} film {i} good"
        return f"film {i} good{sep}{label}"

    header = draw(st.sampled_from([f"text{sep}label", f"text{sep}text", f"label{sep}text", "", "x"]))
    body = _rows(draw, valid, draw(st.integers(0, 30)))
    text = (header + "\n" + body) if fmt in ("csv", "tsv") else body
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"]))
    return fmt, text.encode(encoding, errors="replace")


@st.composite
def conllu_file(draw):
    def valid(i: int) -> str:
        return "1\tfilm\tfilm\tNOUN\tNN\t_\t0\troot\t_\t_\n2\tgood\tgood\tADJ\tJJ\t_\t1\tamod\t_\t_\n"

    return _rows(draw, valid, draw(st.integers(0, 12))).encode("utf-8")


@st.composite
def parallel_files(draw):
    n = draw(st.integers(0, 20))
    src = [draw(junk) if draw(st.integers(0, 9)) == 0 else f"ein Hund {i}" for i in range(n)]
    extra = draw(st.sampled_from([0, 0, 0, 1, -1]))  # now and then a misaligned pair of files
    tgt = [draw(junk) if draw(st.integers(0, 9)) == 0 else f"a dog {i}" for i in range(max(0, n + extra))]
    return "\n".join(src).encode(), "\n".join(tgt).encode()


@pytest.fixture
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="seqlab-fuzz-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _fresh(scratch: Path) -> tuple[Path, Path]:
    case = Path(tempfile.mkdtemp(dir=scratch))
    return case, case / "out"


@FAST
@given(table_file())
def test_malformed_tables(capsys, scratch, case):
    fmt, data = case
    folder, out = _fresh(scratch)
    path = folder / f"data.{fmt}"
    path.write_bytes(data)
    _run(capsys, ["train", "--data", str(path), "--family", "linear", "--out", str(out)], out)


@FAST
@given(conllu_file())
def test_malformed_conllu(capsys, scratch, data):
    folder, out = _fresh(scratch)
    path = folder / "data.conllu"
    path.write_bytes(data)
    _run(capsys, ["train", "--task", "tag", "--data", str(path), "--family", "cnn", *TINY, "--out", str(out)], out)


@FAST
@given(parallel_files())
def test_malformed_parallel_text(capsys, scratch, files):
    folder, out = _fresh(scratch)
    (folder / "s.txt").write_bytes(files[0])
    (folder / "t.txt").write_bytes(files[1])
    _run(capsys, ["train", "--task", "translate", "--source", str(folder / "s.txt"), "--target",
                  str(folder / "t.txt"), "--family", "gru", *TINY, "--out", str(out)], out)


value = st.one_of(st.integers(-3, 3).map(str), st.sampled_from(["nan", "inf", "-inf", "1e309", "0.5", "1.5", "",
                                                                 "abc", "-0", "2,3", "None", "🙂"]))
FLAGS = ["--batch-size", "--lr", "--epochs", "--limit", "--dropout", "--max-length", "--min-freq", "--max-vocab",
         "--hidden-dim", "--patience", "--max-minutes", "--validation-fraction", "--precision", "--tokenizer"]


@FAST
@given(st.dictionaries(st.sampled_from(FLAGS), value, min_size=1, max_size=3))
def test_flag_values(capsys, scratch, flags):
    folder, out = _fresh(scratch)
    argv = ["train", "--data", "demo", "--family", "bow", "--epochs", "1", "--limit", "40", "--no-progress"]
    for flag, v in flags.items():
        argv += [f"{flag}={v}"]
    _run(capsys, [*argv, "--out", str(out)], out)


yaml_value = st.one_of(st.integers(-2, 5), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                       st.none(), st.booleans(), st.lists(st.integers(0, 3), max_size=2))
yaml_key = st.sampled_from(["train", "data", "model", "epochs", "lr", "batch_size", "dropout", "nonsense", "family"])


@FAST
@given(st.recursive(yaml_value, lambda inner: st.dictionaries(yaml_key, inner, max_size=3), max_leaves=6))
def test_yaml_configs(capsys, scratch, doc):
    import yaml

    folder, out = _fresh(scratch)
    config = folder / "c.yaml"
    # mappings and lists are dumped as YAML; a bare string is written as it is (often not a mapping)
    config.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    _run(capsys, ["train", "--data", "demo", "--family", "bow", "--epochs", "1", "--limit", "40", "--no-progress",
                  "--config", str(config), "--out", str(out)], out)

