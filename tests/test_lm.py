"""Language modeling: token streams on disk, TBPTT windows, decoding, the lm task per family,
and the command line (train, generate, inspect, test, predict) on a slice of Tiny Shakespeare."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from helpers import run_cli, train_steps
from seqlab.cli import main
from seqlab.config import build_config
from seqlab.data.stream import StreamWindows, TextSource, encode_stream, split_file
from seqlab.data.tokenize import TextTokenizer
from seqlab.decode import check_sampling, generate, greedy, sample_next
from seqlab.errors import SeqlabError
from seqlab.tasks import make_task

FAMILIES = ["lstm", "gru", "rnn", "cnn", "bow"]
NON_ASCII = "Příliš žluťoučký kůň úpěl ďábelské ódy. Съешь же ещё этих мягких булок! 🙂\n" * 40


@pytest.fixture(scope="module", autouse=True)
def stream_cache(tmp_path_factory):
    """Token streams go to a temp cache, never the user's ~/.cache/seqlab."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEQLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data):
    """The first 50k characters of Tiny Shakespeare, as a file."""
    text = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:50_000]
    path = tmp_path_factory.mktemp("corpus") / "shakespeare50k.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def char_model(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("lm") / "lstm"
    code = main(["train", "--task", "lm", "--data", str(corpus), "--family", "lstm", "--epochs", "1",
                 "--hidden-dim", "128", "--embed-dim", "32", "--batch-size", "16", "--seq-len", "32",
                 "--lr", "0.005", "--seed", "0", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def _lm_task(family, text="the cat sat on the mat. " * 20, **settings):
    cfg = build_config(task="lm", family=family, settings={
        "model.embed_dim": 8, "model.hidden_dim": 16, "model.filters": 8, "model.layers": 2,
        "model.dropout": 0.0, **settings})
    task = make_task(cfg)
    task.fit_vocab(TextSource(text=text))
    return task


# -- streams and windows ---------------------------------------------------------------------
def test_stream_is_a_cached_memmap(tmp_path):
    tok = TextTokenizer.fit(["abc\ndef"], level="char", lowercase=False)
    ids = encode_stream(TextSource(text="abc\ndef" * 10), tok, directory=tmp_path)
    assert isinstance(ids, np.memmap) and ids.dtype == np.uint16 and len(ids) == 70
    assert tok.decode(ids[:7].tolist()) == "abc\ndef"
    files = sorted(p.name for p in tmp_path.iterdir())
    again = encode_stream(TextSource(text="abc\ndef" * 10), tok, directory=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # reused, not rebuilt
    np.testing.assert_array_equal(again, ids)
    header = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert header["n_tokens"] == 70 and header["dtype"] == "uint16"


def test_file_source_splits_like_nanogpt_without_reading_whole(tmp_path, shared_data):
    from seqlab.data.datasets import load_dataset

    named = load_dataset("tinyshakespeare", shared_data)
    path = shared_data / "tinyshakespeare" / "input.txt"
    text = path.read_text(encoding="utf-8")
    assert named["train"] == text[: int(len(text) * 0.9)] and named["train"] + named["validation"] == text
    parts = split_file(path, "utf-8", 0.1)
    assert "".join(parts["validation"]) == named["validation"]
    assert "".join(parts["train"]) == named["train"]


def test_windows_are_aligned_and_continue_each_row():
    ids = np.arange(1003)
    w = StreamWindows(ids, batch_size=4, seq_len=12, rank=0, world_size=1)
    assert w.rows == 4 and w.row_len == 250 and len(w) == 21  # 20 full windows + 10 steps
    rows = [[] for _ in range(4)]
    for k in range(len(w)):
        b = w[k]
        assert bool(b["reset"]) == (k == 0)
        assert torch.equal(b["targets"], b["ids"] + 1)  # next token at every step
        assert b["lengths"].tolist() == [b["ids"].size(1)] * 4
        for r in range(4):
            rows[r] += b["ids"][r].tolist()
    assert w[20]["ids"].shape == (4, 10)
    for r in range(4):  # window k+1 starts where window k stopped: one unbroken text per row
        assert rows[r] == list(range(r * 250, (r + 1) * 250))


def test_ranks_get_their_own_rows_and_equal_windows():
    ids = np.arange(2001)
    shards = [StreamWindows(ids, 3, 10, rank=r, world_size=2) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1])
    first = [set(s[0]["ids"][:, 0].tolist()) for s in shards]
    assert not first[0] & first[1]


def test_corpus_shorter_than_a_window_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SeqlabError, match=r"has 50 tokens.*--seq-len 100 needs at least 101"):
        StreamWindows(np.arange(50), 4, 100, rank=0, world_size=1)
    short = tmp_path / "short.txt"
    short.write_text("To be, or not to be: that is the question.\n" * 5, encoding="utf-8")
    code, _, err = run_cli(capsys, "train", "--task", "lm", "--data", str(short), "--seq-len", "500",
                        "--out", str(tmp_path / "m"), "--no-progress")
    assert code == 2 and "too short for one window" in err and "--seq-len 500" in err


# -- decoding ----------------------------------------------------------------------------------
def test_sampling_settings_are_checked():
    logits = torch.randn(1, 10)
    for bad in (0.0, -1.0):
        with pytest.raises(SeqlabError, match="temperature must be above 0"):
            sample_next(logits, temperature=bad)
    with pytest.raises(SeqlabError, match="top-k must be at least 1"):
        check_sampling(1.0, 0)


def test_top_k_1_is_greedy_and_seeds_repeat():
    torch.manual_seed(0)
    logits = torch.randn(8, 30)
    gen = torch.Generator().manual_seed(5)
    assert torch.equal(sample_next(logits, 1.0, top_k=1, generator=gen), greedy(logits))
    table = torch.randn(30, 30)

    def step(ids, state):
        return table[ids[:, -1]], state

    a = list(generate(step, None, [1, 2], 50, temperature=1.0, seed=7))
    b = list(generate(step, None, [1, 2], 50, temperature=1.0, seed=7))
    c = list(generate(step, None, [1, 2], 50, temperature=1.0, seed=8))
    assert a == b and a != c and len(a) == 50
    assert set(generate(step, None, [1], 40, top_k=3, seed=1)) <= set(range(30))


# -- the model, per family -----------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_lm_is_causal(family):
    torch.manual_seed(0)
    model = _lm_task(family).build_model().eval()
    ids = torch.randint(4, 14, (3, 12))
    lengths = torch.full((3,), 12)
    base, _ = model(ids, lengths)
    changed = ids.clone()
    changed[:, 7:] = (changed[:, 7:] - 3) % 10 + 4
    after, _ = model(changed, lengths)
    torch.testing.assert_close(after[:, :7], base[:, :7])  # a later char never changes earlier steps
    assert not torch.allclose(after[:, 7:], base[:, 7:])


@pytest.mark.parametrize("family", FAMILIES)
def test_carried_state_equals_one_unbroken_pass(family):
    """Windows with the carried state give the logits of one pass over the whole text."""
    torch.manual_seed(0)
    model = _lm_task(family).build_model().eval()
    ids = torch.randint(4, 14, (2, 15))
    whole, _ = model(ids, torch.full((2,), 15))
    pieces, state = [], None
    for lo in range(0, 15, 5):
        out, state = model(ids[:, lo : lo + 5], torch.full((2,), 5), state)
        pieces.append(out)
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, atol=1e-5, rtol=1e-5)


