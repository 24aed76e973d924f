"""Typed configuration: what data, which model, how to train.

Values come from, in rising priority: the dataclass defaults, the task's, dataset's and
family's defaults, a preset or `--config FILE` (YAML), and command-line flags / keyword arguments.
Every override is addressed as `section.field` (e.g. `model.hidden_dim`), so one small
function applies them all and reports unknown names clearly.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from seqlab.errors import SeqlabError


def setting(default: Any = MISSING, help: str = "", *, flag: str | None = None, choices: tuple | None = None,
            min: float | None = None, max: float | None = None, above: float | None = None,
            below: float | None = None, check: Callable[[Any], Any] | None = None,
            default_factory: Callable[[], Any] | None = None, cli: bool = True,
            search: Search | None = None) -> Any:
    """A dataclass field that declares, next to its definition, what the CLI and the checks
    need: its --help text, its flag (default: --field-name), and its valid values (choices;
    min/max inclusive, above/below exclusive; `check` raises SeqlabError). None is always
    valid for Optional fields. `cli=False`: no generated flag (the verb has its own).
    `search`: the range `seqlab tune` explores for it (see `search_space`)."""
    meta = {"help": help, "flag": flag, "choices": choices, "min": min, "max": max, "above": above,
            "below": below, "check": check, "cli": cli, "search": search}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Search:
    """The values `seqlab tune` tries for one setting: a numeric range [low, high] (integers
    when `integer`, sampled on a log scale when `log`), or a few `choices`. Declared once, on the
    setting's own field, so every family that reads a shared setting searches the same range.
    List settings (cnn kernel sizes) are offered as comma-separated strings ("3,4,5"), which
    the config reads back as lists; the search library accepts only plain values."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple | None = None

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return as_choice(value) in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return self.low <= value <= self.high and (not self.integer or float(value).is_integer())


def log_range(low: float, high: float) -> Search:
    return Search(low, high, log=True)


def float_range(low: float, high: float) -> Search:
    return Search(low, high)


def int_range(low: int, high: int) -> Search:
    return Search(low, high, integer=True)


def one_of(*choices: Any) -> Search:
    return Search(choices=tuple(choices))


def as_choice(value: Any) -> Any:
    """A setting's value as a search choice: lists become "3,4,5"."""
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else value


@dataclass
class DataConfig:
    source: str | None = setting(None, "dataset name or path", cli=False)
    test_data: str | None = setting(None, "a separate test file")
    data_dir: str | None = setting(None, "folder with the publishers' files (default $SEQLAB_DATA_DIR)")
    format: str | None = setting(None, "reader: csv, tsv, jsonl, fasttext, folder; tag: conllu, tsv "
                                 "(default: by extension)")
    text_column: str = setting("text", "column/field holding the text (default: text)")
    label_column: str = setting("label", "column/field holding the label (default: label)")
    condition_column: str = setting("condition", "generate: column/field the text is written for "
                                    "(default: condition)")
    encoding: str = setting("utf-8", "file encoding (default utf-8), e.g. latin-1")
    validation_fraction: float = setting(0.1, "share of train held out when no validation split is given",
                                         above=0, below=1)
    limit: int | None = setting(None, "use at most N random examples per split (quick runs)", min=1)
    tokenizer: str = setting("word", "word, char or bpe", choices=("word", "char", "bpe"))
    lowercase: bool = setting(True, "lowercase text before tokenizing")
    max_vocab: int | None = setting(20000, "keep the N most frequent tokens", min=5)
    min_freq: int = setting(1, "drop tokens seen fewer times in training", min=1)
    max_length: int | None = setting(400, "tokens kept per example, from the start (classify: 1000)", min=1)
    on_disk: str = setting("auto", "classify: encode a data file once into token ids on disk and train from "
                           "there: auto (files over 256 MB), yes or no", choices=("auto", "yes", "no"))
    # translate: parallel files, one sentence per line (gzip accepted), aligned by line
    source_file: str | None = setting(None, "translate: source sentences, one per line (gzip accepted)",
                                      flag="--source")
    target_file: str | None = setting(None, "translate: their translations, line by line", flag="--target")
    valid_source: str | None = setting(None, "translate: validation source file")
    valid_target: str | None = setting(None, "translate: validation target file")
    test_source: str | None = setting(None, "translate: test source file")
    test_target: str | None = setting(None, "translate: test target file")
    tag_column: str = setting("upos", "tag: CoNLL-U tags to learn, upos or xpos (default upos)",
                              choices=("upos", "xpos"))


