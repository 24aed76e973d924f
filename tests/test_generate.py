"""Conditional generation (one-to-many): the condition drives a recurrent decoder, sampling
is seeded and batched, and the command line writes names for a language."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import run_cli, train_steps
from seqlab.cli import main
from seqlab.config import build_config
from seqlab.errors import SeqlabError
from seqlab.tasks import make_task
from seqlab.tasks.generate import generation_metrics

TOY = [{"condition": "A", "text": "aaab"}, {"condition": "B", "text": "bbba"}, {"condition": "C", "text": "cab"}] * 8


def _task(family="gru", **settings):
    cfg = build_config(task="generate", family=family, settings={
        "model.embed_dim": 8, "model.hidden_dim": 16, "model.dropout": 0.0, **settings})
    task = make_task(cfg)
    task.fit_vocab(TOY)
    return task


@pytest.mark.parametrize("family", ["gru", "lstm", "rnn"])
def test_decoder_is_causal_and_conditioned(family):
    torch.manual_seed(0)
    model = _task(family, **{"model.layers": 2}).build_model().eval()
    ids = torch.randint(4, 7, (2, 6))
    lengths = torch.full((2,), 6)
    cond = torch.tensor([0, 1])
    base, _ = model(ids, lengths, cond)
    changed = ids.clone()
    changed[:, 3:] = (changed[:, 3:] - 3) % 3 + 4
    after, _ = model(changed, lengths, cond)
    torch.testing.assert_close(after[:, :3], base[:, :3])  # later characters never change earlier steps
    other, _ = model(ids, lengths, torch.tensor([2, 2]))
    assert not torch.allclose(other[:, 0], base[:, 0])  # the condition matters from the first step


def test_only_recurrent_families_generate():
    with pytest.raises(SeqlabError, match="needs a family that starts from a state"):
        _task("cnn").build_model()


def test_learns_to_write_what_each_condition_asks_for():
    torch.manual_seed(0)
    task = _task("gru", **{"model.hidden_dim": 32, "train.batch_size": 8})
    model = task.build_model()
    train_steps(task, model, task.encode(TOY), epochs=30, lr=0.02)
    for cond, text in (("A", "aaab"), ("B", "bbba"), ("C", "cab")):
        assert task.sample(model, cond, 3, top_k=1, seed=0) == [text] * 3
    assert task.sample(model, "C", 2, top_k=1, prime="c") == ["cab"] * 2  # a prime starts the text
    assert task.predict(model, ["bbba"])[0]["condition"] == "B"
    assert task.evaluate(model, TOY)["nats_per_char"] < 0.1
    samples = task.sample(model, "A", 5, seed=1)
    assert samples == task.sample(model, "A", 5, seed=1)


def test_guidance_contrasts_with_the_learned_unconditional_model():
    torch.manual_seed(0)
    task = _task("gru", **{"model.hidden_dim": 32, "train.batch_size": 8, "model.condition_dropout": 0.3})
    model = task.build_model()
    assert model.condition.num_embeddings == len(task.conditions) + 1  # + the null condition
    train_steps(task, model, task.encode(TOY), epochs=40, lr=0.02)
    for cond, text in (("A", "aaab"), ("B", "bbba"), ("C", "cab")):
        assert task.sample(model, cond, 2, top_k=1, seed=0, guidance=1.5) == [text] * 2
    guided = task.sample(model, "A", 6, seed=3, guidance=1.0)
    assert guided == task.sample(model, "A", 6, seed=3, guidance=1.0) and len(guided) == 6
    with pytest.raises(SeqlabError, match="--guidance must be 0 or more"):
        task.sample(model, "A", 2, guidance=-1)
    plain = _task("gru", **{"model.condition_dropout": 0.0})
    with pytest.raises(SeqlabError, match="needs a model trained with --condition-dropout"):
        plain.sample(plain.build_model(), "A", 2, guidance=1.0)


def test_sampling_bad_inputs():
    task = _task()
    model = task.build_model()
    with pytest.raises(SeqlabError, match=r"condition 'Klingon' was not seen in training; known conditions: A, B, C"):
        task.sample(model, "Klingon", 3)
    with pytest.raises(SeqlabError, match="-n must be at least 1"):
        task.sample(model, "A", 0)
    with pytest.raises(SeqlabError, match="temperature"):
        task.sample(model, "A", 2, temperature=0)


@pytest.fixture(scope="module")
def names_model(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("gen") / "gru"
    code = main(["train", "--task", "generate", "--family", "gru", "--data", "names", "--data-dir", str(shared_data),
                 "--epochs", "1", "--limit", "3000", "--hidden-dim", "64", "--seed", "0", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    return out


def test_generate_names_for_a_language(names_model, shared_data, capsys):
    metrics = json.loads((names_model / "metrics.json").read_text())
    assert 0.5 < metrics["validation"]["nats_per_char"] < 3.5
    args = ["generate", str(names_model), "--condition", "Russian", "-n", "10", "--temperature", "0.8"]
    code, first, _ = run_cli(capsys, *args, "--seed", "1")
    lines = first.rstrip("\n").split("\n")
    assert code == 0 and len(lines) == 10 and all(lines)
    assert run_cli(capsys, *args, "--seed", "1")[1] == first
    code, out, _ = run_cli(capsys, *args, "--seed", "1", "--json")
    assert json.loads(out)["texts"] == lines
    code, _, err = run_cli(capsys, "generate", str(names_model), "--condition", "Klingon")
    assert code == 2 and "known conditions: Arabic, Chinese" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "generate", str(names_model))
    assert code == 2 and "give a condition" in err
    code, _, err = run_cli(capsys, "generate", str(names_model), "--condition", "Russian", "-n", "0")
    assert code == 2 and "-n must be at least 1" in err


def test_novelty_and_conditioning_accuracy(names_model, shared_data, tmp_path, capsys):
    import seqlab
    from seqlab.data.datasets import load_dataset

    classifier = seqlab.train(out=tmp_path / "cls", task="classify", data="names", family="linear",
                              data_dir=str(shared_data), features="count", ngram_max=3, progress=False)
    train = {ex["text"] for ex in load_dataset("names", shared_data)["train"]}
    report = generation_metrics(seqlab.load(names_model), train, classifier, per_condition=5)
    assert report["samples"] == 5 * 18 and 0.0 <= report["novelty"] <= 1.0
    assert 0.0 <= report["conditioning_accuracy"] <= 1.0
    assert set(report["per_condition"]) == set(classifier.labels)
    prior = {label: 1 / 18 for label in classifier.labels}  # uniform: the same decisions
    again = generation_metrics(seqlab.load(names_model), train, classifier, per_condition=5, prior=prior)
    assert again["conditioning_accuracy_uniform_prior"] == pytest.approx(again["conditioning_accuracy"])
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "test", str(names_model), "--classifier", str(tmp_path / "cls"), "--json")
    metrics = json.loads(out)["metrics"]
    assert code == 0 and metrics["samples"] == 100 * 18 and 0.0 <= metrics["conditioning_accuracy"] <= 1.0
    assert metrics["nats_per_char"] > 0 and 0.0 <= metrics["novelty"] <= 1.0


def test_condition_and_text_columns_from_a_file(tmp_path, capsys):
    path = tmp_path / "pets.csv"
    rows = [("cat", "Tom"), ("cat", "Felix"), ("dog", "Rex"), ("dog", "Fido")] * 10
    path.write_text("kind,name\n" + "".join(f"{k},{n}\n" for k, n in rows), encoding="utf-8")
    code, out, err = run_cli(capsys, "train", "--task", "generate", "--data", str(path), "--condition-column", "kind",
                          "--text-column", "name", "--epochs", "1", "--out", str(tmp_path / "m"), "--no-progress",
                          "--json")
    assert code == 0, err
    code, out, _ = run_cli(capsys, "generate", str(tmp_path / "m"), "--condition", "dog", "-n", "3", "--seed", "0")
    assert code == 0 and len(out.strip().split("\n")) == 3
