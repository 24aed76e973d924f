"""The README's main job: `seqlab demo` proves the lecture's point on the built-in corpus."""

from __future__ import annotations

import json

import pytest

from seqlab.cli import main


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory, capsys_module=None):
    out = tmp_path_factory.mktemp("demo")
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["demo", "--json", "--out", str(out), "--no-progress"]) == 0
    last_line = buffer.getvalue().strip().splitlines()[-1]
    return json.loads(last_line), out


def test_order_blind_models_stay_at_chance_and_lstm_learns_order(demo_result):
    result, _ = demo_result
    results = result["results"]
    assert {"linear", "bow", "cnn", "lstm", "linear+bigrams", "bow+bigrams"} <= set(results)
    assert results["linear"]["accuracy"] <= 0.60
    assert results["bow"]["accuracy"] <= 0.60
    assert results["lstm"]["accuracy"] >= 0.95
    # bigrams recover some local order, well above the unigram models
    assert results["linear+bigrams"]["accuracy"] > 0.75


def test_probe_in_demo_output(demo_result):
    result, _ = demo_result
    probe = result["probe"]
    assert probe["pairs"][0]["positive"] == "The movie my friend has not seen is good"
    assert all(p["bow_identical"] for p in probe["pairs"])
    assert probe["pairwise_accuracy"] >= 0.75
    assert result["results"]["linear"]["probe_pairwise_accuracy"] == 0.5  # ties count half


def test_compare_report_files(demo_result):
    _, out = demo_result
    for name in ("compare.json", "compare.md", "compare.png"):
        assert (out / name).is_file()
    assert "test accuracy" in (out / "compare.md").read_text()


def test_probe_verb_with_pairs_file(demo_result, tmp_path, capsys):
    _, out = demo_result
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("positive\tnegative\nit was not bad , it was good\tit was not good , it was bad\n")
    assert main(["probe", str(out / "lstm"), "--pairs", str(pairs), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pairs"][0]["bow_identical"] is True
    assert len(result["pairs"][0]["p_positive"]) == 2
    assert result["pairwise_accuracy"] in (0.0, 0.5, 1.0)
    # the linear unigram model scores both members the same: a tie, half a point
    assert main(["probe", str(out / "linear"), "--pairs", str(pairs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairwise_accuracy"] == 0.5


def test_probe_pairs_file_errors(demo_result, tmp_path, capsys):
    _, out = demo_result
    bad = tmp_path / "bad.tsv"
    bad.write_text("pos\tneg\na\tb\n")
    assert main(["probe", str(out / "lstm"), "--pairs", str(bad)]) == 2
    assert "needs columns 'positive' and 'negative'" in capsys.readouterr().err
