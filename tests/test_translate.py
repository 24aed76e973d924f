"""Translation: parallel readers, reversible tokenizers, the encoder-decoder per attention
kind (causality, padding, masking), beam search, and the command line on a Multi30k slice."""

from __future__ import annotations

import gzip
import json

import pytest
import torch

from helpers import run_cli, train_steps
from seqlab.cli import main
from seqlab.config import build_config
from seqlab.data.batching import pad_sequences
from seqlab.data.parallel import read_parallel, read_parallel_tsv
from seqlab.data.tokenize import BOS_ID, EOS_ID, TextTokenizer
from seqlab.decode import beam_search_batch, sample_batch
from seqlab.errors import SeqlabError
from seqlab.tasks import make_task
from seqlab.tasks.translate import select_state

PAIRS = [
    {"source": "Ein Hund rennt über die Wiese.", "target": "A dog runs across the meadow."},
    {"source": "Zwei Männer spielen Fußball.", "target": "Two men play soccer."},
    {"source": "Eine Frau liest ein Buch.", "target": "A woman reads a book."},
    {"source": "Ein Kind (mit Hut) lacht.", "target": "A child (with a hat) laughs."},
] * 10
ATTENTIONS = ["none", "dot", "general", "additive"]


def _task(attention="general", family="gru", **settings):
    cfg = build_config(task="translate", family=family, settings={
        "model.embed_dim": 8, "model.hidden_dim": 12, "model.dropout": 0.0, "model.attention": attention,
        "data.tokenizer": "word", **settings})
    task = make_task(cfg)
    task.fit_vocab(PAIRS)
    return task


# -- data ----------------------------------------------------------------------------------
def test_parallel_files_pair_up_and_gzip_is_read(tmp_path):
    src, tgt = tmp_path / "a.de.gz", tmp_path / "a.en"
    with gzip.open(src, "wt", encoding="utf-8") as f:
        f.write("Ein Hund.\nZwei Katzen.\n")
    tgt.write_text("A dog.\nTwo cats.\n\n", encoding="utf-8")  # a trailing blank line is no misalignment
    assert read_parallel(src, tgt) == [{"source": "Ein Hund.", "target": "A dog."},
                                       {"source": "Zwei Katzen.", "target": "Two cats."}]


