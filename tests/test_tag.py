"""The tag task: CoNLL-U / two-column readers and their errors, the tagger's conformance per
family (shapes, learns one batch, save/load round trip, padding invariance), BIO chunks, and
an end-to-end CLI run on a slice of UD English EWT."""

from __future__ import annotations

import gzip
import itertools
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from seqlab.cli import main
from seqlab.config import model_config_type
from seqlab.data.conllu import iter_conllu, iter_token_tag, read_tagging
from seqlab.errors import SeqlabError
from seqlab.tasks.tag import Tagger, bio_chunks, is_bio, tagging_metrics

CONLLU = """# newdoc id = d1
# sent_id = s-1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
3.1\tknow\tknow\tVERB\tVB\t_\t_\t_\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

1\tHello\thello\tINTJ\tUH\t_\t0\troot\t_\t_
"""


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# -- readers ---------------------------------------------------------------------------------
def test_conllu_skips_ranges_and_empty_nodes_and_keeps_ids(tmp_path):
    path = _write(tmp_path / "a.conllu", CONLLU)
    first, second = list(iter_conllu(path))
    assert first == {"tokens": ["I", "do", "n't", "know", "."],
                     "tags": ["PRON", "AUX", "PART", "VERB", "PUNCT"], "id": "s-1"}
    assert second == {"tokens": ["Hello"], "tags": ["INTJ"], "id": "a.conllu:12"}
    xpos = list(iter_conllu(path, tag_column="xpos"))
    assert xpos[0]["tags"] == ["PRP", "VBP", "RB", "VB", "."]


def test_conllu_gz_and_two_column(tmp_path):
    gz = tmp_path / "a.conllu.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(CONLLU)
    assert [s["id"] for s in read_tagging(gz)] == ["s-1", "a.conllu.gz:12"]
    two = _write(tmp_path / "ner.txt", "John\tB-PER\nSmith\tI-PER\nruns\tO\n\n\nHi\tO\n")
    sents = list(iter_token_tag(two))
    assert [s["tokens"] for s in sents] == [["John", "Smith", "runs"], ["Hi"]]
    assert sents[0]["tags"] == ["B-PER", "I-PER", "O"] and sents[1]["id"] == "ner.txt:6"
    assert read_tagging(two) == sents  # not .conllu: the two-column reader


def test_real_ud_ewt_train(shared_data):
    path = shared_data / "ud_english_ewt" / "en_ewt-ud-train.conllu.gz"
    first, *_ = itertools.islice(iter_conllu(path), 3)
    assert first["tokens"][:4] == ["Al", "-", "Zaman", ":"] and first["tags"][:2] == ["PROPN", "PUNCT"]
    assert first["id"].endswith("-0001")
    sents = list(iter_conllu(path))
    assert len(sents) == 12544 and sum(len(s["tokens"]) for s in sents) == 204577
    assert all(len(s["tokens"]) == len(s["tags"]) for s in sents)
    assert not any("don't" in s["tokens"] for s in sents)  # multiword tokens are split


def test_ud_ewt_named_dataset(shared_data):
    from seqlab.data.datasets import load_dataset

    splits = load_dataset("ud-ewt", shared_data)
    assert {k: len(v) for k, v in splits.items()} == {"train": 12544, "validation": 2001, "test": 2077}


WORD_A = "1\tA\ta\tDET\tDT\t_\t0\troot\t_\t_\n"


@pytest.mark.parametrize("text,message", [
    ("1\tThe\tthe\tDET\n", r"x\.conllu:1: expected 10 tab-separated columns, found 4"),
    ("# sent_id = 1\n1 The the DET DT _ 0 root _ _\n",
     r"x\.conllu:2: expected 10 .*found 1; separate columns with tabs"),
    (WORD_A + "x\tB\tb\tNOUN\tNN\t_\t0\troot\t_\t_\n", r"x\.conllu:2: expected a word index"),
    (WORD_A + WORD_A, r"x\.conllu:2: expected word index 2, found 1; is a blank line missing"),
    (WORD_A.replace("DET", "_"), r"x\.conllu:1: expected a UPOS tag in column 4, found '_'"),
    ("# only a comment\n\n", r"x\.conllu: no sentences"),
])
def test_conllu_errors(tmp_path, text, message):
    path = _write(tmp_path / "x.conllu", text)
    with pytest.raises(SeqlabError, match=message):
        read_tagging(path)


