"""Typed configuration: what data, which model, how to train.

Values come from, in rising priority: the dataclass defaults, the task's, dataset's and
family's defaults, a preset or `--config FILE` (YAML), and command-line flags / keyword arguments.
Every override is addressed as `section.field` (e.g. `model.hidden_dim`), so one small
function applies them all and reports unknown names clearly.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from seqlab.errors import SeqlabError


@dataclass
class DataConfig:
    source: str | None = None  # dataset name or path
    test_data: str | None = None  # separate test file
    data_dir: str | None = None  # folder holding publishers' files
    format: str | None = None  # reader override: csv, tsv, jsonl, fasttext, folder
    text_column: str = "text"
    label_column: str = "label"
    condition_column: str = "condition"  # generate: the column a text is written for
    encoding: str = "utf-8"
    validation_fraction: float = 0.1
    limit: int | None = None  # keep at most this many examples per split (quick runs)
    tokenizer: str = "word"  # word | char
    lowercase: bool = True
    max_vocab: int | None = 20000
    min_freq: int = 1
    max_length: int | None = 400  # tokens kept per example (from the start)
    # translate: parallel files, one sentence per line (gzip accepted), aligned by line
    source_file: str | None = None
    target_file: str | None = None
    valid_source: str | None = None
    valid_target: str | None = None
    test_source: str | None = None
    test_target: str | None = None
    tag_column: str = "upos"  # tag: which CoNLL-U tags to learn, upos | xpos


@dataclass
class ModelConfig:
    family: str = "lstm"  # bow | cnn | rnn | lstm | gru (+ linear, outside torch)
    cell: str = "lstm"  # for the rnn family: rnn | lstm | gru
    embed_dim: int = 128
    hidden_dim: int = 128
    layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.2
    pooling: str = "last"  # sequence summary of rnn: last | max | mean, or joined: max+mean
    kernel_sizes: list[int] = field(default_factory=lambda: [3, 4, 5])
    filters: int = 100
    bigrams: bool = False  # bow: add hashed bigram features (fastText style)
    hash_buckets: int = 2**18
    # tag: a char CNN over each word, appended to its embedding (helps unseen words)
    char_features: bool = False
    char_dim: int = 50  # character embedding size
    char_filters: int = 100  # char CNN output size per word (measured better than 64 on EWT)
    # generate: share of training examples whose condition is hidden (learns the unconditional
    # model that sampling with guidance contrasts against)
    condition_dropout: float = 0.0
    guidance: float = 0.0  # generate: default guidance weight when sampling
    # tag, classify: training reads a word seen c times as <unk> with probability a/(a + c)
    word_dropout: float = 0.0
    # translate: attention none | dot | general | additive; decoding beam width and length
    # penalty (hypotheses ranked by log-probability / length**length_penalty)
    attention: str = "general"
    beam: int = 5
    length_penalty: float = 1.0
    # linear baseline (scikit-learn)
    features: str = "tfidf"  # count | tfidf | binary
    ngram_max: int = 1
    min_df: int = 1  # linear: drop n-grams seen in fewer training documents
    nb: bool = False
    C: float = 3.0


@dataclass
class TrainConfig:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_decay: float = 1.0  # learning rate multiplied by this after each epoch (1 = constant)
    # keep an exponential moving average of the weights (decay per step; 0 = off); validation,
    # checkpoints and the bundle use the average, which is smoother than the last step's weights
    ema: float = 0.0
    grad_clip: float = 1.0
    label_smoothing: float = 0.0  # translate: spread this much target probability evenly
    patience: int = 3  # early stopping, in epochs without improvement
    seed: int = 0
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    progress: bool = True
    seq_len: int = 100  # lm: tokens per truncated-BPTT window
    max_minutes: float | None = None  # stop after this much training; the best model is kept

    def check(self) -> None:
        """Refuse impossible values before any data is read (loading can take minutes)."""
        if not 0 < self.lr_decay <= 1:
            raise SeqlabError(f"--lr-decay must be in (0, 1] (got {self.lr_decay})")
        if not 0 <= self.ema < 1:
            raise SeqlabError(f"--ema must be in [0, 1), e.g. 0.999; 0 turns it off (got {self.ema})")


@dataclass
class RunConfig:
    task: str = "classify"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        cfg = cls()
        apply_overrides(cfg, flatten(data))
        return cfg


SECTIONS = ("data", "model", "train")


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"layers": 2}} -> {"model.layers": 2}; top-level keys stay as they are."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and (prefix or key in SECTIONS):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Turn a YAML/CLI value into the field's declared type, with a clear error."""
    if value is None:
        return None
    origin, args = get_origin(hint), get_args(hint)
    if args and type(None) in args:  # Optional[X]
        hint = next(a for a in args if a is not type(None))
        origin, args = get_origin(hint), get_args(hint)
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if origin is list:
            items = value.split(",") if isinstance(value, str) else list(value)
            return [_coerce(v, args[0], name) for v in items]
        if hint in (int, float, str):
            return hint(value)
    except (TypeError, ValueError):
        raise SeqlabError(f"{name}: cannot read {value!r} as {getattr(hint, '__name__', hint)}") from None
    return value