def test_parallel_bad_inputs_name_the_problem(tmp_path, capsys):
    src, tgt = tmp_path / "s.txt", tmp_path / "t.txt"
    src.write_text("a\nb\nc\n", encoding="utf-8")
    tgt.write_text("x\ny\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match=r"s.txt has 3 lines but .*t.txt has 2"):
        read_parallel(src, tgt)
    tgt.write_text("x\n\nz\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match=r"t.txt:2: empty line"):
        read_parallel(src, tgt)
    tsv = tmp_path / "p.tsv"
    tsv.write_text("source\ttarget\nein Hund\ta dog\nkaputt\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match=r"p.tsv:3: expected 2 tab-separated columns"):
        read_parallel_tsv(tsv)
    tsv.write_text("source\ttarget\nein Hund\ta dog\n", encoding="utf-8")
    assert read_parallel_tsv(tsv) == [{"source": "ein Hund", "target": "a dog"}]
    code, _, err = run_cli(capsys, "train", "--task", "translate", "--source", str(src), "--target", str(tgt),
                        "--out", str(tmp_path / "m"))
    assert code == 2 and err.count("\n") == 1 and "t.txt:2: empty line" in err
    code, _, err = run_cli(capsys, "train", "--task", "translate", "--source", str(src), "--out", str(tmp_path / "m"))
    assert code == 2 and "give both --source and --target" in err


def test_multi30k_splits_as_published(shared_data):
    from seqlab.data.datasets import load_dataset

    splits = load_dataset("multi30k", shared_data)
    assert {k: len(v) for k, v in splits.items()} == {"train": 29000, "validation": 1014, "test": 1000}
    first = splits["test"][0]
    assert first["target"] == "A man in an orange hat starring at something."
    assert first["source"].startswith("Ein Mann mit einem orangefarbenen Hut")


@pytest.mark.parametrize("level", ["word", "bpe"])
def test_tokenizers_detokenize_exactly(level, shared_data):
    from seqlab.data.datasets import load_dataset

    test = load_dataset("multi30k", shared_data)["test"][:300]
    texts = [ex["target"] for ex in test]
    tok = TextTokenizer.fit(texts, level=level, lowercase=False, max_vocab=2000, spaces=True)
    for text in texts:
        assert tok.decode(tok.encode(text)) == " ".join(text.split())


# -- the model ---------------------------------------------------------------------------------
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_decoder_is_causal_and_reads_the_source(attention):
    torch.manual_seed(0)
    model = _task(attention).build_model().eval()
    src = torch.randint(4, 20, (2, 6))
    tgt = torch.randint(4, 20, (2, 7))
    base = model(src, torch.full((2,), 6), tgt, torch.full((2,), 7))
    changed = tgt.clone()
    changed[:, 4:] = (changed[:, 4:] + 3) % 16 + 4
    after = model(src, torch.full((2,), 6), changed, torch.full((2,), 7))
    torch.testing.assert_close(after[:, :4], base[:, :4])  # a later target token never changes earlier steps
    other = model((src + 5) % 16 + 4, torch.full((2,), 6), tgt, torch.full((2,), 7))
    assert not torch.allclose(other[:, 0], base[:, 0])  # the source matters from the first step


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("family", ["gru", "lstm", "bow"])
def test_source_padding_changes_nothing(attention, family):
    torch.manual_seed(0)
    model = _task(attention, family).build_model().eval()
    src = torch.randint(4, 20, (1, 5))
    padded = torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    tgt = torch.randint(4, 20, (1, 6))
    one = model(src, torch.tensor([5]), tgt, torch.tensor([6]))
    two = model(padded, torch.tensor([5]), tgt, torch.tensor([6]))
    torch.testing.assert_close(one, two, atol=1e-5, rtol=1e-5)
    if attention != "none":
        memory = model.encode(padded, torch.tensor([5]))
        _, _, weights = model.decode(tgt, torch.tensor([6]), memory)
        assert float(weights[..., 5:].abs().max()) == 0.0  # pads get no attention
        torch.testing.assert_close(weights.sum(-1), torch.ones(1, 6))


def test_beam_width_1_is_greedy_decoding():
    torch.manual_seed(0)
    task = _task("additive")
    model = task.build_model().eval()
    sources = [task.source_tokenizer.encode(ex["source"]) for ex in PAIRS[:4]]
    greedy = task.translate_ids(model, sources, beam=1)
    assert greedy == [task.translate_ids(model, [s], beam=1)[0] for s in sources]  # batching changes nothing
    step = task._step_fn(model)
    for source, expected in zip(sources, greedy):
        memory = model.encode(torch.tensor([source]), torch.tensor([len(source)]))
        limit = task.max_output(len(source))
        hyps = beam_search(step, (None, memory), BOS_ID, EOS_ID, 1, limit, select=select_state)
        assert hyps[0].tokens == expected


def beam_search(step, state, start, stop, beam, limit, *, select):
    """One input's search: a batch of one."""
    return beam_search_batch(step, state, start, stop, beam, [limit], select=select)[0]


@pytest.mark.parametrize("beam", [1, 3])
def test_batched_beam_search_equals_one_sentence_at_a_time(beam):
    """All sentences' hypotheses run as one batch; each sentence's search stays its own."""
    torch.manual_seed(0)
    task = _task("general")
    model = task.build_model().eval()
    sources = [task.source_tokenizer.encode(ex["source"]) for ex in PAIRS[:6]]
    step = task._step_fn(model)
    src, lengths = pad_sequences(sources)
    limits = [task.max_output(len(s)) for s in sources]
    together = beam_search_batch(step, (None, model.encode(src, lengths)), BOS_ID, EOS_ID, beam, limits,
                                 select=select_state)
    for source, limit, hyps in zip(sources, limits, together):
        memory = model.encode(torch.tensor([source]), torch.tensor([len(source)]))
        alone = beam_search(step, (None, memory), BOS_ID, EOS_ID, beam, limit, select=select_state)
        assert [h.tokens for h in hyps] == [h.tokens for h in alone]
        assert [h.score for h in hyps] == pytest.approx([h.score for h in alone], abs=1e-4)
    assert task.translate_ids(model, sources, beam=beam, batch_size=4) == [hyps[0].tokens for hyps in together]


def test_beam_search_escapes_the_greedy_trap():
    """Greedy takes the likelier first token (a, 0.6) whose continuations are all unlikely;
    a beam of 2 keeps b (0.4), after which the end is certain."""
    a, b, stop = 4, 5, 3
    table = {(): {a: 0.6, b: 0.4}, (a,): {6: 0.34, 7: 0.33, stop: 0.33}, (b,): {stop: 1.0}}

    def step(new_ids, state):  # state: the prefix of each live row
        prefixes = [p + [int(t)] if int(t) != BOS_ID else p for p, t in zip(state, new_ids[:, 0])]
        probs = torch.full((len(prefixes), 8), 1e-9)
        for row, prefix in enumerate(prefixes):
            for tok, p in table.get(tuple(prefix), {stop: 1.0}).items():
                probs[row, tok] = p
        return probs.log(), prefixes

    select = lambda state, index: [state[i] for i in index.tolist()]  # noqa: E731
    assert beam_search(step, [[]], BOS_ID, stop, 1, 5, select=select)[0].tokens[0] == a
    best = beam_search(step, [[]], BOS_ID, stop, 2, 5, select=select)[0]
    assert best.tokens == [b] and best.log_prob == pytest.approx(torch.tensor(0.4).log().item(), abs=1e-6)
    with pytest.raises(SeqlabError, match="--beam must be at least 1"):
        beam_search(step, [[]], BOS_ID, stop, 0, 5, select=select)


def test_batched_sampling_repeats_with_a_seed():
    torch.manual_seed(0)
    logits = torch.randn(1, 10)

    def step(new_ids, state):
        return logits.expand(new_ids.size(0), -1), state

    start = torch.full((6, 1), BOS_ID)
    first = sample_batch(step, None, start, 12, 1.0, None, 7, stop_id=EOS_ID)
    assert first == sample_batch(step, None, start, 12, 1.0, None, 7, stop_id=EOS_ID)
    assert all(EOS_ID not in row and len(row) <= 12 for row in first)
    assert first != sample_batch(step, None, start, 12, 1.0, None, 8, stop_id=EOS_ID)


def test_overfits_a_tiny_parallel_corpus():
    torch.manual_seed(0)
    task = _task("general", **{"model.hidden_dim": 32, "model.embed_dim": 16, "train.batch_size": 8})
    model = task.build_model()
    train_steps(task, model, task.encode(PAIRS), epochs=30, lr=0.01)
    unique = PAIRS[:4]
    assert task.translate(model, [ex["source"] for ex in unique], beam=3) == [ex["target"] for ex in unique]
    metrics = task.evaluate(model, unique, beam=1)
    assert metrics["bleu"] == pytest.approx(100.0) and metrics["chrf"] == pytest.approx(100.0)
    assert "tok:13a" in metrics["bleu_signature"] and metrics["perplexity"] < 2.0


# -- end to end ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slice_files(tmp_path_factory, shared_data):
    """The first 400 Multi30k training pairs and 50 test pairs as plain files."""
    from seqlab.data.datasets import load_dataset

    splits = load_dataset("multi30k", shared_data)
    folder = tmp_path_factory.mktemp("m30k")
    for name, examples in (("train", splits["train"][:400]), ("test", splits["test"][:50])):
        for side, lang in (("source", "de"), ("target", "en")):
            (folder / f"{name}.{lang}").write_text("".join(ex[side] + "\n" for ex in examples), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def de_en(tmp_path_factory, slice_files):
    out = tmp_path_factory.mktemp("translate") / "gru"
    f = slice_files
    code = main(["train", "--task", "translate", "--family", "gru", "--source", str(f / "train.de"),
                 "--target", str(f / "train.en"), "--test-source", str(f / "test.de"), "--test-target",
                 str(f / "test.en"), "--epochs", "1", "--embed-dim", "32", "--hidden-dim", "32",
                 "--max-vocab", "500", "--beam", "2", "--seed", "0", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_train_writes_a_bundle_with_bleu_and_attention(de_en):
    for name in ("config.json", "tokenizer.json", "target_tokenizer.json", "model.safetensors",
                 "metrics.json", "attention.png"):
        assert (de_en / name).is_file(), name
    test = json.loads((de_en / "metrics.json").read_text())["test"]
    assert 0.0 <= test["bleu"] <= 100.0 and 0.0 < test["chrf"] <= 100.0 and test["examples"] == 50
    assert test["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert test["perplexity"] > 1.0 and len(test["samples"]) == 5


def test_translate_verb(de_en, shared_data, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "translate", str(de_en), "--beam", "3", "Ein Hund rennt.", "Zwei Männer.")
    assert code == 0 and len(out.strip().split("\n")) == 2
    code, out, _ = run_cli(capsys, "translate", str(de_en), "Ein Hund rennt.", "--json", "--beam", "1",
                        "--attention-png", str(tmp_path / "att.png"))
    assert code == 0 and set(json.loads(out)) == {"source", "translation"}
    assert (tmp_path / "att.png").stat().st_size > 1000
    import seqlab

    bundle = seqlab.load(de_en)
    assert bundle.translate(["Ein Hund rennt."], beam=1) == [json.loads(out)["translation"]]
    code, _, err = run_cli(capsys, "translate", str(de_en), "--beam", "0", "Ein Hund.")
    assert code == 2 and "--beam must be at least 1" in err
    long = " ".join(["Hund"] * 150)
    code, out, err = run_cli(capsys, "translate", str(de_en), long, "--beam", "1")
    assert code == 0 and "longer than the model's limit of 100 tokens were cut" in err
    code, out, _ = run_cli(capsys, "test", str(de_en), "--json")  # the test files it was trained with
    assert code == 0 and json.loads(out)["metrics"]["examples"] == 50
    code, out, _ = run_cli(capsys, "test", str(de_en), "--data", "multi30k", "--data-dir", str(shared_data),
                        "--split", "validation", "--json")
    assert code == 0 and json.loads(out)["metrics"]["examples"] == 1014


def test_baselines_train(slice_files, tmp_path, capsys):
    f = slice_files
    for family, attention in (("bow", "none"), ("lstm", "none"), ("lstm", "dot")):
        code, out, err = run_cli(capsys, "train", "--task", "translate", "--family", family, "--attention", attention,
                              "--source", str(f / "test.de"), "--target", str(f / "test.en"), "--epochs", "1",
                              "--embed-dim", "16", "--hidden-dim", "16", "--tokenizer", "word", "--beam", "1",
                              "--out", str(tmp_path / f"{family}-{attention}"), "--no-progress", "--json")
        assert code == 0, err
        assert json.loads(out)["metrics"]["perplexity"] > 1.0
    code, _, err = run_cli(capsys, "train", "--task", "translate", "--tokenizer", "char", "--source", str(f / "test.de"),
                        "--target", str(f / "test.en"), "--out", str(tmp_path / "c"))
    assert code == 2 and "use --tokenizer bpe or word" in err


def test_translate_keeps_line_alignment_and_wants_a_png(de_en, tmp_path, capsys):
    lines = tmp_path / "in.de"
    lines.write_text("Ein Hund rennt.\n\nZwei Männer.\n   \n", encoding="utf-8")
    code, out, err = run_cli(capsys, "translate", str(de_en), "--file", str(lines), "--beam", "1")
    assert code == 0, err
    got = out.split("\n")[:-1]
    assert len(got) == 4 and got[1] == "" and got[3] == "" and got[0] and got[2]
    code, out, err = run_cli(capsys, "translate", str(de_en), "--file", str(lines), "--beam", "1", "--json")
    assert code == 0 and [item["translation"] == "" for item in json.loads(out)] == [False, True, False, True]
    code, _, err = run_cli(capsys, "translate", str(de_en), "Ein Hund.", "--attention-png", str(tmp_path / "a.txt"))
    assert code == 2 and "give a FILE.png" in err and not (tmp_path / "a.txt").exists()
