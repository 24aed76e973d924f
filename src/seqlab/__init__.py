"""seqlab: train, evaluate, compare, inspect and serve sequence models.

    import seqlab
    bundle = seqlab.train(task="classify", data="names", family="gru", out="runs/names",
                          **{"train.epochs": 5})
    seqlab.load("runs/names").predict(["Dostoevsky"])
"""

import os

__version__ = "0.1.0"

# oneDNN caches a convolution primitive (with its scratch memory) per input shape, up to 1024
# of them; length-bucketed batches have hundreds of shapes, so a CNN on IMDB grew past 4.5 GB.
# 64 keeps the hits of repeated shapes (same speed, measured) at about half the memory; set the
# variable yourself to choose another size. Read when oneDNN first runs, hence here.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")


def load(directory):
    """Load a trained bundle folder (no Lightning import, nothing unpickled)."""
    from seqlab.bundle import load_bundle

    return load_bundle(directory)


def train(*, out, task="classify", data=None, family=None, resume=None, config=None, **settings):
    """Train a model and return its Bundle. `settings` are `section.field` overrides
    (e.g. {"train.epochs": 3, "model.layers": 2}) or plain field names of any section."""
    from seqlab.api import train as _train

    return _train(out=out, task=task, data=data, family=family, resume=resume, config=config, **settings)


__all__ = ["__version__", "load", "train"]