@pytest.mark.parametrize("text,message", [
    ("The\tDET\ncat\ndog\tNOUN\n", r"x\.tsv:2: token 'cat' has no tag; the sentence has 2 tokens but 1 tags"),
    ("The\tDET\ncat\t\n", r"x\.tsv:2: token 'cat' has no tag"),
    ("The\tDET\textra\n", r"x\.tsv:1: expected 2 \(token, tag\) tab-separated columns, found 3"),
    ("The DET\n", r"x\.tsv:1: expected 2 .*found 1; separate columns with tabs"),
    ("\n\n", r"x\.tsv: no sentences"),
])
def test_two_column_errors(tmp_path, text, message):
    path = _write(tmp_path / "x.tsv", text)
    with pytest.raises(SeqlabError, match=message):
        read_tagging(path)


def test_decode_error_and_bad_options(tmp_path):
    path = tmp_path / "x.conllu"
    path.write_bytes(b"1\tcaf\xe9\tx\tNOUN\tNN\t_\t0\troot\t_\t_\n")
    with pytest.raises(SeqlabError, match=r"x\.conllu: line 1: byte 0xe9 .*--encoding"):
        read_tagging(path)
    assert read_tagging(path, encoding="latin-1")[0]["tokens"] == ["café"]
    with pytest.raises(SeqlabError, match="unknown tag column 'feats'"):
        read_tagging(path, tag_column="feats", encoding="latin-1")


def test_token_and_tag_count_mismatch_in_python_examples():
    from seqlab.config import build_config
    from seqlab.tasks.tag import TagTask

    task = TagTask(build_config(task="tag"))
    task.fit_vocab([{"tokens": ["a", "b"], "tags": ["X", "Y"]}])
    with pytest.raises(SeqlabError, match="sentence s9: 2 tokens but 1 tags"):
        task.encode([{"tokens": ["a", "b"], "tags": ["X"], "id": "s9"}])


def test_bio_chunks_and_chunk_f1():
    assert bio_chunks(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "B-LOC"]) == {
        (0, 2, "PER"), (3, 4, "LOC"), (4, 5, "LOC"), (5, 6, "LOC")}
    labels = ["B-PER", "I-PER", "O"]
    assert is_bio(labels) and not is_bio(["NOUN", "VERB"])
    gold = [["B-PER", "I-PER", "O"], ["B-PER", "O", "O"]]
    pred = [[0, 1, 2], [0, 1, 2]]  # second sentence: span too long
    m = tagging_metrics(labels, gold, pred, [[False] * 3, [True, False, False]])
    assert m["chunk_precision"] == 0.5 and m["chunk_recall"] == 0.5 and m["chunk_f1"] == 0.5
    assert m["accuracy"] == 5 / 6 and m["unseen_accuracy"] == 1.0 and m["unseen_tokens"] == 1


# -- model conformance per family --------------------------------------------------------------
VOCAB, TAGS, CHARS = 30, 5, 12
FAMILIES = [("lstm", True), ("gru", False), ("rnn", True), ("cnn", True), ("cnn", False),
            ("bow", True)]


def _tagger(family: str, chars: bool) -> Tagger:
    cfg = model_config_type()(family=family, embed_dim=16, hidden_dim=24, filters=8, kernel_sizes=[3, 5],
                      dropout=0.0, bidirectional=True, char_features=chars, char_dim=8, char_filters=10)
    return Tagger(VOCAB, TAGS, CHARS, cfg)


def _batch(seed=0, b=6, t=7, word_len=5):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0] = t
    ids = torch.randint(4, VOCAB, (b, t), generator=g)
    real = torch.arange(t)[None, :] < lengths[:, None]  # (B, T)
    ids[~real] = 0
    n_chars = torch.randint(1, word_len + 1, (b, t), generator=g)
    chars = torch.randint(4, CHARS, (b, t, word_len), generator=g)
    chars[torch.arange(word_len)[None, None, :] >= n_chars[..., None]] = 0
    chars[~real] = 0
    return ids, lengths, chars


