"""Reliability (issue 10): usage errors in one line, run folders (refusal, lock, --overwrite),
exact resume after a kill, clean machine output, verbs that refuse what they cannot do."""

from __future__ import annotations

import csv
import json

import pytest

from helpers import run_cli


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("seqlab: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert len(lines) <= 2, err  # the error, then at most a "try 'seqlab VERB --help'" line
    return errors[0]


@pytest.mark.parametrize("argv, hint", [
    (["train", "--data", "demo"], "try 'seqlab train --help'"),           # missing --out
    (["train", "--out", "x", "--epochs", "abc"], "try 'seqlab train --help'"),
    (["predict"], "try 'seqlab predict --help'"),
    (["nosuchverb"], "try 'seqlab --help'"),
    (["bow", "a", "--nosuchflag"], "try 'seqlab bow --help'"),
])
def test_usage_errors_are_one_line_and_a_help_hint(capsys, argv, hint):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    _one_error(err)
    assert err.strip().splitlines()[-1] == hint


def test_min_freq_that_keeps_nothing_names_the_setting(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--data", "demo", "--family", "bow", "--limit", "60",
                           "--min-freq", "100000", "--no-progress", "--out", str(tmp_path / "m"))
    assert code == 2 and "--min-freq 100000" in _one_error(err)


# -- run folders ------------------------------------------------------------------------------
BOW = ("train", "--data", "demo", "--family", "bow", "--limit", "60", "--epochs", "1", "--embed-dim", "8",
       "--hidden-dim", "8")


def test_out_that_is_a_file_or_holds_a_bundle_is_refused_and_overwrite_replaces_it(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = run_cli(capsys, *BOW, "--out", str(afile))
    assert code == 2 and "is a file" in _one_error(err)
    out = tmp_path / "m"
    assert run_cli(capsys, *BOW, "--out", str(out))[0] == 0
    code, _, err = run_cli(capsys, *BOW, "--out", str(out), "--family", "cnn")
    assert code == 2 and "--overwrite" in _one_error(err) and "bow classify bundle" in err
    code, stdout, err = run_cli(capsys, *BOW, "--out", str(out), "--family", "cnn", "--overwrite", "--json")
    assert code == 0, err
    json.loads(stdout)  # stdout holds exactly one JSON document (progress went to stderr)
    assert json.loads((out / "config.json").read_text())["family"] == "cnn"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert not (out / ".seqlab.lock").exists()


def test_a_failed_run_leaves_no_bundle_and_no_folder(tmp_path, capsys):
    out = tmp_path / "never"
    code, _, err = run_cli(capsys, *BOW, "--out", str(out), "--min-freq", "100000")
    assert code == 2 and not out.exists()


def test_resume_refuses_another_family_or_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "m"
    assert run_cli(capsys, *BOW, "--out", str(out), "--no-progress")[0] == 0
    code, _, err = run_cli(capsys, *BOW, "--out", str(out), "--family", "cnn", "--resume", "--epochs", "2")
    assert code == 2 and "a checkpoint of family 'bow'" in _one_error(err)
    code, _, err = run_cli(capsys, *BOW, "--out", str(out), "--embed-dim", "4", "--resume", "--epochs", "2")
    assert code == 2 and "do not fit this model" in _one_error(err)
    bogus = tmp_path / "bogus.ckpt"
    bogus.write_bytes(b"not a checkpoint")
    code, _, err = run_cli(capsys, *BOW, "--out", str(out), "--resume", str(bogus), "--epochs", "2")
    assert code == 2 and "not a seqlab training checkpoint" in _one_error(err)
    # a pickle that would run code is refused by the weights-only loader, and runs nothing
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("PWNED",))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps(Evil()))
    code, stdout, err = run_cli(capsys, *BOW, "--out", str(out), "--resume", str(evil), "--epochs", "2")
    assert code == 2 and "PWNED" not in stdout + err and "not a seqlab training checkpoint" in _one_error(err)
    # the same run resumed continues, and its CSV log keeps the first epoch's rows
    code, _, err = run_cli(capsys, *BOW, "--out", str(out), "--resume", "--epochs", "2", "--no-progress")
    assert code == 0, err
    epochs = [row["epoch"] for row in csv.DictReader((out / "logs" / "metrics.csv").open()) if row["val_loss"]]
    assert epochs == ["0", "1"]


def test_the_bundle_records_absolute_data_paths(tmp_path, capsys, monkeypatch):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(20)))
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "train", "--data", "d.csv", "--family", "linear", "--out", "m")[0] == 0
    monkeypatch.chdir("/")
    code, out, err = run_cli(capsys, "test", str(tmp_path / "m"), "--split", "validation", "--json")
    assert code == 0, err
    assert json.loads(out)["data"] == str(data)


def test_predict_on_a_folder_that_is_not_a_bundle(tmp_path, capsys):
    code, _, err = run_cli(capsys, "predict", str(tmp_path), "x")
    assert code == 2 and "--resume" not in _one_error(err) and "not a seqlab bundle" in err


# -- machine output ---------------------------------------------------------------------------
def test_predict_keeps_line_alignment(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(20)))
    out = tmp_path / "m"
    assert run_cli(capsys, "train", "--data", str(data), "--family", "linear", "--out", str(out))[0] == 0
    lines = tmp_path / "in.txt"
    lines.write_text("good film\n\nbad film\n")
    code, stdout, err = run_cli(capsys, "predict", str(out), "--file", str(lines))
    assert code == 0, err
    assert [bool(line) for line in stdout.split("\n")[:-1]] == [True, False, True]
    code, stdout, _ = run_cli(capsys, "predict", str(out), "--file", str(lines), "--json")
    assert code == 0 and ["label" in item for item in json.loads(stdout)] == [True, False, True]
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    code, _, err = run_cli(capsys, "predict", str(out), "--file", str(blank))
    assert code == 2 and "every line is empty or blank" in _one_error(err)


