"""Request bodies of the HTTP API (they make the OpenAPI page at /docs)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Body):
    """`text` answers one object (as `seqlab predict DIR TEXT --json`); `texts` a list."""

    text: str | None = Field(None, examples=["a wonderful, moving film"])
    texts: list[str] | None = Field(None, examples=[["a wonderful, moving film", "dull and far too long"]])


class TranslateRequest(PredictRequest):
    """As `seqlab translate DIR ... --beam B --json`; `n_best` > 1 adds the beam's best
    translations of each sentence with their scores (length-normalized log-probability)."""

    text: str | None = Field(None, examples=["Ein Hund rennt über die Wiese."])
    texts: list[str] | None = Field(None, examples=[["Ein Hund rennt über die Wiese.", "Zwei Männer spielen."]])
    beam: int | None = Field(None, description="beam width (1 = greedy; default: the model's)")
    n_best: int = Field(1, description="translations per sentence, best first")


class GenerateRequest(_Body):
    """A language model continues `prime` (streamed as it is written with `stream`); a
    conditional generator writes `n` texts for `condition`. As `seqlab generate --json`."""

    prime: str = Field("", description="text to start from")
    length: int | None = Field(None, description="lm: tokens to write (default 500); generate: the most per text")
    temperature: float = 1.0
    top_k: int | None = None
    seed: int | None = Field(None, description="same seed, same text")
    stream: bool = Field(False, description="lm: answer text/plain, piece by piece as it is sampled")
    condition: str | None = Field(None, description="generate: what to write for")
    n: int = Field(10, description="generate: how many texts")
    guidance: float | None = Field(None, description="generate: classifier-free guidance weight")


class InspectRequest(_Body):
    """One text laid open step by step for the live page (seqlab.introspect): tokens,
    every layer's states, the task's per-step outputs."""

    text: str = Field(..., examples=["The movie my friend has not seen is good"])
    max_tokens: int | None = Field(None, description="read at most this many tokens (default and most: the limit)")
    max_units: int | None = Field(None, description="units shown per layer (default and most: the limit)")
    attribution: bool = Field(True, description="classifiers: include per-token attributions (a backward "
                              "pass; the page leaves them out and asks .../attribute after drawing)")


class AttributeRequest(_Body):
    """Each token's share of a classifier's verdict (gradient x input, or occlusion)."""

    text: str = Field(..., examples=["The movie my friend has not seen is good"])
    max_tokens: int | None = Field(None, description="read at most this many tokens (default and most: the limit)")