@pytest.mark.parametrize("family,chars", FAMILIES)
def test_tagger_shapes_and_padding_invariance(family, chars):
    torch.manual_seed(0)
    model = _tagger(family, chars).eval()
    ids, lengths, ch = _batch()
    out = model(ids, lengths, ch)
    assert out.shape == (6, 7, TAGS)
    # more word padding and more character padding change no real step's scores
    ids2 = torch.cat([ids, torch.zeros(6, 4, dtype=torch.long)], dim=1)
    ch2 = torch.nn.functional.pad(ch, (0, 3, 0, 4))  # (B, T + 4, L + 3)
    out2 = model(ids2, lengths, ch2)
    real = (torch.arange(7)[None, :] < lengths[:, None])[..., None]
    torch.testing.assert_close(out2[:, :7] * real, out * real, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family,chars", FAMILIES)
def test_tagger_learns_one_batch(family, chars):
    torch.manual_seed(0)
    model = _tagger(family, chars)
    ids, lengths, ch = _batch(1, b=8)
    tags = ids % TAGS  # learnable from each word alone (so bow can, too)
    tags[ids == 0] = -100
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    first = None
    for _ in range(80):
        loss = torch.nn.functional.cross_entropy(model(ids, lengths, ch).flatten(0, 1), tags.flatten(),
                                                 ignore_index=-100)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    if chars:
        assert model.chars.embedding.weight.grad.abs().sum() > 0  # gradients reach the char CNN


@pytest.mark.parametrize("family,chars", FAMILIES)
def test_tagger_save_load_round_trip(tmp_path, family, chars):
    torch.manual_seed(0)
    model = _tagger(family, chars).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "m.safetensors")
    torch.manual_seed(1)
    again = _tagger(family, chars).eval()
    again.load_state_dict(load_file(tmp_path / "m.safetensors"))
    ids, lengths, ch = _batch(2)
    torch.testing.assert_close(again(ids, lengths, ch), model(ids, lengths, ch), atol=0, rtol=0)