# -- verbs refuse what they cannot do -----------------------------------------------------------
def test_bow_of_blank_sentences(capsys):
    for argv in (["bow", ""], ["bow", " ", "  "]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "has no words" in _one_error(err)


def test_tables_with_duplicate_columns_case_labels_and_utf16(tmp_path, capsys):
    dup = tmp_path / "dup.csv"
    dup.write_text("text,text,label\na,b,pos\nc,d,neg\n")
    code, _, err = run_cli(capsys, "train", "--data", str(dup), "--family", "linear", "--out", str(tmp_path / "a"))
    assert code == 2 and "'text' more than once" in _one_error(err) and not (tmp_path / "a").exists()
    rows = "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(20))
    labels = tmp_path / "labels.csv"
    labels.write_text("text,label\n" + rows + "nice film,Pos\nok film,1\nfine film,1.0\n")
    code, _, err = run_cli(capsys, "train", "--data", str(labels), "--family", "linear", "--out", str(tmp_path / "b"))
    assert code == 0 and err.count("seqlab: warning: labels that differ only") == 1
    assert "'Pos' / 'pos'" in err and "'1' / '1.0'" in err
    wide = tmp_path / "wide.csv"
    wide.write_bytes(("text,label\n" + rows).encode("utf-16"))  # Windows "Unicode" text: BOM + UTF-16
    code, _, err = run_cli(capsys, "train", "--data", str(wide), "--family", "linear", "--out", str(tmp_path / "c"))
    assert code == 0, err


def test_missing_data_dir_in_the_environment_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEQLAB_DATA_DIR", str(tmp_path / "nope"))
    code, _, err = run_cli(capsys, "train", "--data", "names", "--family", "linear", "--out", str(tmp_path / "m"))
    assert code == 2 and "SEQLAB_DATA_DIR=" in _one_error(err) and "no such folder" in err


def test_generate_refuses_what_a_language_model_cannot_do(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 200)
    out = tmp_path / "lm"
    code, _, err = run_cli(capsys, "train", "--task", "lm", "--data", str(text), "--family", "gru", "--epochs", "1",
                           "--embed-dim", "8", "--hidden-dim", "8", "--seq-len", "20", "--tokenizer", "char",
                           "--no-progress", "--out", str(out))
    assert code == 0, err
    for argv, needle in ((["-n", "3"], "-n is for --task generate"),
                         (["--temperature", "inf"], "above 0 and finite"),
                         (["--length", "100000000", "--json"], "between 0 and 100,000"),
                         (["--length", "-1"], "0 or more")):
        code, stdout, err = run_cli(capsys, "generate", str(out), *argv)
        assert code == 2 and needle in _one_error(err) and stdout == ""
    # an output path the system refuses (here: under a file) is one line too, not a traceback
    code, _, err = run_cli(capsys, "inspect", str(out), "the cat", "--out", str(text / "x.html"))
    assert code == 2 and "t.txt" in _one_error(err)


def test_cross_validation_and_compare_folders_need_overwrite(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(20)))
    cv = ["train", "--data", str(data), "--family", "linear", "--cv", "2", "--out", str(tmp_path / "cv")]
    assert run_cli(capsys, *cv)[0] == 0
    code, _, err = run_cli(capsys, *cv)
    assert code == 2 and "--overwrite" in _one_error(err)
    assert run_cli(capsys, *cv, "--overwrite")[0] == 0
    cmp = ["compare", "--data", str(data), "--families", "linear", "--out", str(tmp_path / "cmp")]
    assert run_cli(capsys, *cmp)[0] == 0
    code, _, err = run_cli(capsys, *cmp)
    assert code == 2 and "--overwrite" in _one_error(err)
    assert run_cli(capsys, *cmp, "--overwrite")[0] == 0


def test_ctrl_c_during_training_says_how_to_resume(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "m"
    # early stopping off: under load, a run that stops by itself before the signal is not the case tested
    proc = subprocess.Popen([sys.executable, "-m", "seqlab", *BOW, "--epochs", "500", "--patience", "0",
                             "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (out / "checkpoints" / "last.ckpt").is_file() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the first epoch's line follows its checkpoint
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "seqlab: interrupted; resume with --resume"
    assert not (out / ".seqlab.lock").exists() and not (out / "config.json").exists()
    # the epoch lines (stderr is a pipe, not a terminal) carry this epoch's validation figures
    assert "val_loss" in err.splitlines()[0]


def test_progress_bars_on_a_terminal_go_to_stderr(tmp_path):
    import contextlib
    import io

    from seqlab.cli import main

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err, out = Terminal(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main([*BOW, "--epochs", "2", "--json", "--out", str(tmp_path / "m")])
    assert code == 0 and "Epoch 1" in err.getvalue()  # tqdm's bar, on stderr
    assert json.loads(out.getvalue())["bundle"] == str(tmp_path / "m")  # stdout: one JSON document


def test_resume_with_other_data_is_refused(tmp_path, capsys):
    out = tmp_path / "m"
    assert run_cli(capsys, *BOW, "--out", str(out), "--no-progress")[0] == 0
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(20)))
    argv = [a if a != "demo" else str(data) for a in BOW]
    code, _, err = run_cli(capsys, *argv, "--out", str(out), "--resume", "--epochs", "2")
    assert code == 2 and "a checkpoint of data 'demo'" in _one_error(err) and "--data" in err