def test_task_loss_carries_state_in_window_order_and_resets():
    task = _lm_task("gru", text=NON_ASCII, **{"train.seq_len": 7, "train.batch_size": 3})
    model = task.build_model().eval()
    ids = task.encode(TextSource(text=NON_ASCII))
    windows = task.windows(ids, train=True, shard=False)
    with torch.no_grad():
        per_window, state = [], None
        for k in range(len(windows)):
            out = task.step(model, windows[k], state)
            per_window.append(out.loss * windows[k]["targets"].numel())
            state = out.state
        again = task.step(model, windows[0], state).loss  # a new pass: reset, not carried from the last window
        rows = torch.as_tensor(np.asarray(ids[: windows.rows * windows.row_len + 1], dtype=np.int64))
        x = torch.stack([rows[r * windows.row_len : (r + 1) * windows.row_len + 1] for r in range(windows.rows)])
        logits, _ = model(x[:, :-1], torch.full((windows.rows,), windows.row_len))
        whole = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten(), reduction="sum")
    torch.testing.assert_close(sum(per_window), whole, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(again * windows[0]["targets"].numel(), per_window[0])


def test_overfits_a_tiny_corpus():
    torch.manual_seed(0)
    text = "hello world, hello seqlab.\n" * 30
    task = _lm_task("lstm", text=text, **{"train.seq_len": 16, "train.batch_size": 4, "model.hidden_dim": 32})
    model = task.build_model()
    train_steps(task, model, task.encode(TextSource(text=text)), epochs=25, lr=0.02)
    assert task.evaluate(model, text)["nats_per_char"] < 0.2


def test_lm_defaults_read_characters_as_written():
    cfg = build_config(task="lm", data="tinyshakespeare")
    assert (cfg.data.tokenizer, cfg.data.lowercase, cfg.train.seq_len) == ("char", False, 100)
    assert build_config(task="lm", settings={"data.tokenizer": "word"}).data.tokenizer == "word"


# -- end to end --------------------------------------------------------------------------------
def test_train_learns_shakespeare_and_writes_a_bundle(char_model):
    for name in ("config.json", "tokenizer.json", "model.safetensors", "metrics.json", "training_curves.png"):
        assert (char_model / name).is_file(), name
    metrics = json.loads((char_model / "metrics.json").read_text())
    val = metrics["validation"]
    vocab = TextTokenizer.load(char_model / "tokenizer.json").vocab_size
    assert val["nats_per_char"] < 0.8 * math.log(vocab)  # well below guessing uniformly
    assert val["bits_per_char"] == pytest.approx(val["nats_per_char"] / math.log(2))
    assert val["perplexity"] == pytest.approx(math.exp(val["nats_per_char"]))
    assert metrics["train_tokens_per_s"] > 0
    log = (char_model / "logs" / "metrics.csv").read_text()
    assert "elapsed_s" in log and "val_nats_per_char" in log


def test_generate_streams_the_same_text_for_a_seed(char_model, capsys):
    args = ["generate", str(char_model), "--prime", "ROMEO:", "--length", "120", "--temperature", "0.8"]
    code, first, _ = run_cli(capsys, *args, "--seed", "3")
    assert code == 0 and first.startswith("ROMEO:") and len(first.rstrip("\n")) >= 120
    assert run_cli(capsys, *args, "--seed", "3")[1] == first
    assert run_cli(capsys, *args, "--seed", "4")[1] != first
    import seqlab

    bundle = seqlab.load(char_model)
    assert bundle.generate("ROMEO:", 120, 0.8, None, 3) + "\n" == first
    code, out, _ = run_cli(capsys, "generate", str(char_model), "--length", "30", "--top-k", "1", "--json")
    assert code == 0 and len(json.loads(out)["text"]) == 30


def test_generate_bad_inputs(char_model, capsys):
    code, _, err = run_cli(capsys, "generate", str(char_model), "--temperature", "0")
    assert code == 2 and "temperature must be above 0" in err
    code, _, err = run_cli(capsys, "generate", str(char_model), "--top-k", "0")
    assert code == 2 and "top-k must be at least 1" in err
    code, _, err = run_cli(capsys, "generate", str(char_model), "--condition", "Russian")
    assert code == 2 and "has no conditions" in err
    code, out, err = run_cli(capsys, "generate", str(char_model), "--prime", "Zoë ☃ said", "--length", "20", "--seed", "1")
    assert code == 0 and out.startswith("Zoë ☃ said")
    assert "outside the model's vocabulary" in err and "'ë'" in err and "'☃'" in err and "'Z'" in err
    import seqlab

    with pytest.warns(UserWarning, match="outside the model's vocabulary"):
        text = seqlab.load(char_model).generate("Zoë", 10, seed=1)
    assert text.startswith("Zoë") and len(text) == 13
    with pytest.raises(SeqlabError, match="temperature"):
        seqlab.load(char_model).generate("a", 5, temperature=-1)


def test_test_predict_and_inspect(char_model, corpus, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "test", str(char_model), "--data", str(corpus), "--json")
    assert code == 0 and json.loads(out)["metrics"]["bits_per_char"] > 0
    code, out, _ = run_cli(capsys, "predict", str(char_model), "First Citizen", "--json")
    assert code == 0 and len(json.loads(out)["next"]) == 5
    code, out, _ = run_cli(capsys, "inspect", str(char_model), str(corpus), "--unit", "3",
                        "--out", str(tmp_path / "unit.html"), "--json")
    page = (tmp_path / "unit.html").read_text(encoding="utf-8")
    assert code == 0 and json.loads(out)["unit"] == 3 and "unit 3" in page and page.count('class="c"') == 3000
    code, _, _ = run_cli(capsys, "inspect", str(char_model), "Before we proceed", "--out", str(tmp_path / "u.png"))
    assert code == 0 and (tmp_path / "u.png").stat().st_size > 1000
    code, _, err = run_cli(capsys, "inspect", str(char_model), "abc", "--unit", "999", "--out", str(tmp_path / "x.html"))
    assert code == 2 and "out of range" in err


def test_non_ascii_corpus_and_prime(tmp_path, capsys):
    path = tmp_path / "czech_russian.txt"
    path.write_text(NON_ASCII, encoding="utf-8")
    out = tmp_path / "m"
    code, _, _ = run_cli(capsys, "train", "--task", "lm", "--data", str(path), "--family", "gru", "--epochs", "1",
                      "--hidden-dim", "32", "--embed-dim", "16", "--batch-size", "4", "--seq-len", "20",
                      "--out", str(out), "--no-progress")
    assert code == 0
    code, text, err = run_cli(capsys, "generate", str(out), "--prime", "Съешь ž🙂", "--length", "40", "--seed", "0")
    assert code == 0 and text.startswith("Съешь ž🙂") and "warning" not in err
    assert len(text.rstrip("\n")) == len("Съешь ž🙂") + 40  # one code point per generated token


@pytest.mark.parametrize("family", ["cnn", "bow"])
def test_stateless_families_and_word_level(family, corpus, tmp_path, capsys):
    out = tmp_path / family
    code, _, _ = run_cli(capsys, "train", "--task", "lm", "--data", str(corpus), "--family", family,
                      "--tokenizer", "word", "--epochs", "1", "--embed-dim", "16", "--filters", "16",
                      "--hidden-dim", "16", "--batch-size", "8", "--seq-len", "20", "--limit", "20000",
                      "--out", str(out), "--no-progress")
    assert code == 0
    val = json.loads((out / "metrics.json").read_text())["validation"]
    assert "nats_per_token" in val and "nats_per_char" not in val
    code, text, _ = run_cli(capsys, "generate", str(out), "--prime", "First", "--length", "15", "--seed", "2")
    assert code == 0 and text.startswith("First") and len(text.split()) >= 5


def test_time_limit_still_writes_the_best_bundle(corpus, tmp_path, capsys):
    out = tmp_path / "timed"
    code, _, _ = run_cli(capsys, "train", "--task", "lm", "--data", str(corpus), "--family", "lstm",
                      "--epochs", "1000", "--max-minutes", "0.02", "--hidden-dim", "32", "--embed-dim", "16",
                      "--batch-size", "16", "--seq-len", "32", "--out", str(out), "--no-progress")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] < 1000 and (out / "model.safetensors").is_file()
    assert (out / "checkpoints" / "best.ckpt").is_file()
