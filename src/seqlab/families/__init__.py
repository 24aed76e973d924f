"""Model families: one encoder class per family, registered in one explicit table.

A family maps (token ids (B, T), lengths (B,)) to per-step states and a sequence summary
(see base.Encoded). `lstm`, `gru` and `rnn` are the recurrent family with a given cell.
`linear` (scikit-learn) is not a torch encoder; it lives in seqlab.linear.
"""

from __future__ import annotations

from torch import nn

from seqlab.config import ModelConfig
from seqlab.errors import SeqlabError
from seqlab.families.bow import BagOfWords
from seqlab.families.cnn import ConvEncoder
from seqlab.families.rnn import RecurrentEncoder

FAMILIES: dict[str, type[nn.Module]] = {
    "bow": BagOfWords,
    "cnn": ConvEncoder,
    "rnn": RecurrentEncoder,
}

# Names users type -> (family, settings they imply).
ALIASES: dict[str, tuple[str, dict]] = {
    "bow": ("bow", {}),
    "cnn": ("cnn", {}),
    "rnn": ("rnn", {"cell": "rnn"}),
    "lstm": ("rnn", {"cell": "lstm"}),
    "gru": ("rnn", {"cell": "gru"}),
}
NEURAL_NAMES = tuple(ALIASES)
ALL_NAMES = ("linear", *NEURAL_NAMES)


def check_family_name(name: str) -> str:
    if name not in ALL_NAMES:
        raise SeqlabError(f"unknown family {name!r}; choose one of: {', '.join(ALL_NAMES)}")
    return name


def resolve_family(cfg: ModelConfig) -> str:
    """Apply what the user-facing family name implies (e.g. lstm -> rnn with cell=lstm)."""
    check_family_name(cfg.family)
    key, implied = ALIASES[cfg.family]
    for field, value in implied.items():
        setattr(cfg, field, value)
    return key


def build_encoder(
    vocab_size: int, cfg: ModelConfig, *, causal: bool = False, extra_dim: int = 0
) -> nn.Module:
    """`extra_dim`: size of per-step features the task feeds beside the ids (base.embed)."""
    return FAMILIES[resolve_family(cfg)](vocab_size, cfg, causal=causal, extra_dim=extra_dim)
