"""Self-describing model bundles: a folder anyone can load without running code from it.

    config.json        task, family, every setting, fitted task state, seqlab version
    tokenizer.json     the `tokenizers` library's own file
    model.safetensors  weights (neural families); linear.json + linear.safetensors (linear)
    metrics.json       test/validation metrics and run facts
    *.png              plots

Each file is written atomically (temp file + rename) and config.json last, so a bundle
without config.json is recognisably incomplete. Loading uses only json, safetensors and
tokenizers: nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from seqlab import __version__
from seqlab.config import RunConfig
from seqlab.errors import SeqlabError
from seqlab.files import atomic_path, atomic_write_json

FORMAT_VERSION = 1


def _save_weights(model, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})


def count_parameters(model) -> int:
    if hasattr(model, "n_parameters_"):
        return int(model.n_parameters_)
    return int(sum(p.numel() for p in model.parameters()))


def save_bundle(directory: Path, cfg: RunConfig, task, model, metrics: dict[str, Any]) -> None:
    from seqlab.families import family_of

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    task.save_vocab(directory)
    family = family_of(cfg.model.family)
    if family.neural:
        _save_weights(model, directory / "model.safetensors")
    else:  # an estimator family saves its own files (linear: linear.json + linear.safetensors)
        family.implementation.save(model, directory)
    atomic_write_json(directory / "metrics.json", metrics)
    atomic_write_json(
        directory / "config.json",
        {
            "seqlab_version": __version__,
            "format_version": FORMAT_VERSION,
            "task": cfg.task,
            "family": cfg.model.family,
            "n_parameters": count_parameters(model),
            "config": cfg.to_dict(),
            "task_state": task.state(),
        },
    )


class Bundle:
    """A trained model loaded from its folder: predict, evaluate, inspect."""

    def __init__(self, directory: Path, cfg: RunConfig, task, model, meta: dict[str, Any]):
        self.directory = Path(directory)
        self.cfg = cfg
        self.task = task
        self.model = model
        self.meta = meta

    @property
    def family(self) -> str:
        return self.cfg.model.family

    @property
    def labels(self) -> list[str]:
        return list(getattr(self.task, "labels", []))

    @property
    def metrics(self) -> dict[str, Any]:
        path = self.directory / "metrics.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.task.predict_proba(self.model, check_texts(texts))

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        """One output per text, shaped by the task (classify: {"label", "probabilities"})."""
        return self.task.predict(self.model, check_texts(texts))

    def evaluate(self, examples: list[dict], out_dir: Path | None = None) -> dict[str, Any]:
        return self.task.evaluate(self.model, examples, out_dir)

    def supports(self, verb: str) -> bool:
        """Whether this model's task declares `verb` (see tasks.base.Task.verbs)."""
        return verb in self.task.verbs

    def require(self, verb: str, how: str) -> None:
        """A one-line error when the task does not declare `verb`; `how` says what would."""
        if not self.supports(verb):
            raise SeqlabError(f"a {self.cfg.task} model cannot {verb}: {how}")

    def describe(self) -> dict[str, Any]:
        """What a client needs to know about this model (the server's /v1/models entry):
        task, family, labels or conditions, verbs, headline metrics and versions."""
        metrics = self.metrics
        split = "test" if "test" in metrics else "validation"
        figures = metrics.get(split, {})
        return {
            "task": self.cfg.task,
            "family": self.family,
            "order_seen": self._order_seen(),
            "labels": self.labels,
            "conditions": list(getattr(self.task, "conditions", [])),
            "verbs": sorted(self.task.verbs),
            "metrics": {k: figures[k] for k in self.task.headline_metrics if isinstance(figures.get(k), int | float)},
            "metrics_split": split if figures else None,
            "n_parameters": self.meta.get("n_parameters"),
            "seqlab_version": self.meta.get("seqlab_version"),
        }

    def _order_seen(self) -> str | None:
        """The family's own words for the word order this model sees (None from a family,
        e.g. a plugin's estimator, that does not say)."""
        from seqlab.families import family_of

        order_seen = getattr(family_of(self.cfg.model.family).implementation, "order_seen", None)
        return order_seen(self.cfg.model) if order_seen else None

    def generate_stream(self, prime: str = "", length: int = 200, temperature: float = 1.0,
                        top_k: int | None = None, seed: int | None = None, warn=None):
        """Yield the continuation of `prime` piece by piece as it is sampled (lm)."""
        if self.supports("sample"):
            raise SeqlabError("a conditional generator writes whole texts for a condition: use "
                              "sample(condition, n) (seqlab generate DIR --condition C -n N)")
        self.require("generate", "train a language model with --task lm")
        return self.task.generate(self.model, prime, length, temperature, top_k, seed, warn=warn)

    def sample(self, condition: str | None, n: int = 10, temperature: float = 1.0, top_k: int | None = None,
               seed: int | None = None, prime: str = "", max_length: int | None = None,
               guidance: float | None = None) -> list[str]:
        """`n` texts written for `condition` (generate task), each starting with `prime`."""
        self.require("sample", "it has no conditions; train one with --task generate")
        if not condition:
            raise SeqlabError(f"give a condition (--condition); known conditions: {', '.join(self.task.conditions)}")
        return self.task.sample(self.model, condition, n, temperature, top_k, seed, prime, max_length, guidance)

    def translate(self, texts: list[str] | str, beam: int | None = None, warn=None) -> list[str]:
        """Translations of `texts` (translate task): beam search of width `beam` (default:
        the model's setting; 1 is greedy). Sources longer than the model's limit are cut,
        with a `warn` (default: a Python warning)."""
        self.require("translate", "train one with --task translate")
        if warn is None:
            import warnings

            warn = lambda msg: warnings.warn(msg, stacklevel=3)  # noqa: E731
        return self.task.translate(self.model, check_texts(texts), beam, warn=warn)

    def translate_nbest(self, texts: list[str] | str, beam: int | None, n: int, warn=None) -> list[list[dict]]:
        """The `n` best translations of each text, best first, with their scores (translate)."""
        self.require("translate", "train one with --task translate")
        return self.task.translate_nbest(self.model, check_texts(texts), beam=beam, n=n, warn=warn)

    def attention_heatmap(self, text: str, path: str | Path, beam: int | None = None) -> Path:
        """Write a PNG of the attention weights while translating `text`."""
        self.require("translate", "it has no attention to plot")
        return self.task.attention_heatmap(self.model, text, Path(path), beam)

    def generate(self, prime: str = "", length: int = 200, temperature: float = 1.0,
                 top_k: int | None = None, seed: int | None = None) -> str:
        """`prime` followed by `length` sampled tokens; the same seed gives the same text."""
        import warnings

        pieces = self.generate_stream(prime, length, temperature, top_k, seed,
                                      warn=lambda msg: warnings.warn(msg, stacklevel=3))
        return prime + "".join(pieces)

    def __repr__(self) -> str:
        return f"Bundle({str(self.directory)!r}, task={self.cfg.task!r}, family={self.family!r})"


