"""--refit: validation picks the epoch count, then the recipe trains again from a new vocabulary
and the seed's initial weights on training + validation data for that many epochs; the bundle
holds the refit model and reports the first run's validation score."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import seqlab
from seqlab import api

WORDS = ["good", "bad", "film", "plot", "great", "awful", "the", "a"]


@pytest.fixture
def reviews(tmp_path):
    """80 short reviews, each with one word of its own (w0..w79): which of them the vocabulary
    holds shows which examples it was fit on."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        words = list(rng.choice(WORDS, size=5))
        label = "pos" if words.count("good") + words.count("great") >= words.count("bad") + words.count("awful") else "neg"
        rows.append(f"{' '.join(words)} w{i},{label}")
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


def _best_epoch(out) -> int:
    """1-based epoch of the first best validation accuracy in the selection run's log (the
    checkpoint is saved on strict improvement only)."""
    rows = [r for r in csv.DictReader(open(out / "logs" / "metrics.csv")) if r.get("val_accuracy")]
    scores = [float(r["val_accuracy"]) for r in rows]
    return scores.index(max(scores)) + 1


@pytest.mark.parametrize("family", ["cnn", "gru"])
def test_refit_trains_on_all_the_examples_for_the_chosen_epochs(family, reviews, tmp_path):
    out = tmp_path / family
    bundle = seqlab.train(out=out, data=str(reviews), family=family, refit="yes", epochs=4, patience=0, batch_size=4,
                          progress=False, max_vocab=None, min_freq=1)
    refit = bundle.metrics["refit"]
    assert {k: refit[k] for k in ("epochs", "examples")} == {"epochs": _best_epoch(out), "examples": 80}
    assert bundle.metrics["train_seconds"] > refit["selection_seconds"] > 0  # both runs count
    assert bundle.metrics["epochs"] == 4  # the first run's (no early stopping)
    own_words = {f"w{i}" for i in range(80)}
    vocab = set(bundle.task.tokenizer.tokenizer.get_vocab())
    assert own_words <= vocab  # the validation examples' words too
    # the first run's validation score, measured before the refit saw those examples
    validation = bundle.metrics["validation"]
    assert validation["examples"] == 8 and 0.0 <= validation["accuracy"] <= 1.0
    # the refit's own log has no validation (nothing was held out), the curves are the first run's
    refit_rows = list(csv.DictReader(open(out / "refit" / "logs" / "metrics.csv")))
    assert refit_rows and not any(r.get("val_accuracy") for r in refit_rows)
    assert (out / "training_curves.png").is_file()
    # the saved bundle is the refit model: reloaded, it gives the same predictions
    again = seqlab.load(out)
    texts = ["good great film w3", "awful bad plot w77"]
    assert again.predict(texts) == bundle.predict(texts)


def test_without_refit_the_vocabulary_is_the_training_split_s(reviews, tmp_path):
    bundle = seqlab.train(out=tmp_path / "m", data=str(reviews), family="cnn", epochs=1, progress=False,
                          max_vocab=None, refit="no")
    own_words = {f"w{i}" for i in range(80)} & set(bundle.task.tokenizer.tokenizer.get_vocab())
    assert len(own_words) == 72 and "refit" not in bundle.metrics


def test_data_streamed_from_disk_is_not_refit(reviews, tmp_path, capsys):
    bundle = seqlab.train(out=tmp_path / "disk", data=str(reviews), family="bow", epochs=1, refit="yes",
                          on_disk="yes", progress=False)
    assert "refit skipped: the data are streamed from disk" in capsys.readouterr().err
    assert "refit" not in bundle.metrics


def test_auto_refits_small_sets_only_and_not_under_a_time_limit(monkeypatch):
    from seqlab.config import TrainConfig

    few, held = [{"text": "a"}] * 9, [{"text": "b"}]

    def refits(setting, validation=held, **train):
        return api._refits(TrainConfig(refit=setting, **train), {"train": few, "validation": validation})

    assert refits("yes") and refits("auto") and not refits("no")
    assert not refits("yes", validation=[])  # nothing held out
    assert not refits("auto", max_minutes=5) and refits("yes", max_minutes=5)
    monkeypatch.setattr(api, "REFIT_AUTO_BELOW", 10)
    assert not refits("auto") and refits("yes")  # 10 examples: not under 10


def test_cli_refit_says_what_it_does(reviews, tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "seqlab", "train", "--data", str(reviews), "--family", "bow",
                           "--epochs", "2", "--refit", "yes", "--no-progress", "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refit on training + validation data" in proc.stderr
    assert json.loads((out / "metrics.json").read_text())["refit"]["examples"] == 80


def test_testing_a_refit_model_on_its_validation_split_says_it_was_trained_on(reviews, tmp_path, capsys):
    seqlab.train(out=tmp_path / "m", data=str(reviews), family="bow", epochs=1, refit="yes", progress=False)
    capsys.readouterr()
    api.test(tmp_path / "m", split="validation")
    assert "not a held-out one" in capsys.readouterr().err
    seqlab.train(out=tmp_path / "plain", data=str(reviews), family="bow", epochs=1, refit="no", progress=False)
    capsys.readouterr()
    api.test(tmp_path / "plain", split="validation")  # held out from its only run
    assert "not a held-out one" not in capsys.readouterr().err