@dataclass
class ModelConfig:
    """The model settings every family shares. The run's `model` section is this plus each
    family's and each task's own settings dataclass (composed by `model_config_type`)."""

    family: str = setting("lstm", "bow, cnn, rnn, lstm, gru or linear", cli=False)
    embed_dim: int = setting(128, "embedding size", min=1, search=one_of(64, 128, 200, 300))
    hidden_dim: int = setting(128, "hidden size (rnn state, bow MLP)", min=1, search=one_of(64, 128, 256))
    dropout: float = setting(0.2, "dropout rate", min=0, below=1, search=float_range(0.0, 0.6))
    # tag, classify: training reads a word seen c times as <unk> with probability a/(a + c)
    word_dropout: float = setting(0.0, "tag/classify: training reads a word seen c times as <unk> with "
                                  "chance A/(A+c)", min=0, search=float_range(0.0, 3.0))
    # pretrained word vectors for the input tokens (GloVe / word2vec text / fastText .vec)
    embeddings: str | None = setting(None, "initialize the token embeddings from a GloVe, word2vec-text or "
                                     "fastText .vec file (gzip ok); --embed-dim defaults to its size")
    freeze_embeddings: bool = setting(False, "keep the pretrained vectors fixed (Kim's CNN-static)")


PRECISIONS = ("32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true", "64-true", "64")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


@dataclass
class TrainConfig:
    epochs: int = setting(5, "maximum epochs", min=1)
    batch_size: int = setting(64, "examples per batch", min=1, search=one_of(32, 50, 64, 100))
    lr: float = setting(1e-3, "Adam learning rate", above=0, search=log_range(3e-4, 1e-2))
    weight_decay: float = setting(0.0, "Adam weight decay", min=0)
    lr_decay: float = setting(1.0, "multiply the learning rate by this after each epoch (default 1)",
                              above=0, max=1)
    # keep an exponential moving average of the weights (decay per step; 0 = off); validation,
    # checkpoints and the bundle use the average, which is smoother than the last step's weights
    ema: float = setting(0.0, "evaluate and keep an exponential moving average of the weights with this "
                         "per-step decay, e.g. 0.999 (default 0 = off)", min=0, below=1,
                         search=one_of(0.0, 0.99, 0.999))
    grad_clip: float = setting(1.0, "gradient norm clipping (0 = off)", min=0)
    label_smoothing: float = setting(0.0, "translate: label smoothing of the training loss", min=0, below=1)
    patience: int = setting(3, "early stopping patience in epochs (0 = off)", min=0)
    # Validation only picks the epoch count; the examples it held out are worth more as training
    # data afterwards (10% more data on small sets). Twice the training time.
    refit: str = setting("no", "after validation picks the best epoch count, train again on training + "
                         "validation data for that many epochs and keep that model (its reported validation "
                         "score stays the first run's): yes, no, or auto (yes under 20,000 examples)",
                         choices=("auto", "yes", "no"))
    seed: int = setting(0, "random seed (same seed, same machine: same metrics)", min=0)
    accelerator: str = setting("auto", "Lightning accelerator: auto, cpu, gpu", choices=ACCELERATORS)
    devices: str = setting("auto", "Lightning devices, e.g. 2 or auto")
    strategy: str = setting("auto", "Lightning strategy, e.g. ddp")
    num_nodes: int = setting(1, "machines for distributed training", min=1)
    precision: str = setting("32-true", "Lightning precision, e.g. 32-true, bf16-mixed", choices=PRECISIONS)
    progress: bool = setting(True, "show progress bars")
    seq_len: int = setting(100, "lm: tokens per training window (truncated BPTT, default 100)", min=1)
    max_minutes: float | None = setting(None, "stop training after this many minutes; the best model is kept",
                                        above=0)
    checkpoint_every: float | None = setting(None, "also write checkpoints/last.ckpt every N minutes within an "
                                             "epoch (default: at the end of each epoch only)", above=0)


