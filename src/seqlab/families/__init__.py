"""Model families, registered in one explicit table: name -> Family(implementation, settings).

A neural family is an `Encoder` (families/base.py): (token ids (B, T), lengths (B,)) ->
per-step states and a sequence summary. An estimator family (`linear`, scikit-learn) is fit
in one call on whole texts instead. Each family owns a small settings dataclass; its fields
become `model.<field>` settings and CLI flags (config.py composes them), so adding a family is
one file plus one line here. `lstm`, `gru` and `rnn` are names for the recurrent family with
a given cell (ALIASES).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seqlab.errors import SeqlabError
from seqlab.families.base import Encoder
from seqlab.families.bow import BagOfWords, BowSettings
from seqlab.families.cnn import ConvEncoder, ConvSettings
from seqlab.families.linear import LinearEstimator, LinearSettings
from seqlab.families.rnn import RecurrentEncoder, RecurrentSettings

if TYPE_CHECKING:
    from seqlab.config import ModelConfig


@dataclass(frozen=True)
class Family:
    """One row of the family table."""

    implementation: type  # an Encoder subclass, or an estimator adapter (fit/save/load)
    settings: type  # the family's own settings dataclass (-> model.<field>, --flags)
    # settings the family implies unless the user sets them (e.g. Kim 2014's dropout 0.5)
    defaults: dict[str, Any] = field(default_factory=dict)
    # shared settings the family never reads: `seqlab tune` leaves them out of its search
    unused: tuple[str, ...] = ()

    @property
    def neural(self) -> bool:
        return issubclass(self.implementation, Encoder)


FAMILIES: dict[str, Family] = {
    "linear": Family(LinearEstimator, LinearSettings),
    "bow": Family(BagOfWords, BowSettings, {"model.dropout": 0.0}),
    "cnn": Family(ConvEncoder, ConvSettings, {"model.dropout": 0.5}, unused=("model.hidden_dim",)),
    "rnn": Family(RecurrentEncoder, RecurrentSettings),
}

# Names users type that stand for a family with settings they imply.
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "rnn": ("rnn", {"cell": "rnn"}),
    "lstm": ("rnn", {"cell": "lstm"}),
    "gru": ("rnn", {"cell": "gru"}),
}


def family_names() -> tuple[str, ...]:
    """Every name a user may type: the table's rows and the aliases (read live, so a family
    registered later, e.g. by a plugin or a test, is included)."""
    return tuple(dict.fromkeys([*FAMILIES, *ALIASES]))


def check_family_name(name: str) -> str:
    if name not in family_names():
        raise SeqlabError(f"unknown family {name!r}; choose one of: {', '.join(family_names())}")
    return name


def family_key(name: str) -> str:
    """The table row a user-facing name stands for (lstm -> rnn)."""
    check_family_name(name)
    return ALIASES[name][0] if name in ALIASES else name


def family_of(name: str) -> Family:
    """The table row behind a user-facing name (lstm -> the rnn family)."""
    check_family_name(name)
    return FAMILIES[ALIASES[name][0] if name in ALIASES else name]


def resolve_family(cfg: ModelConfig) -> Family:
    """Apply what the user-facing family name implies (lstm -> rnn with cell=lstm)."""
    row = family_of(cfg.family)
    for key, value in ALIASES.get(cfg.family, ("", {}))[1].items():
        setattr(cfg, key, value)
    return row


def build_encoder(vocab_size: int, cfg: ModelConfig, *, causal: bool = False, extra_dim: int = 0) -> Encoder:
    """`extra_dim`: size of per-step features the task feeds beside the ids (base.embed)."""
    row = resolve_family(cfg)
    if not row.neural:
        raise SeqlabError(f"the {cfg.family} family is not a neural encoder; this task needs one of: "
                          + ", ".join(n for n in family_names() if family_of(n).neural))
    return row.implementation(vocab_size, cfg, causal=causal, extra_dim=extra_dim)
