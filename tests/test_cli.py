"""End-to-end: train tiny models from the command line on real data slices, then use them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from seqlab.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def names_model(tmp_path_factory, shared_data):
    """A small char-level GRU trained on a slice of the names dataset."""
    out = tmp_path_factory.mktemp("names") / "gru"
    code = main([
        "train", "--task", "classify", "--data", "names", "--data-dir", str(shared_data),
        "--family", "gru", "--limit", "4000", "--epochs", "4", "--lr", "0.005", "--seed", "1",
        "--out", str(out), "--no-progress",
    ])
    assert code == 0
    return out


def test_train_writes_a_complete_bundle(names_model):
    for name in ("config.json", "tokenizer.json", "model.safetensors", "metrics.json",
                 "confusion.png", "training_curves.png"):
        assert (names_model / name).is_file(), name
    config = json.loads((names_model / "config.json").read_text())
    assert config["task"] == "classify" and config["family"] == "gru"
    assert config["config"]["data"]["tokenizer"] == "char"  # the names dataset implies it
    metrics = json.loads((names_model / "metrics.json").read_text())
    # 18 languages; the majority class (Russian) is ~47%: learning means clearly above that
    assert metrics["test"]["accuracy"] > 0.6
    assert 0 < metrics["test"]["macro_f1"] <= 1
    assert metrics["train_tokens_per_s"] > 0


def test_test_verb_json(names_model, shared_data, capsys):
    code, out, _ = run_cli(capsys, "test", str(names_model), "--data", "names", "--data-dir",
                           str(shared_data), "--split", "test", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["metrics"]["accuracy"] > 0.6 and "macro_f1" in result["metrics"]
    assert result["metrics"]["examples"] == 2007  # the fixed 80/10/10 split of 20,074 names


def test_test_verb_on_a_file(names_model, tmp_path, capsys):
    data = tmp_path / "few.csv"
    data.write_text("text,label\nDostoevsky,Russian\nTanaka,Japanese\nMuller,German\nSmith,English\n")
    code, out, _ = run_cli(capsys, "test", str(names_model), "--data", str(data), "--json")
    assert code == 0
    assert json.loads(out)["metrics"]["examples"] == 4


def test_predict_arguments_file_and_stdin(names_model, tmp_path, capsys, monkeypatch):
    code, out, _ = run_cli(capsys, "predict", str(names_model), "Nakamura", "--json")
    assert code == 0
    one = json.loads(out)
    assert one["text"] == "Nakamura" and one["label"] in one["probabilities"]
    assert abs(sum(one["probabilities"].values()) - 1) < 1e-3
    file = tmp_path / "names.txt"
    file.write_text("Ivanov\nTakahashi\n")
    code, out, _ = run_cli(capsys, "predict", str(names_model), "--file", str(file), "--json")
    assert [r["text"] for r in json.loads(out)] == ["Ivanov", "Takahashi"]
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("Ivanov\n"))
    code, out, _ = run_cli(capsys, "predict", str(names_model))
    assert code == 0 and out.count("\n") == 1 and out.strip().endswith("Ivanov")


def test_python_api_matches_cli(names_model):
    import seqlab

    bundle = seqlab.load(names_model)
    preds = bundle.predict(["Ivanov", "Nakamura"])
    assert len(preds) == 2 and all(p["label"] in bundle.labels for p in preds)


def test_bow_verb_shows_identical_vectors(capsys):
    code, out, _ = run_cli(capsys, "bow", "The movie my friend has not seen is good",
                           "The movie my friend has seen is not good", "a good movie")
    assert code == 0
    assert "identical vectors: S1, S2" in out
    code, out, _ = run_cli(capsys, "bow", "--json", "not good", "good not")
    assert json.loads(out)["identical"] == [[0, 1]]


def test_datasets_verb_lists_where_each_resolves(shared_data, capsys):
    code, out, _ = run_cli(capsys, "datasets", "--data-dir", str(shared_data), "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["datasets"]}
    assert {"imdb", "names"} <= set(rows)
    assert str(shared_data) in rows["imdb"]["where"]


def test_help_has_an_example_for_every_verb(capsys):
    from seqlab.cli import COMMANDS

    for verb in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([verb, "--help"])
        assert exc.value.code == 0
        assert "example: seqlab" in capsys.readouterr().out


# -- bad input: one line, exit status 2, no traceback ----------------------------------------
def _run_subprocess(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqlab", *argv], capture_output=True, text=True,
                          input=stdin, timeout=120)


def _assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqlab: error:"), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_error_missing_bundle(tmp_path):
    _assert_user_error(_run_subprocess("predict", str(tmp_path / "nope"), "hi"), "no such model folder")


def test_error_partial_bundle(names_model, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "tokenizer.json").write_text((names_model / "tokenizer.json").read_text())
    # no checkpoint: not a bundle, and no --resume to suggest; with one: an interrupted run
    _assert_user_error(_run_subprocess("predict", str(partial), "hi"), "not a seqlab bundle (no config.json)")
    (partial / "checkpoints").mkdir()
    (partial / "checkpoints" / "last.ckpt").write_bytes(b"")
    _assert_user_error(_run_subprocess("predict", str(partial), "hi"), "no config.json", "--resume")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(names_model, broken)
    (broken / "model.safetensors").unlink()
    _assert_user_error(_run_subprocess("predict", str(broken), "hi"), "model.safetensors")


def test_error_bundle_from_newer_version(names_model, tmp_path):
    import shutil

    newer = tmp_path / "newer"
    shutil.copytree(names_model, newer)
    config = json.loads((newer / "config.json").read_text())
    config["format_version"] = 99
    config["seqlab_version"] = "9.0.0"
    (newer / "config.json").write_text(json.dumps(config))
    _assert_user_error(_run_subprocess("predict", str(newer), "hi"), "newer", "upgrade seqlab")


def test_error_empty_text_to_predict(names_model):
    _assert_user_error(_run_subprocess("predict", str(names_model), "  "), "empty")


def test_error_unknown_family_and_dataset(tmp_path):
    _assert_user_error(_run_subprocess("train", "--data", "names", "--family", "transformer",
                                       "--out", str(tmp_path / "x")), "transformer", "lstm")
    _assert_user_error(_run_subprocess("train", "--data", "imbd", "--family", "bow",
                                       "--out", str(tmp_path / "y")), "imbd", "imdb")
    # a named dataset made for another task is refused before anything is read
    _assert_user_error(_run_subprocess("train", "--data", "tinyshakespeare", "--family", "bow",
                                       "--out", str(tmp_path / "z")),
                       "tinyshakespeare is a dataset for --task lm, not classify", "imdb, names")


def test_error_csv_without_the_named_column(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("review,sentiment\ngood,pos\nbad,neg\n")
    _assert_user_error(_run_subprocess("train", "--data", str(data), "--family", "bow",
                                       "--out", str(tmp_path / "m")), "review, sentiment")


def test_python_train_returns_a_bundle(tmp_path):
    import seqlab

    bundle = seqlab.train(task="classify", data="demo", family="cnn", out=tmp_path / "cnn",
                          limit=300, epochs=2, progress=False)
    assert bundle.family == "cnn" and set(bundle.labels) == {"neg", "pos"}
    again = seqlab.load(tmp_path / "cnn")
    texts = ["it was not great , it was awful", "the acting was bad but the plot was good"]
    assert again.predict(texts) == bundle.predict(texts)


def test_compare_verb_json(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "compare", "--data", "demo", "--families", "linear,bow+bigrams",
                           "--limit", "400", "--epochs", "2", "--hash-buckets", "512",
                           "--out", str(tmp_path / "cmp"), "--no-progress", "--json")
    assert code == 0
    report = json.loads(out.strip().splitlines()[-1])
    assert set(report["results"]) == {"linear", "bow+bigrams"}
    assert report["results"]["linear"]["n_parameters"] > 0
    assert (tmp_path / "cmp" / "compare.png").is_file()


def test_config_file_and_flags(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model:\n  family: bow\n  hidden_dim: 12\ntrain:\n  epochs: 1\ndata:\n  limit: 200\n")
    code, _, err = run_cli(capsys, "train", "--data", "demo", "--config", str(cfg), "--family", "cnn",
                           "--filters", "4", "--out", str(tmp_path / "m"), "--no-progress")
    assert code == 0, err
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["family"] == "cnn"  # the flag beats the file
    assert saved["config"]["model"]["hidden_dim"] == 12 and saved["config"]["model"]["filters"] == 4


def test_predictions_do_not_depend_on_batch_padding(names_model):
    import numpy as np

    import seqlab

    bundle = seqlab.load(names_model)
    alone = bundle.predict_proba(["Li"])
    with_long_neighbour = bundle.predict_proba(["Li", "Wolfeschlegelsteinhausenbergerdorff"])
    np.testing.assert_allclose(with_long_neighbour[0], alone[0], atol=1e-6)
