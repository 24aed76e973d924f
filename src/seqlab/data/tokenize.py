"""Word-, subword (BPE) and character-level tokenizers on the `tokenizers` library.

A tokenizer is fit on the training split only and saved in the bundle as the library's own
`tokenizer.json`, so loading a model needs nothing of ours beyond this thin wrapper.
Special tokens have fixed ids so models and decoders can rely on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from seqlab.errors import SeqlabError
from seqlab.vocab import BOS, BOS_ID, EOS, EOS_ID, PAD, PAD_ID, SPECIAL_TOKENS, UNK, UNK_ID  # noqa: F401

LEVELS = ("word", "char", "bpe")
# Reversible tokenization (translation output is scored on detokenized text): each token
# carries its leading space as "▁" (SentencePiece's Metaspace), so decoding restores the
# text exactly. Words keep the marker, punctuation is split off ("▁dog", ".").
_SPACE = "\u2581"
_SPACED_WORD_PATTERN = _SPACE + r"?\w+(?:'\w+)*|" + _SPACE + r"?[^\w\s" + _SPACE + "]|" + _SPACE

# Words keep inner apostrophes ("don't"); every other non-space symbol is its own token.
_WORD_PATTERN = r"\w+(?:'\w+)*|[^\w\s]"
# IMDB and other scraped text carry HTML line breaks.
_HTML_BREAK = r"<br\s*/?>"


def _normalizer(lowercase: bool) -> normalizers.Normalizer:
    steps = [normalizers.NFC(), normalizers.Replace(Regex(_HTML_BREAK), " ")]
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _pre_tokenizer(level: str, spaces: bool = False) -> pre_tokenizers.PreTokenizer:
    if level == "bpe":
        return pre_tokenizers.Metaspace(replacement=_SPACE, prepend_scheme="always")
    if spaces:
        return pre_tokenizers.Sequence([
            pre_tokenizers.Metaspace(replacement=_SPACE, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(_SPACED_WORD_PATTERN), "isolated"),
        ])
    if level == "char":
        # One token per Unicode code point (not per byte), spaces and newlines included.
        return pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    return pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(_WORD_PATTERN), "isolated")]
    )


def train_vocabulary(
    tok: Tokenizer, items: Iterable[str], *, max_vocab: int | None, min_freq: int, what: str
) -> None:
    """Fit a WordLevel vocabulary (special tokens first, at their fixed ids) on training items."""
    trainer = trainers.WordLevelTrainer(
        vocab_size=(max_vocab + len(SPECIAL_TOKENS)) if max_vocab else 10**9,
        min_frequency=min_freq,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    tok.train_from_iterator(items, trainer)
    if tok.get_vocab_size() <= len(SPECIAL_TOKENS):
        if min_freq > 1:
            raise SeqlabError(f"--min-freq {min_freq} (data.min_freq) keeps no token: none occurs that often "
                              f"in the training {what}; lower it")
        raise SeqlabError(f"the training {what} are empty: no token to build a vocabulary from")


def _fit_bpe(texts: Iterable[str], lowercase: bool, max_vocab: int | None, min_freq: int) -> Tokenizer:
    """Byte-pair encoding over space-marked words; `max_vocab` is the merged vocabulary size."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = _normalizer(lowercase)
    tok.pre_tokenizer = _pre_tokenizer("bpe")
    tok.decoder = decoders.Metaspace(replacement=_SPACE, prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=max_vocab or 8000, min_frequency=max(min_freq, 2), special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    if tok.get_vocab_size() <= len(SPECIAL_TOKENS):
        raise SeqlabError("the training texts are empty: no token to build a vocabulary from")
    return tok


ENCODE_CHUNK = 1024  # texts per call of the Rust batch encoder (still parallel inside)


class TextTokenizer:
    """Text <-> token ids at word or character level, with fixed special-token ids."""

    def __init__(self, tokenizer: Tokenizer, level: str):
        self.tokenizer = tokenizer
        self.level = level
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        *,
        level: str = "word",
        lowercase: bool = True,
        max_vocab: int | None = 20000,
        min_freq: int = 1,
        spaces: bool = False,
    ) -> TextTokenizer:
        """`spaces=True` (word level; bpe always): tokens keep their leading space, so
        `decode` gives back the text as written (what translation output is scored on)."""
        if level not in LEVELS:
            raise SeqlabError(
                f"unknown tokenizer level {level!r}; choose one of: {', '.join(LEVELS)}"
            )
        if level == "bpe":
            return cls(_fit_bpe(texts, lowercase, max_vocab, min_freq), level)
        spaces = spaces and level == "word"
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.normalizer = _normalizer(lowercase)
        tok.pre_tokenizer = _pre_tokenizer(level, spaces)
        if spaces:
            tok.decoder = decoders.Metaspace(replacement=_SPACE, prepend_scheme="always")
        else:
            tok.decoder = decoders.Fuse() if level == "char" else decoders.WordPiece(cleanup=True)
        train_vocabulary(tok, texts, max_vocab=max_vocab, min_freq=min_freq, what="texts")
        return cls(tok, level)

    # -- encoding ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        # In chunks: an Encoding also holds token strings and offsets, so encoding 25k long
        # reviews at once held ~800 MB that only the ids survive.
        texts = list(texts)
        ids: list[list[int]] = []
        for start in range(0, len(texts), ENCODE_CHUNK):
            encoded = self.tokenizer.encode_batch(texts[start : start + ENCODE_CHUNK])
            ids.extend(e.ids[:max_length] if max_length else e.ids for e in encoded)
        return ids

    def tokens(self, text: str) -> list[str]:
        """The surface tokens of `text` (after normalization), e.g. for a BoW table."""
        return [
            piece
            for piece, _ in self.tokenizer.pre_tokenizer.pre_tokenize_str(
                self.tokenizer.normalizer.normalize_str(text)
            )
        ]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def id_to_token(self, i: int) -> str:
        return self.tokenizer.id_to_token(i) or UNK

    def token_to_id(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)

    # -- persistence ------------------------------------------------------------------------
    def to_json(self) -> str:
        data = json.loads(self.tokenizer.to_str())
        data["seqlab"] = {"level": self.level}
        return json.dumps(data, ensure_ascii=False)

    def save(self, path: str | Path) -> None:
        from seqlab.files import atomic_write_text

        atomic_write_text(path, self.to_json())

    @classmethod
    def from_json(cls, text: str) -> TextTokenizer:
        """The inverse of `to_json` (raises ValueError or the tokenizers' Exception on bad text)."""
        data = json.loads(text)
        level = data.pop("seqlab", {}).get("level", "word")
        return cls(Tokenizer.from_str(json.dumps(data)), level)

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        path = Path(path)
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SeqlabError(f"{path}: no such file; the bundle is incomplete") from None
        except Exception as exc:  # tokenizers raises plain Exception on bad JSON
            raise SeqlabError(f"{path}: not a valid tokenizer file ({exc})") from None
