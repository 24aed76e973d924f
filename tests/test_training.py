"""Training behaviour: same seed -> same metrics, --resume ends where an uninterrupted run
would, tokenizers fit on train only, bucketed batches."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from seqlab.cli import main
from seqlab.config import build_config
from seqlab.data.batching import BucketBatchSampler, pad_sequences
from seqlab.data.tokenize import TextTokenizer
from seqlab.errors import SeqlabError


def _train(out, *extra):
    args = ["train", "--data", "demo", "--family", "gru", "--limit", "400", "--embed-dim", "16",
            "--hidden-dim", "16", "--batch-size", "32", "--seed", "3", "--patience", "0",
            "--out", str(out), "--no-progress", "--refit", "no", *extra]  # one run's mechanics (test_refit.py)
    assert main(args) == 0
    return json.loads((out / "metrics.json").read_text())


def _weights(out):
    return load_file(out / "model.safetensors")


def test_same_seed_same_result_and_resume_matches(tmp_path):
    straight = _train(tmp_path / "a", "--epochs", "2")
    again = _train(tmp_path / "b", "--epochs", "2")
    assert straight["validation"]["accuracy"] == again["validation"]["accuracy"]
    for k, v in _weights(tmp_path / "a").items():
        torch.testing.assert_close(_weights(tmp_path / "b")[k], v, atol=0, rtol=0)
    # stop after one epoch (as if killed), then resume to two
    _train(tmp_path / "c", "--epochs", "1")
    assert (tmp_path / "c" / "checkpoints" / "last.ckpt").is_file()
    resumed = _train(tmp_path / "c", "--epochs", "2", "--resume")
    assert resumed["validation"]["accuracy"] == straight["validation"]["accuracy"]
    for k, v in _weights(tmp_path / "a").items():
        torch.testing.assert_close(_weights(tmp_path / "c")[k], v)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    code = main(["train", "--data", "demo", "--family", "bow", "--out", str(tmp_path / "x"),
                 "--resume", "--no-progress", "--limit", "100"])
    assert code == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err


def test_tokenizer_fit_on_train_only_and_char_level_unicode():
    tok = TextTokenizer.fit(["the cat sat", "the dog"], level="word")
    assert tok.token_to_id("zebra") is None
    ids = tok.encode("the zebra")
    assert ids[1] == 1  # <unk>
    chars = TextTokenizer.fit(["Dvořák", "Łukasz"], level="char", lowercase=False)
    assert chars.decode(chars.encode("Łuk")) == "Łuk"
    assert len(chars.encode("ř")) == 1  # one code point, not bytes


def test_word_tokenizer_strips_html_breaks_and_keeps_apostrophes():
    tok = TextTokenizer.fit(["Don't<br />stop"], level="word")
    assert tok.tokens("Don't<br />stop") == ["don't", "stop"]


def test_tokenizer_save_load(tmp_path):
    tok = TextTokenizer.fit(["a b c", "b c d"], level="word", max_vocab=3)
    tok.save(tmp_path / "t.json")
    again = TextTokenizer.load(tmp_path / "t.json")
    assert again.encode("a b c d") == tok.encode("a b c d") and again.level == "word"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SeqlabError, match="bad.json"):
        TextTokenizer.load(tmp_path / "bad.json")


def test_bucket_sampler_groups_lengths_covers_all_and_depends_on_epoch():
    lengths = [(i * 37) % 100 + 1 for i in range(1000)]
    sampler = BucketBatchSampler(lengths, 20, seed=1, world_size=1, rank=0)
    first = list(sampler)
    assert sorted(i for b in first for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first) / len(first)
    assert spread < 10  # batches hold similar lengths, so padding is small
    assert list(sampler) == first  # same epoch, same batches
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_bucket_sampler_splits_each_global_batch_across_ranks():
    """--batch-size is the global batch: each rank takes its share of every batch one process
    would take, in the same order; an empty share (last batch smaller than the world) is a ghost."""
    lengths = list(range(1, 104))
    whole = list(BucketBatchSampler(lengths, 10, seed=0, rank=0, world_size=1))
    for world in (2, 3):
        shards = [list(BucketBatchSampler(lengths, 10, seed=0, rank=r, world_size=world)) for r in range(world)]
        assert [len(s) for s in shards] == [len(whole)] * world == [11] * world  # steps as one process
        for step, batch in enumerate(whole):
            shares = [s[step] for s in shards]
            real = [i for share in shares for i in share if i < len(lengths)]
            assert sorted(real) == sorted(batch)  # the shares are the one-process batch
            assert max(len(x) for x in shares) - min(len(x) for x in shares) <= 1
    # 102 examples: one batch of 2 for 3 ranks, so one rank steps on a ghost exactly once
    shards = [list(BucketBatchSampler(lengths[:102], 10, seed=0, rank=r, world_size=3)) for r in range(3)]
    ghosts = [(r, step) for r in range(3) for step, share in enumerate(shards[r]) if share[0] >= 102]
    assert len(ghosts) == 1 and ghosts[0][0] == 2 and len(shards[2][ghosts[0][1]]) == 1


def test_pad_sequences():
    ids, lengths = pad_sequences([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]


def test_config_layers_and_errors(tmp_path):
    cfg = build_config(data="names", family="cnn", settings={"epochs": 2, "model.filters": 7})
    assert cfg.data.tokenizer == "char" and cfg.model.dropout == 0.5  # dataset/family defaults
    assert cfg.train.epochs == 2 and cfg.model.filters == 7
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("model:\n  hidden_dim: 77\ntrain:\n  epochs: 9\n")
    cfg = build_config(family="lstm", config_file=yaml_file, settings={"train.epochs": 4})
    assert cfg.model.hidden_dim == 77 and cfg.train.epochs == 4  # flags beat the file
    with pytest.raises(SeqlabError, match="unknown setting"):
        build_config(settings={"model.hiden_dim": 3})
    with pytest.raises(SeqlabError, match="cannot read"):
        build_config(settings={"train.epochs": "many"})
    (tmp_path / "bad.yaml").write_text("model: [1, 2\n")
    with pytest.raises(SeqlabError, match="bad.yaml"):
        build_config(config_file=tmp_path / "bad.yaml")


def _seqlab(*argv, **kw):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "seqlab", *argv], capture_output=True, text=True,
                          timeout=300, **kw)


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path, capsys):
    """SIGKILL a real training process at a random moment (a second writer into its folder is
    refused meanwhile); --resume then ends exactly where an uninterrupted run ends."""
    import csv
    import random
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "m"
    args = ["train", "--data", "demo", "--family", "gru", "--limit", "400", "--embed-dim", "16",
            "--hidden-dim", "16", "--patience", "0", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "seqlab", *args, "--epochs", "500"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.is_file() and time.time() < deadline:
        time.sleep(0.1)
    # one writer per run folder: a second training into it refuses while the first lives
    code = main([*args, "--epochs", "1", "--overwrite"])
    assert code == 2 and f"another seqlab run (pid {proc.pid})" in capsys.readouterr().err
    time.sleep(random.uniform(0.0, 2.0))  # any moment: mid-epoch, mid-validation, mid-checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.is_file() and not (out / "config.json").exists()
    import torch

    epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    done = _seqlab(*args, "--epochs", str(epoch + 2), "--resume")  # the dead owner's lock is taken over
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "config.json").read_text())["family"] == "gru"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == epoch + 2
    straight = tmp_path / "straight"  # uninterrupted, in a fresh process like the two above
    done = _seqlab(*args[:-3], "--out", str(straight), "--no-progress", "--epochs", str(epoch + 2))
    assert done.returncode == 0, done.stderr[-2000:]
    expected = json.loads((straight / "metrics.json").read_text())
    assert metrics["validation"] == expected["validation"]
    for k, v in _weights(straight).items():
        torch.testing.assert_close(_weights(out)[k], v)
    # the CSV log holds each epoch's validation once: continued, not overwritten or repeated
    rows = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows if r.get("val_loss")] == list(range(epoch + 2))
    # resuming past --epochs is a clear one-line error, not a traceback
    past = _seqlab(*args, "--epochs", "1", "--resume")
    assert past.returncode == 2 and "Traceback" not in past.stderr and "cannot resume" in past.stderr


def test_shipped_presets_parse():
    from pathlib import Path

    presets = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    assert presets
    for path in presets:
        cfg = build_config(data=path.stem.split("-")[0], config_file=path)
        assert cfg.model.family in path.stem or cfg.model.family == "linear"


def test_classify_word_dropout_reads_rare_words_as_unk_in_training_only():
    from seqlab.data.tokenize import UNK_ID
    from seqlab.tasks import make_task

    train = [{"text": "good film", "label": "pos"}, {"text": "bad film", "label": "neg"}] * 3
    task = make_task(build_config(task="classify", settings={"model.word_dropout": 0.25}))
    task.fit_vocab(train)
    film, good = task.tokenizer.token_to_id("film"), task.tokenizer.token_to_id("good")
    assert float(task.unk_prob[film]) == pytest.approx(0.25 / 6.25)
    assert float(task.unk_prob[good]) == pytest.approx(0.25 / 3.25)
    task.unk_prob[good] = 1.0
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, ids, lengths):
            seen.append(ids.clone())
            return torch.zeros(ids.size(0), 2, requires_grad=True)

    batch = task.collate(task.encode(train[:1]))
    task.loss(Spy().train(), batch)
    task.loss(Spy().eval(), batch)
    assert int(seen[0][0, 0]) == UNK_ID and int(seen[1][0, 0]) == good
    assert make_task(build_config(task="classify")).unk_prob is None


def test_ema_keeps_the_averaged_weights_and_resumes_exactly(tmp_path):
    straight = _train(tmp_path / "a", "--epochs", "2", "--ema", "0.9")
    ckpt = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    averaged, raw = ckpt["state_dict"], ckpt["current_model_state"]
    bundle = _weights(tmp_path / "a")
    name = next(k for k in bundle if "head.weight" in k)
    # the checkpoint's model is the average, distinct from the weights the optimizer moved
    assert not torch.equal(averaged["model." + name], raw["model." + name])
    best = torch.load(tmp_path / "a" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    torch.testing.assert_close(bundle[name], best["state_dict"]["model." + name])  # the bundle: an average
    assert "current_model_state" in best
    _train(tmp_path / "c", "--epochs", "1", "--ema", "0.9")
    resumed = _train(tmp_path / "c", "--epochs", "2", "--ema", "0.9", "--resume")
    assert resumed["validation"]["accuracy"] == straight["validation"]["accuracy"]
    for k, v in bundle.items():
        torch.testing.assert_close(_weights(tmp_path / "c")[k], v)


def test_ema_decay_warms_up():
    from seqlab.training import ema_decay

    assert float(ema_decay(0.999, 0)) == pytest.approx(0.1)  # the first average is mostly the current weights
    assert float(ema_decay(0.999, 100)) < float(ema_decay(0.999, 1000)) < float(ema_decay(0.999, 10**5))
    assert float(ema_decay(0.999, 10**5)) == pytest.approx(0.999)


def test_bad_ema_or_lr_decay_fails_before_reading_data(tmp_path, capsys):
    for flag, value in (("--ema", "1.5"), ("--lr-decay", "0")):
        code = main(["train", "--data", str(tmp_path / "missing.csv"), "--family", "gru",
                     "--out", str(tmp_path / "x"), flag, value])
        assert code == 2
        err = capsys.readouterr().err
        assert flag in err and "missing.csv" not in err and "Traceback" not in err
