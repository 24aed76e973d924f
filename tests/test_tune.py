"""seqlab tune (seqlab.tune): the search space each family declares, a tiny study end to end
(best.yaml, trials table, plots, final bundle), --resume, pruning, and one-line errors."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from helpers import run_cli
from seqlab.config import RunConfig, build_config, search_space
from seqlab.errors import SeqlabError

POS = ["great", "good", "superb", "lovely", "fine"]
NEG = ["awful", "bad", "poor", "dreadful", "weak"]
PNG = b"\x89PNG\r\n\x1a\n"


def write_csv(path: Path, n: int = 80) -> Path:
    """n separable examples: a sentiment word decides the label."""
    rows = ["text,label"]
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        rows.append(f"the item {i} was {(POS if label == 'pos' else NEG)[i % 5]} really,{label}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def read_trials(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_each_family_searches_what_it_reads():
    cnn, lstm, linear = (search_space("classify", f) for f in ("cnn", "lstm", "linear"))
    assert {"model.kernel_sizes", "model.filters", "train.lr", "model.dropout", "model.word_dropout"} <= set(cnn)
    assert "model.hidden_dim" not in cnn  # the cnn has no hidden layer (its row declares it unused)
    assert {"model.bidirectional", "model.pooling", "model.layers", "model.hidden_dim"} <= set(lstm)
    assert not {"model.kernel_sizes", "model.bigrams"} & set(lstm)
    assert set(linear) == {"model.C", "model.features", "model.ngram_max", "model.nb", "model.classifier", "model.beta",
                           "model.punctuation"}  # no Lightning settings
    assert cnn["train.lr"] is lstm["train.lr"]  # one declaration, shared
    assert cnn["train.lr"].log and cnn["train.lr"].low < 1e-3 < cnn["train.lr"].high
    # the default recipe lies inside the space, so the first trial can be exactly the default
    for family, space in (("cnn", cnn), ("lstm", lstm), ("linear", linear)):
        cfg = build_config(task="classify", data="demo", family=family)
        for name, search in space.items():
            section, _, key = name.partition(".")
            if name != "model.hash_buckets":  # its default 2**18 is left out on purpose: minutes per trial
                assert search.contains(getattr(getattr(cfg, section), key)), (family, name)


def test_fixed_settings_and_pretrained_vectors_leave_the_search(tmp_path):
    from seqlab.tune import tuned_space

    cfg = build_config(data="demo", family="gru", settings={"model.layers": 2})
    space = tuned_space(cfg, {"model.layers", "train.lr"})
    assert "model.layers" not in space and "train.lr" not in space and "model.embed_dim" in space
    cfg.model.embeddings = str(tmp_path / "vectors.txt")
    assert "model.embed_dim" not in tuned_space(cfg, set())


def test_tiny_study_writes_best_config_trials_plots_and_final_bundle_then_resumes(tmp_path, capsys):
    pytest.importorskip("optuna")
    data, out = write_csv(tmp_path / "d.csv"), tmp_path / "tune"
    common = ["tune", "--data", str(data), "--family", "cnn", "--budget-minutes", "5", "--epochs", "2",
              "--embed-dim", "16", "--no-progress", "--out", str(out)]
    code, stdout, err = run_cli(capsys, *common, "--trials", "2", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    rows = read_trials(out / "trials.csv")
    assert [r["number"] for r in rows] == ["0", "1"] and all(r["state"] == "COMPLETE" for r in rows)
    default_lr = build_config(task="classify", data=str(data), family="cnn").train.lr
    assert rows[0]["default"] == "True" and float(rows[0]["train.lr"]) == default_lr  # trial 0: the default recipe
    assert all(r["cut"] == "False" for r in rows)
    assert "model.embed_dim" not in rows[0]  # fixed by a flag: not searched
    assert "model.kernel_sizes" in rows[0] and "model.hidden_dim" not in rows[0]
    values = [float(r["value"]) for r in rows]
    assert report["best"]["value"] == max(values) and report["default"]["value"] == values[0]
    assert err.count("seqlab: trial ") == 2
    for name in ("history.png", "importance.png"):
        assert (out / name).read_bytes().startswith(PNG)
    assert "Best: trial" in (out / "tune.md").read_text()
    # best.yaml is a config `seqlab train --config` reads back to the final bundle's settings
    best_cfg = build_config(config_file=out / "best.yaml")
    final = json.loads((out / "final" / "config.json").read_text())
    assert best_cfg.to_dict()["model"] == RunConfig.from_dict(final["config"]).to_dict()["model"]
    assert best_cfg.model.embed_dim == 16 and best_cfg.train.lr == pytest.approx(report["best"]["params"]["train.lr"])
    assert "validation" in json.loads((out / "final" / "metrics.json").read_text())
    assert not (out / "trials").exists()  # trial bundles are scored, then removed

    code, _, err = run_cli(capsys, *common, "--trials", "1")
    assert code == 2 and "holds a tuning study" in err and "--resume" in err
    code, _, err = run_cli(capsys, *common, "--trials", "1", "--resume")
    assert code == 0, err
    rows = read_trials(out / "trials.csv")
    assert [r["number"] for r in rows] == ["0", "1", "2"]  # added to the same study
    assert rows[2]["train.lr"] not in (rows[0]["train.lr"], rows[1]["train.lr"])  # not a replayed draw
    assert json.loads((out / "tune.json").read_text())["trials"] == 3


def test_an_estimator_family_is_tuned_without_lightning(tmp_path):
    pytest.importorskip("optuna")
    from seqlab.tune import tune

    out = tmp_path / "tune"
    report = tune(out=out, data=str(write_csv(tmp_path / "d.csv")), family="linear", budget_minutes=1, trials=3)
    rows = read_trials(out / "trials.csv")
    assert len(rows) == 3 and {r["state"] for r in rows} == {"COMPLETE"} and rows[0]["model.C"] == "3.0"
    assert set(report["searched"]) == {"model.C", "model.features", "model.ngram_max", "model.nb", "model.classifier", "model.beta",
                                       "model.punctuation"}
    assert (out / "final" / "linear.json").is_file() and (out / "best.yaml").is_file()
    assert report["best"]["value"] == max(float(r["value"]) for r in rows)


def test_a_trial_reporting_bad_scores_is_pruned():
    optuna = pytest.importorskip("optuna")
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from seqlab.tune import pruning_hook

    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    study.add_trial(create_trial(value=0.9, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                                 intermediate_values={0: 0.8, 1: 0.9}))
    trial = study.ask()
    reported: list[float] = []
    hook = pruning_hook(optuna, trial, "val_accuracy", reported)
    hook(0, {"val_accuracy": 0.85, "val_loss": 0.3})  # better than the median so far: goes on
    hook(1, {"train_loss": 0.1})  # no validation figure: nothing to judge
    with pytest.raises(optuna.TrialPruned):
        hook(1, {"val_accuracy": 0.1})
    assert reported == [0.85, 0.1]


def test_pruning_is_wired_through_training(tmp_path):
    optuna = pytest.importorskip("optuna")
    from seqlab.tune import tune_config

    cfg = build_config(data=str(write_csv(tmp_path / "d.csv")), family="cnn",
                       settings={"train.epochs": 3, "model.embed_dim": 16, "train.progress": False})
    out = tmp_path / "tune"
    never_good_enough = optuna.pruners.ThresholdPruner(lower=2.0)  # every accuracy is below 2: pruned
    with pytest.raises(SeqlabError, match="no trial finished within the budget .2 pruned"):
        tune_config(cfg, out, budget_minutes=5, trials=2, fixed={"model.embed_dim"}, pruner=never_good_enough)
    rows = read_trials(out / "trials.csv")
    assert [(r["state"], r["epochs"]) for r in rows] == [("PRUNED", "1"), ("PRUNED", "1")]  # after epoch 1 of 3
    assert not (out / "best.yaml").exists() and not (out / "final").exists()


def test_a_trial_the_budget_cuts_is_pruned_not_best(tmp_path):
    pytest.importorskip("optuna")
    from seqlab.tune import tune_config

    # 500 epochs without early stopping: far longer than the budget on any machine (5 epochs
    # took under the 0.6 s budget once fused Adam made training faster, and nothing was cut)
    cfg = build_config(data=str(write_csv(tmp_path / "d.csv")), family="cnn",
                       settings={"train.epochs": 500, "train.patience": 0, "model.embed_dim": 16,
                                 "train.progress": False})
    out = tmp_path / "tune"
    # 0.6 s: the first trial starts (one always does) and is still training when the budget ends
    with pytest.raises(SeqlabError, match="no trial finished within the budget .1 pruned"):
        tune_config(cfg, out, budget_minutes=0.01, fixed={"model.embed_dim"})
    rows = read_trials(out / "trials.csv")
    assert len(rows) == 1 and rows[0]["state"] == "PRUNED" and rows[0]["cut"] == "True"


@pytest.mark.parametrize(("argv", "message"), [
    (["--family", "transformer", "--budget-minutes", "5"], "unknown family 'transformer'"),
    (["--family", "cnn", "--budget-minutes", "0"], "--budget-minutes must be above 0 (got 0.0)"),
    (["--family", "cnn", "--budget-minutes", "-3"], "--budget-minutes must be above 0"),
    (["--family", "cnn", "--budget-minutes", "5", "--trials", "0"], "--trials must be at least 1"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    code, _, err = run_cli(capsys, "tune", "--data", "demo", "--out", str(tmp_path / "t"), *argv)
    assert code == 2 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "t").exists()


def test_resume_without_a_study_and_missing_optuna(tmp_path, capsys, monkeypatch):
    pytest.importorskip("optuna")
    code, _, err = run_cli(capsys, "tune", "--data", "demo", "--family", "cnn", "--budget-minutes", "1",
                           "--resume", "--out", str(tmp_path / "t"))
    assert code == 2 and "no study to resume" in err and err.count("\n") == 1
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if the extra were not installed
    code, _, err = run_cli(capsys, "tune", "--data", "demo", "--family", "cnn", "--budget-minutes", "1",
                           "--out", str(tmp_path / "t"))
    assert code == 2 and "pip install 'seqlab[tune]'" in err and err.count("\n") == 1
