"""Stratified K-fold cross-validation (seqlab.crossval): folds, the per-fold table, the final bundle."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import seqlab
from seqlab.config import build_config
from seqlab.crossval import cross_validate, make_folds, pool_examples
from seqlab.errors import SeqlabError

POS = ["great", "good", "superb", "lovely", "fine"]
NEG = ["awful", "bad", "poor", "dreadful", "weak"]


def write_csv(path: Path, n: int, offset: int = 0) -> Path:
    """n separable examples, 60% pos: a sentiment word decides the label."""
    rows = ["text,label"]
    for i in range(offset, offset + n):
        label = "pos" if i % 5 < 3 else "neg"
        word = (POS if label == "pos" else NEG)[i % 5]
        rows.append(f"the item {i} was {word} really,{label}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def labeled(counts: dict[str, int]) -> list[dict[str, str]]:
    return [{"text": f"{lab}{i}", "label": lab} for lab, n in counts.items() for i in range(n)]


def test_make_folds_stratified_partition_and_deterministic():
    examples = labeled({"a": 70, "b": 30})
    folds = make_folds(examples, 5, seed=0)
    held = [i for _, part in folds for i in part]
    assert sorted(held) == list(range(100))  # every example held out exactly once
    for train, part in folds:
        assert Counter(examples[i]["label"] for i in part) == {"a": 14, "b": 6}
        assert not set(train) & set(part)
    assert folds == make_folds(examples, 5, seed=0)
    assert folds != make_folds(examples, 5, seed=1)


def test_make_folds_bad_inputs():
    with pytest.raises(SeqlabError, match="at least 2 folds"):
        make_folds(labeled({"a": 5, "b": 5}), 1, seed=0)
    with pytest.raises(SeqlabError, match="too few examples for 10 folds"):
        make_folds(labeled({"a": 3, "b": 3}), 10, seed=0)


def test_pool_keeps_the_official_test_apart():
    splits = {"train": labeled({"a": 3}), "validation": labeled({"b": 2}), "test": labeled({"c": 1})}
    pooled, test = pool_examples(splits)
    assert len(pooled) == 5 and test == splits["test"]


def test_linear_cv_writes_table_and_no_bundle(tmp_path):
    data = write_csv(tmp_path / "d.csv", 60)
    cfg = build_config(task="classify", data=str(data), family="linear", settings={"train.seed": 0})
    out = tmp_path / "cv"
    report = cross_validate(cfg, 3, out, seed=0)
    assert report["k"] == 3 and report["examples"] == 60 and len(report["folds"]) == 3
    assert sum(row["heldout"] for row in report["folds"]) == 60
    # one fit, nothing chosen on validation: each fold trains on all of its other parts
    assert [(row["train"], row["validation"]) for row in report["folds"]] == [(40, 0)] * 3
    assert "val_accuracy" not in report["mean"] and report["validation_fraction"] == 0.0
    assert report["mean"]["accuracy"] == 1.0 and report["std"]["accuracy"] == 0.0
    assert report["summary"]["accuracy"] == "1.0000 ± 0.0000"
    assert report["final"] is None
    assert json.loads((out / "crossval.json").read_text()) == report
    table = (out / "crossval.md").read_text()
    assert "| mean ± std |" in table and "Final bundle: not written" in table
    assert sorted(p.name for p in out.iterdir()) == ["crossval.json", "crossval.md"]  # folds removed
    again = cross_validate(cfg, 3, tmp_path / "again", seed=0)["folds"]
    drop_time = [{k: v for k, v in row.items() if k != "seconds"} for row in report["folds"]]
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in again] == drop_time


def test_linear_cv_final_bundle_is_fit_on_all_the_data_like_its_folds(tmp_path):
    data = write_csv(tmp_path / "d.csv", 60)
    cfg = build_config(task="classify", data=str(data), family="linear")
    report = cross_validate(cfg, 3, tmp_path / "cv", seed=0, final=True)
    bundle = seqlab.load(report["final"])
    assert "validation" not in bundle.metrics  # nothing carved: all 60 examples fit it
    assert bundle.predict(["the item was great really"])[0]["label"] in {"pos", "neg"}


def test_neural_cv_with_official_test_kept_folds_and_final(tmp_path):
    train = write_csv(tmp_path / "train.csv", 40)
    test = write_csv(tmp_path / "test.csv", 10, offset=100)
    cfg = build_config(task="classify", data=str(train), family="bow", settings={
        "data.test_data": str(test), "train.epochs": 2, "train.progress": False, "model.embed_dim": 8,
        "model.hidden_dim": 8, "train.batch_size": 8})
    out = tmp_path / "cv"
    report = cross_validate(cfg, 2, out, seed=0, final=True, keep_folds=True)
    assert report["examples"] == 40 and report["official_test"] == 10
    assert {"accuracy", "macro_f1", "val_accuracy", "test_accuracy", "epochs"} <= set(report["mean"])
    assert all(row["validation"] > 0 and row["train"] + row["validation"] == 20 for row in report["folds"])
    assert (out / "fold-01" / "config.json").is_file() and (out / "fold-02" / "config.json").is_file()
    assert report["final"] == str(out / "final")
    bundle = seqlab.load(out / "final")
    assert bundle.metrics["test"]["examples"] == 10
    assert bundle.predict(["the item was great really"])[0]["label"] in {"pos", "neg"}


def test_cv_refuses_other_tasks(tmp_path):
    cfg = build_config(task="tag", data="ud-ewt", family="lstm")
    with pytest.raises(SeqlabError, match="--task classify"):
        cross_validate(cfg, 3, tmp_path / "cv")


def test_cv_on_a_real_suite_slice(shared_data, tmp_path):
    cfg = build_config(task="classify", data="subj", family="linear",
                       settings={"data.data_dir": str(shared_data), "data.limit": 300})
    report = cross_validate(cfg, 3, tmp_path / "cv", seed=0)
    assert report["examples"] == 600  # at most 300 from each of train and the carved validation
    assert 0.6 < report["mean"]["accuracy"] <= 1.0


def test_compare_cv_cross_validates_every_family_on_the_same_folds(tmp_path):
    """`seqlab compare --cv K`: one row per family with mean ± std over the same K folds, the
    families' fold tables beside it, no bundles; equal to each family's own `train --cv K`."""
    from seqlab.cli import main

    data = write_csv(tmp_path / "d.csv", 60)
    out = tmp_path / "cmp"
    assert main(["compare", "--data", str(data), "--families", "linear,bow", "--cv", "3", "--out", str(out),
                 "--epochs", "2", "--no-progress"]) == 0
    report = json.loads((out / "compare.json").read_text())
    assert report["cv"] == 3 and set(report["results"]) == {"linear", "bow"}
    for name in ("linear", "bow"):
        row = report["results"][name]
        assert row["accuracy_cv"].count("±") == 1 and 0 <= row["accuracy"] <= 1
        folds = json.loads((out / name / "crossval.json").read_text())
        assert folds["k"] == 3 and [f["heldout"] for f in folds["folds"]] == [20, 20, 20]
        assert not any((out / name).glob("fold-*")) and not (out / name / "model.safetensors").exists()
    assert "3-fold mean ± std" in report["table"] and (out / "compare.png").is_file()
    alone = tmp_path / "alone"
    assert main(["train", "--data", str(data), "--family", "bow", "--cv", "3", "--out", str(alone),
                 "--epochs", "2", "--no-progress"]) == 0
    assert json.loads((alone / "crossval.json").read_text())["mean"]["accuracy"] == report["results"]["bow"]["accuracy"]
    # --cv 0 is refused (it once read as "no --cv" and ran a plain comparison)
    assert main(["compare", "--data", str(data), "--families", "linear", "--cv", "0",
                 "--out", str(tmp_path / "zero")]) == 2