def apply_overrides(cfg: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Set `section.field` values on cfg in place; unknown names are an error."""
    for name, value in overrides.items():
        if name == "task":
            cfg.task = str(value)
            continue
        section, _, key = name.partition(".")
        target = getattr(cfg, section, None) if section in SECTIONS else None
        if target is None or key not in {f.name for f in dataclasses.fields(target)}:
            known = sorted(f"{s}.{f.name}" for s in SECTIONS for f in dataclasses.fields(getattr(cfg, s)))
            close = difflib.get_close_matches(name, known, n=3)
            if close:
                hint = f"did you mean {' or '.join(close)}?"
            elif section in SECTIONS:
                hint = "settings of that section: " + ", ".join(k for k in known if k.startswith(section + "."))
            else:
                hint = f"settings are task or section.field with a section of: {', '.join(SECTIONS)}"
            raise SeqlabError(f"unknown setting {name!r}; {hint}")
        hint = get_type_hints(type(target))[key]
        setattr(target, key, _coerce(value, hint, name))
    return cfg


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) config file into flat overrides."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SeqlabError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise SeqlabError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise SeqlabError(f"{path}: expected a mapping of settings (e.g. 'model: {{layers: 2}}')")
    return flatten(data)


# Settings a named dataset implies unless the user sets them (names are spelled with
# capitals and non-ASCII letters, and are read one character at a time).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "names": {"data.tokenizer": "char", "data.lowercase": False, "data.max_length": 32},
    "imdb": {"data.max_length": 400},
}

# Settings a task implies unless the user, a dataset or a family sets them. Tagging reads
# both directions and spells out each word (the char CNN sees the original case, so words
# stay lowercased: measured better on UD-EWT slices, with and without char features); it
# takes more, smaller steps than classification (measured: 2 epochs of 1.35k sentences).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    # Word dropout 0.25 with lr decay 0.95 took UD-EWT test UPOS from 0.9467 to 0.9524 and
    # unseen-word accuracy from 0.764 to 0.797 (bench/tag.py bilstm-char-wd).
    "tag": {
        "model.bidirectional": True,
        "model.char_features": True,
        "model.word_dropout": 0.25,
        "train.batch_size": 32,
        "train.lr": 0.002,
        "train.lr_decay": 0.95,
    },
    # Language models read characters as written (case and all code points) by default.
    "lm": {"data.tokenizer": "char", "data.lowercase": False, "train.lr": 0.002},
    # Translation: subwords as written (scored cased on raw text), a bidirectional encoder; the
    # sizes of bench/translate.py's gru-attention run (Multi30k test BLEU 38.97).
    "translate": {"data.tokenizer": "bpe", "data.lowercase": False, "data.max_vocab": 8000,
                  "data.max_length": 100, "model.bidirectional": True, "model.embed_dim": 256,
                  "model.hidden_dim": 512, "model.dropout": 0.3, "train.label_smoothing": 0.1,
                  "train.lr_decay": 0.9},
    # Conditional generation writes short texts (names) one character at a time.
    # Names: condition dropout 0.15 + guidance 1.0 measured 0.77 conditioning accuracy at
    # temperature 0.8 against 0.56 for plain sampling (bench/generate.py, BENCHMARKS.md).
    "generate": {"data.tokenizer": "char", "data.lowercase": False, "data.max_length": 32,
                 "train.lr": 0.002, "model.condition_dropout": 0.15, "model.guidance": 1.0},
}

# Settings a family implies unless the user sets them (Kim 2014 used dropout 0.5).
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "cnn": {"model.dropout": 0.5},
    "bow": {"model.dropout": 0.0},
}


def resolve_setting_name(name: str) -> str:
    """`epochs` -> `train.epochs`; dotted names pass through. Ambiguous or unknown: error."""
    if "." in name or name == "task":
        return name
    sections = [s for s in SECTIONS if name in {f.name for f in dataclasses.fields(_SECTION_TYPES[s])}]
    if len(sections) != 1:
        what = "ambiguous" if sections else "unknown"
        raise SeqlabError(f"{what} setting {name!r}; write it as section.field (sections: {', '.join(SECTIONS)})")
    return f"{sections[0]}.{name}"


_SECTION_TYPES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def build_config(
    *,
    task: str = "classify",
    data: str | None = None,
    family: str | None = None,
    config_file: str | Path | None = None,
    settings: dict[str, Any] | None = None,
) -> RunConfig:
    """Layer defaults, dataset and family defaults, a config file and explicit settings."""
    explicit = {resolve_setting_name(k): v for k, v in (settings or {}).items() if v is not None}
    from_file = load_config_file(config_file) if config_file else {}
    # priority: config file < arguments (--data, --family) < explicit settings
    layered: dict[str, Any] = {"task": task, **from_file}
    if data is not None:
        layered["data.source"] = data
    if family is not None:
        layered["model.family"] = family
    layered.update(explicit)
    cfg = RunConfig()
    source = layered.get("data.source")
    fam = layered.get("model.family", cfg.model.family)
    implied = {
        **TASK_DEFAULTS.get(str(layered["task"]), {}),
        **DATASET_DEFAULTS.get(str(source), {}),
        **FAMILY_DEFAULTS.get(str(fam), {}),
    }
    apply_overrides(cfg, {**implied, **layered})
    return cfg