@dataclass
class RunConfig:
    task: str = "classify"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=lambda: model_config_type()())
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
    # IMDB's 22,500 training reviews (seqlab's word tokenizer, counted in session 8) average 270
    # tokens but 17.7% run past 400: cutting them there cost
    # the default cnn and bow 1-1.5 points of test accuracy (0.876 / 0.884, BENCHMARKS.md). At
    # 1000 (the presets', and since session 9 every classifier's: tasks/classify.py) 1.3% are cut
    # and the mean kept length grows only from 231 to 268 tokens (+16% work: bucketed batches pad
    # little). Kept here too, so the IMDB record does not hang on the task's default.
    "imdb": {"data.max_length": 1000, "data.max_vocab": 30000},
}

def resolve_setting_name(name: str) -> str:
    """`epochs` -> `train.epochs`; dotted names pass through. Ambiguous or unknown: error."""
    if "." in name or name == "task":
        return name
    sections = [s for s in SECTIONS if name in {f.name for f in dataclasses.fields(section_types()[s])}]
    if len(sections) != 1:
        what = "ambiguous" if sections else "unknown"
        raise SeqlabError(f"{what} setting {name!r}; write it as section.field (sections: {', '.join(SECTIONS)})")
    return f"{sections[0]}.{name}"


def section_types() -> dict[str, type]:
    return {"data": DataConfig, "model": model_config_type(), "train": TrainConfig}


def settings_owners() -> list[tuple[str, type]]:
    """(owner, settings dataclass) for the model section: the shared fields, then each family's
    and each task's own (from the two tables). Imports the tables, hence torch."""
    from seqlab.families import FAMILIES
    from seqlab.tasks import TASKS

    owners: list[tuple[str, type]] = [("model", ModelConfig)]
    owners += [(name, row.settings) for name, row in FAMILIES.items()]
    owners += [(name, task.settings) for name, task in TASKS.items() if task.settings is not None]
    return owners


def model_config_type() -> type:
    """The run's `model` section: ModelConfig plus every registered family's and task's
    settings, as one flat dataclass (`model.kernel_sizes`, `model.attention`, ...), so configs,
    flags and bundles address every setting the same way whoever owns it. Composed once per
    state of the two tables (a row added later is picked up)."""
    return _compose_model_config(tuple(settings_owners()[1:]))


@functools.cache
def _compose_model_config(owners: tuple[tuple[str, type], ...]) -> type:
    seen: dict[str, str] = {f.name: "model" for f in dataclasses.fields(ModelConfig)}
    extra = []
    for owner, settings in owners:
        hints = get_type_hints(settings)
        for f in dataclasses.fields(settings):
            if f.name in seen:
                raise TypeError(f"setting model.{f.name} is declared by both {seen[f.name]} and {owner}")
            seen[f.name] = owner
            extra.append((f.name, hints[f.name], f))
    composed = dataclasses.make_dataclass("ModelConfig", extra, bases=(ModelConfig,))
    composed.__module__ = __name__
    composed.owners = seen  # field -> who declares it (for --help groups)
    return composed


def iter_settings() -> list[tuple[str, dataclasses.Field, Any, str]]:
    """Every setting as (section.field, field, type, owner), for flags and checks."""
    out = []
    owners = model_config_type().owners
    for section, kind in section_types().items():
        hints = get_type_hints(kind)
        for f in dataclasses.fields(kind):
            owner = owners.get(f.name, "model") if section == "model" else section
            out.append((f"{section}.{f.name}", f, hints[f.name], owner))
    return out


