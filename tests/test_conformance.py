"""The contract every task x family pair passes, parametrized over the two tables (TASKS and
FAMILIES): a batch's step has the declared shapes, one small batch is learned, the model
trained through `seqlab.train` predicts the same after `seqlab.load`, predictions do not
depend on what else is in the batch (padding), and a task that reads left to right
(`Task.causal_input`) never lets a later token change an earlier step.

A pair the task refuses (generate needs a family that starts from a state, estimator
families only classify) must refuse with a one-line SeqlabError, never a traceback.
"""

from __future__ import annotations

import random

import pytest
import torch

import seqlab
from seqlab.config import build_config
from seqlab.errors import SeqlabError
from seqlab.families import FAMILIES, family_of
from seqlab.tasks import TASKS, make_task

WORDS = "the a movie film plot actor scene story good bad great awful fine dull".split()
TINY = {"model.embed_dim": 16, "model.hidden_dim": 16, "model.filters": 8, "model.kernel_sizes": "2,3",
        "model.hash_buckets": 64, "model.char_dim": 8, "model.char_filters": 8, "model.dropout": 0.0,
        "model.word_dropout": 0.0, "data.max_vocab": None, "train.batch_size": 8, "train.epochs": 1,
        "train.progress": False, "train.seq_len": 16, "train.lr": 0.01}
# a family name per table row (the recurrent row is exercised through both of its cells)
FAMILY_NAMES = [name for name in FAMILIES if name != "rnn"] + ["lstm", "gru"]


def _write_data(task: str, folder) -> dict:
    """A small file in the format each task reads; returns the data settings to read it."""
    rng = random.Random(0)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(80)]
    if task == "classify":
        path = folder / "reviews.csv"
        rows = [f"{s},{'pos' if s.count('good') + s.count('great') >= s.count('bad') + s.count('awful') else 'neg'}"
                for s in sentences]
        path.write_text("text,label\n" + "\n".join(rows) + "\n")
        return {"data": str(path)}
    if task == "tag":
        path = folder / "tags.tsv"
        blocks = ["\n".join(f"{w}\t{'ADJ' if w in WORDS[8:] else 'DET' if w in ('the', 'a') else 'NOUN'}"
                            for w in s.split()) for s in sentences]
        path.write_text("\n\n".join(blocks) + "\n")
        return {"data": str(path)}
    if task == "lm":
        path = folder / "corpus.txt"
        path.write_text("\n".join(sentences) + "\n")
        return {"data": str(path)}
    if task == "generate":
        path = folder / "names.csv"
        rows = [f"{'short' if len(w) <= 4 else 'long'},{w}" for s in sentences for w in s.split()[:2]]
        path.write_text("condition,text\n" + "\n".join(rows) + "\n")
        return {"data": str(path)}
    if task == "translate":
        path = folder / "pairs.tsv"
        path.write_text("\n".join(f"{s}\t{s.upper()}" for s in sentences) + "\n")
        return {"data": str(path), "data.max_vocab": 200, "model.attention": "dot"}
    raise AssertionError(f"no tiny data for task {task!r}: add it here when adding a task")


def _refusal(task: str, family: str) -> str | None:
    """Why the task refuses the family (None: the pair must work)."""
    row = family_of(family)
    if not row.neural:
        return None if TASKS[task].accepts_estimators else "cannot do --task"
    if task == "generate" and not row.implementation.stateful:
        return "needs a family that starts from a state"
    return None


def _inputs(task: str, bundle) -> list[str]:
    """Texts to predict: a short one and a long one (so the short one is padded in a batch)."""
    if task == "generate":
        return ["fine", "awful"]
    return ["a good film", "the plot of the movie was a dull and awful story but the actor was great"]


PAIRS = [(task, family) for task in TASKS for family in FAMILY_NAMES]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each working pair trained once through seqlab.train (tiny: about a second each)."""
    cache: dict[tuple[str, str], seqlab.bundle.Bundle] = {}

    def get(task: str, family: str):
        if (task, family) not in cache:
            folder = tmp_path_factory.mktemp(f"{task}-{family}")
            data = _write_data(task, folder)
            settings = {**TINY, **{k: v for k, v in data.items() if k != "data"}}
            cache[task, family] = seqlab.train(out=folder / "bundle", task=task, data=data["data"], family=family,
                                               **settings)
        return cache[task, family]

    return get


@pytest.mark.parametrize("task,family", PAIRS)
def test_pair_trains_saves_loads_and_predicts_the_same(task, family, trained, tmp_path):
    if (why := _refusal(task, family)) is not None:
        data = _write_data(task, tmp_path)
        with pytest.raises(SeqlabError, match=why):
            seqlab.train(out=tmp_path / "b", task=task, data=data["data"], family=family, **TINY)
        return
    bundle = trained(task, family)
    loaded = seqlab.load(bundle.directory)
    assert loaded.cfg.task == task and loaded.family == family
    texts = _inputs(task, bundle)
    if bundle.supports("sample"):
        assert loaded.sample("short", n=3, seed=1) == bundle.sample("short", n=3, seed=1)
    together = loaded.predict(texts)
    assert together == bundle.predict(texts)  # save -> load changes nothing
    alone = loaded.predict(texts[:1])[0]  # padding invariance: batched with a longer text or not
    _assert_close(alone, together[0])
    description = loaded.describe()
    assert description["task"] == task and set(description["verbs"]) == set(loaded.task.verbs)
    assert set(description["metrics"]) <= set(loaded.task.headline_metrics)


def _assert_close(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_close(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=1e-4)
    else:
        assert a == b


def _task_and_batch(task: str, family: str, folder):
    data = _write_data(task, folder)
    settings = {**TINY, **{k: v for k, v in data.items() if k != "data"}}
    cfg = build_config(task=task, data=data["data"], family=family, settings=settings)
    t = make_task(cfg)
    splits = t.load_splits()
    t.fit_vocab(splits["train"])
    torch.manual_seed(0)
    model = t.build_model()
    batch = next(iter(t.loader(t.encode(splits["train"]), shuffle=False, shard=False)))
    return t, model, batch


NEURAL_PAIRS = [(t, f) for t, f in PAIRS if family_of(f).neural and _refusal(t, f) is None]


@pytest.mark.parametrize("task,family", NEURAL_PAIRS)
def test_pair_learns_one_batch(task, family, tmp_path):
    t, model, batch = _task_and_batch(task, family, tmp_path)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    first = float(t.step(model, batch).loss)
    assert first == first and first > 0  # a finite, positive loss
    for _ in range(60):
        loss = t.step(model, batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(t.step(model, batch).loss) < 0.5 * first


@pytest.mark.parametrize("task,family", [(t, f) for t, f in NEURAL_PAIRS if TASKS[t].causal_input])
def test_later_tokens_never_change_earlier_steps(task, family, tmp_path):
    t, model, batch = _task_and_batch(task, family, tmp_path)
    model.eval()
    field = t.causal_input
    ids = batch[field]
    k = ids.size(1) // 2
    assert k >= 1
    top = int(ids.max())  # ids stay inside the vocabulary: rotate real ones over 4..top
    later = ids[:, k:]
    rotated = torch.where(later >= 4, 4 + (later - 4 + 1) % (top - 3), later)
    changed = {**batch, field: torch.cat([ids[:, :k], rotated], dim=1)}
    with torch.no_grad():
        before = t.step(model, batch).outputs
        after = t.step(model, changed).outputs
    assert before.shape[:2] == batch[field].shape
    torch.testing.assert_close(after[:, :k], before[:, :k])
    assert not torch.allclose(after[:, k:], before[:, k:])  # the change does reach later steps