# -- end to end --------------------------------------------------------------------------------
def _slice(src, dst, n: int):
    """The first n sentences of a (gzipped) CoNLL-U file."""
    with gzip.open(src, "rt", encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
        seen = 0
        for line in f:
            out.write(line)
            if not line.strip():
                seen += 1
                if seen == n:
                    break
    return dst


@pytest.fixture(scope="module")
def tag_files(tmp_path_factory, shared_data):
    folder = tmp_path_factory.mktemp("ewt")
    ud = shared_data / "ud_english_ewt"
    return (_slice(ud / "en_ewt-ud-train.conllu.gz", folder / "train.conllu", 1500),
            _slice(ud / "en_ewt-ud-test.conllu.gz", folder / "test.conllu", 400))


@pytest.fixture(scope="module")
def tag_model(tmp_path_factory, tag_files):
    out = tmp_path_factory.mktemp("tag") / "bilstm"
    code = main(["train", "--task", "tag", "--family", "lstm", "--data", str(tag_files[0]),
                 "--test-data", str(tag_files[1]), "--epochs", "2", "--seed", "0",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_train_writes_a_complete_tag_bundle(tag_model):
    for name in ("config.json", "tokenizer.json", "model.safetensors", "metrics.json", "confusion.png"):
        assert (tag_model / name).is_file(), name
    config = json.loads((tag_model / "config.json").read_text())
    assert config["task"] == "tag" and config["config"]["model"]["bidirectional"] is True
    assert config["config"]["model"]["char_features"] is True and config["task_state"]["tag_set"] == "upos"
    test = json.loads((tag_model / "metrics.json").read_text())["test"]
    # the majority tag (NOUN) is ~17% of tokens: learning means far above it
    assert test["upos_accuracy"] > 0.6 and test["accuracy"] == test["upos_accuracy"]
    assert 0 < test["unseen_accuracy"] <= 1 and test["unseen_tokens"] > 0
    assert set(test["per_class"]["NOUN"]) == {"precision", "recall", "f1-score", "support"}


def test_tag_predict_json_and_text(tag_model, capsys):
    assert main(["predict", str(tag_model), "The cat sat on the mat .", "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["tokens"] == ["The", "cat", "sat", "on", "the", "mat", "."]
    assert len(one["tags"]) == 7 and one["tags"][-1] == "PUNCT"
    assert main(["predict", str(tag_model), "I like it", "Go home", "--json"]) == 0
    assert [len(r["tags"]) for r in json.loads(capsys.readouterr().out)] == [3, 2]
    assert main(["predict", str(tag_model), "Hello there"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("Hello/") and " there/" in out


def test_tag_test_verb_json(tag_model, tag_files, capsys):
    assert main(["test", str(tag_model), "--data", str(tag_files[1]), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["upos_accuracy"] > 0.6 and m["examples"] == 400
    assert {"accuracy", "unseen_accuracy", "unseen_tokens", "macro_f1", "per_class"} <= set(m)
    assert main(["test", str(tag_model), "--data", str(tag_files[1])]) == 0
    assert "upos_accuracy" in capsys.readouterr().out


def test_tag_named_dataset_xpos_and_python_api(tmp_path, shared_data):
    import seqlab
    from seqlab.api import test as api_test

    out = tmp_path / "xpos"
    bundle = seqlab.train(out=out, task="tag", data="ud-ewt", family="cnn", **{
        "data.data_dir": str(shared_data), "data.limit": 300, "data.tag_column": "xpos",
        "train.epochs": 1, "train.progress": False})
    assert "NN" in bundle.labels and "xpos_accuracy" in bundle.metrics["test"]
    [pred] = bundle.predict(["The dogs barked ."])
    assert pred["tokens"] == ["The", "dogs", "barked", "."] and len(pred["tags"]) == 4
    # `seqlab test` reads the tags the model learned (xpos) from the dataset's test split
    result = api_test(out, data="ud-ewt", split="validation", **{"data.data_dir": str(shared_data)})
    assert "xpos_accuracy" in result["metrics"] and result["metrics"]["examples"] == 2001


def test_tag_bad_inputs_are_one_line_errors(tmp_path, capsys):
    bad = _write(tmp_path / "bad.conllu", "1\tThe\tthe\tDET\n")
    code = main(["train", "--task", "tag", "--data", str(bad), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "bad.conllu:1: expected 10 tab-separated columns, found 4" in err
    code = main(["train", "--task", "tag", "--data", "imdb", "--out", str(tmp_path / "m")])
    assert code == 2 and "imdb is a dataset for --task classify, not tag" in capsys.readouterr().err


def test_word_dropout_trains_unk_on_rare_words_only_in_training():
    from seqlab.config import build_config
    from seqlab.data.tokenize import UNK_ID
    from seqlab.tasks import make_task

    train = [{"tokens": ["the", "cat", "sat"], "tags": ["DET", "NOUN", "VERB"]},
             {"tokens": ["the", "dog", "ran"], "tags": ["DET", "NOUN", "VERB"]}] * 2
    cfg = build_config(task="tag", family="lstm", settings={"model.word_dropout": 0.25, "model.hidden_dim": 8,
                                                            "model.embed_dim": 8})
    task = make_task(cfg)
    task.fit_vocab(train)
    the, cat = task.tokenizer.token_to_id("the"), task.tokenizer.token_to_id("cat")
    assert float(task.unk_prob[the]) == pytest.approx(0.25 / 4.25)  # seen 4 times
    assert float(task.unk_prob[cat]) == pytest.approx(0.25 / 2.25)
    assert float(task.unk_prob[:4].max()) == 0.0  # never the specials (pad stays pad)
    task.unk_prob[cat] = 1.0  # make the effect certain
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, ids, lengths, chars=None):
            seen.append(ids.clone())
            return torch.zeros(*ids.shape, len(task.labels), requires_grad=True)

    batch = task.collate(task.encode(train[:1]))
    spy = Spy()
    task.loss(spy.train(), batch)
    task.loss(spy.eval(), batch)
    assert int(seen[0][0, 1]) == UNK_ID and int(seen[1][0, 1]) == cat  # only training reads <unk>
    off = make_task(build_config(task="tag", settings={"model.word_dropout": 0.0}))
    off.fit_vocab(train)
    assert off.unk_prob is None