def check_settings(cfg: RunConfig) -> None:
    """Refuse impossible values before any data is read, for flags, config files and Python
    keyword arguments alike: each field's declared choices and range (see `setting`)."""
    for name, f, _, _ in iter_settings():
        section, _, key = name.partition(".")
        value = getattr(getattr(cfg, section), key)
        _check_value(name, f, value)


def flag_of(name: str, f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _check_value(name: str, f: dataclasses.Field, value: Any) -> None:
    meta = f.metadata
    if value is None or not meta:
        return
    what = f"{flag_of(name, f)} ({name})"
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, float) and not math.isfinite(item):
            raise SeqlabError(f"{what} must be a finite number (got {item})")
        if meta.get("choices") is not None and item not in meta["choices"]:
            raise SeqlabError(f"{what} must be one of: {', '.join(map(str, meta['choices']))} (got {item!r})")
        bounds = [("min", lambda v, b: v >= b, "at least"), ("max", lambda v, b: v <= b, "at most"),
                  ("above", lambda v, b: v > b, "above"), ("below", lambda v, b: v < b, "below")]
        for key, ok, words in bounds:
            bound = meta.get(key)
            if bound is not None and isinstance(item, int | float) and not ok(item, bound):
                raise SeqlabError(f"{what} must be {words} {bound} (got {item})")
    if meta.get("check") is not None:
        meta["check"](value)


def implied_layers(task: str, source: Any, family: str) -> list[tuple[str, dict[str, Any]]]:
    """The settings a run gets without asking, weakest first, named for people: the task's,
    the dataset's, the family's, and the task's recipe for that family (e.g. classify's
    recurrent recipe, chosen on the sentence suite + IMDB + names; see BENCHMARKS.md)."""
    from seqlab.families import family_key, family_of
    from seqlab.tasks import task_class

    kind = task_class(task)
    return [
        (f"{task} defaults", dict(kind.defaults)),
        (f"{source} defaults", DATASET_DEFAULTS.get(str(source), {})),
        (f"{family} defaults", dict(family_of(family).defaults)),
        (f"{task} recipe for {family}", dict(kind.family_defaults.get(family_key(family), {}))),
    ]


def search_space(task: str, family: str) -> dict[str, Search]:
    """What `seqlab tune` explores for a (task, family), by `section.field`: every setting that
    declares a `search` range and that such a run reads. That is the family's own settings and
    the task's, plus, for a neural family, the shared model and training settings, less those
    its row declares unused (`Family.unused`: cnn has no hidden layer). An estimator family
    (linear) is fit in one call without Lightning: only its own settings. Sorted by name, so the
    sampler sees one stable order."""
    from seqlab.families import family_key, family_of

    row, key = family_of(family), family_key(family)
    space: dict[str, Search] = {}
    for name, f, _, owner in iter_settings():
        search = f.metadata.get("search")
        shared = owner in SECTIONS
        if search is not None and (owner in (key, task) or (shared and row.neural and name not in row.unused)):
            space[name] = search
    return dict(sorted(space.items()))


def recipe_summary(task: str, source: Any, family: str, explicit: set[str]) -> str:
    """One line saying which implied settings a run uses (those the user did not set)."""
    parts = []
    for name, layer in implied_layers(task, source, family):
        used = {k: v for k, v in layer.items() if k not in explicit}
        if used:
            parts.append(f"{name}: " + ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in used.items()))
    return "; ".join(parts) or "the plain defaults"


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
    fam = str(layered.get("model.family", cfg.model.family))
    implied = {k: v for _, layer in implied_layers(str(layered["task"]), layered.get("data.source"), fam)
               for k, v in layer.items()}
    if layered.get("model.embeddings") and "model.embed_dim" not in layered:
        from seqlab.data.embeddings import vector_dim  # the vectors' size unless the user set one

        layered["model.embed_dim"] = vector_dim(str(layered["model.embeddings"]))
    apply_overrides(cfg, {**implied, **layered})
    return cfg