def check_texts(texts) -> list[str]:
    """A text or a list of non-blank texts -> the list; a blank one is a one-line error."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    for i, text in enumerate(texts, 1):
        if not isinstance(text, str) or not text.strip():
            raise SeqlabError(f"input {i} is empty: give some text to predict")
    return texts


def load_bundle(directory: str | Path, *, weights: bool = True) -> Bundle:
    """Load a bundle folder; every problem is a one-line SeqlabError. `weights=False` reads
    only the settings and vocabularies (the task that reads and scores data; model None): an
    ONNX export folder holds those JSON files and no torch weights."""
    from seqlab.families import family_of
    from seqlab.tasks import make_task

    directory = Path(directory)
    if not directory.is_dir():
        raise SeqlabError(f"{directory}: no such model folder; train one with 'seqlab train ... --out {directory}'")
    config_path = directory / "config.json"
    if not config_path.is_file():
        if (directory / "checkpoints" / "last.ckpt").is_file():
            raise SeqlabError(f"{directory}: not a complete seqlab bundle (no config.json); its training was "
                              "interrupted: rerun the same 'seqlab train' with --resume")
        raise SeqlabError(f"{directory}: not a seqlab bundle (no config.json); give the --out folder of a "
                          "finished 'seqlab train'")
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
        fmt = int(meta.get("format_version", 0))
    except (json.JSONDecodeError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise SeqlabError(f"{config_path}: not valid JSON ({exc}); the bundle is corrupt") from None
    if fmt > FORMAT_VERSION:
        raise SeqlabError(
            f"{directory}: made by seqlab {meta.get('seqlab_version', '?')} (bundle format {fmt}), newer "
            f"than this seqlab {__version__} (format {FORMAT_VERSION}); upgrade seqlab to load it"
        )
    try:
        cfg = RunConfig.from_dict(meta["config"])
        state = meta.get("task_state", {})
    except (KeyError, SeqlabError) as exc:
        raise SeqlabError(f"{config_path}: missing or invalid settings ({exc})") from None
    task = make_task(cfg)
    task.load_vocab(directory, state)
    family = family_of(cfg.model.family)
    if not weights:
        model = None
    elif family.neural:
        model = _load_weights(task, directory / "model.safetensors")
    else:
        model = family.implementation.load(directory)
    return Bundle(directory, cfg, task, model, meta)


def _load_weights(task, path: Path):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise SeqlabError(f"{path}: missing; the bundle is incomplete (retrain, or rerun with --resume)")
    model = task.build_model()
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise SeqlabError(f"{path}: not a readable safetensors file ({exc})") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SeqlabError(
            f"{path}: weights do not match the model in config.json "
            f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)"
        )
    return model.eval()
