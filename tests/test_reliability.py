"""Reliability (issue 10): usage errors in one line, run folders (refusal, lock, --overwrite),
exact resume after a kill, clean machine output, verbs that refuse what they cannot do."""

from __future__ import annotations

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
