"""Small helpers the test files share (imported as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import torch

from seqlab.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `seqlab ARGV` in this process: (exit status, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train_steps(task, model: torch.nn.Module, items, epochs: int, lr: float) -> None:
    """A plain Adam loop over the task's own loader and loss (overfitting checks)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = task.loader(items, shuffle=True, shard=False)
    for _ in range(epochs):
        for batch in loader:
            loss = task.loss(model, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()


def tiny_page_bundles(root, epochs: int = 5) -> dict[str, object]:
    """Small bundles for the live page, made in this process in a few seconds (no Lightning):
    gru, bow and cnn classifiers trained on the generated order-sensitive corpus (the
    lecture's "... has not seen is good" sentences), with their test accuracy in
    metrics.json, and an lstm tagger, char lstm lm and gru translator with untrained weights
    (enough to draw their views). {name: folder}."""
    from pathlib import Path

    from seqlab.bundle import save_bundle
    from seqlab.config import build_config
    from seqlab.data.builtin import make_corpus
    from seqlab.data.stream import TextSource
    from seqlab.tasks import make_task

    root = Path(root)
    corpus = make_corpus(n_train=600, n_validation=0, n_test=200, seed=0)
    small = {"model.embed_dim": 16, "model.hidden_dim": 16, "model.filters": 8, "data.tokenizer": "word"}
    out: dict[str, object] = {}
    for family in ("gru", "bow", "cnn"):
        # the lecture's bag of words is order-blind: unigrams only (the bow default adds bigrams)
        extra = {"model.bigrams": False} if family == "bow" else {}
        cfg = build_config(task="classify", family=family, settings={**small, "model.dropout": 0.0, **extra})
        task = make_task(cfg)
        task.fit_vocab(corpus["train"])
        torch.manual_seed(0)
        model = task.build_model()
        train_steps(task, model, task.encode(corpus["train"]), epochs, 0.01)
        model.eval()
        metrics = {"test": task.evaluate(model, corpus["test"])}
        out[f"demo-{family}"] = root / f"demo-{family}"
        save_bundle(out[f"demo-{family}"], cfg, task, model, metrics)
    sentences = [{"tokens": ["the", "movie", "is", "good"], "tags": ["DET", "NOUN", "AUX", "ADJ"]},
                 {"tokens": ["my", "friend", "has", "seen", "it"], "tags": ["PRON", "NOUN", "AUX", "VERB", "PRON"]}]
    pairs = [{"source": "ein hund rennt", "target": "a dog runs"}, {"source": "zwei katzen", "target": "two cats"}]
    others = (("tagger", "tag", "lstm", sentences, {"model.char_dim": 4, "model.char_filters": 4}),
              ("lm", "lm", "lstm", TextSource(text="to be, or not to be: that is the question. " * 20),
               {"data.tokenizer": "char"}),
              ("translator", "translate", "gru", pairs, {"model.beam": 3}))
    for name, task_name, family, train, settings in others:
        cfg = build_config(task=task_name, family=family, settings={**small, **settings})
        task = make_task(cfg)
        task.fit_vocab(train)
        torch.manual_seed(0)
        out[name] = root / name
        save_bundle(out[name], cfg, task, task.build_model().eval(), {})
    return out
