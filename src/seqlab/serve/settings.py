"""What `seqlab serve` runs with: the address, the batching knobs and the request limits."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from seqlab.errors import SeqlabError

# the environment variable that hands the settings to each uvicorn worker process (--workers)
ENV_SETTINGS = "SEQLAB_SERVE_SETTINGS"
RUNTIMES = ("torch", "onnx")


@dataclass
class Limits:
    """Per-request limits; a request past one is answered 422 (listed in /v1/models)."""

    max_texts: int = 256  # texts (or sentences) in one request
    max_text_chars: int = 20_000  # characters of one text (or prime)
    max_generate_tokens: int = 2_000  # tokens one lm generation writes
    max_samples: int = 100  # texts one conditional generation writes (n)
    max_beam: int = 16  # translate beam width (and n-best)
    max_inspect_tokens: int = 128  # tokens one inspect document reads (a longer text is cut)
    max_inspect_units: int = 64  # units per layer one inspect document shows


@dataclass
class ServeSettings:
    models: list[str]  # bundle folders, optionally NAME=FOLDER
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_batch_size: int = 32  # texts run through a model at once
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    max_queue: int = 256  # requests waiting per model before new ones get 503
    timeout: float = 10.0  # seconds a request may take before it is answered 504
    max_body_kb: int = 1024
    token: str | None = None
    limits: Limits = field(default_factory=Limits)
    runtime: str = "torch"  # "onnx": run each bundle's export (seqlab export) with onnxruntime, no torch

    def check(self) -> ServeSettings:
        if not self.models:
            raise SeqlabError("give at least one bundle folder to serve")
        for name, value, low in (("--port", self.port, 0), ("--workers", self.workers, 1),
                                 ("--max-batch-size", self.max_batch_size, 1), ("--max-queue", self.max_queue, 1),
                                 ("--max-body-kb", self.max_body_kb, 1)):
            if value < low:
                raise SeqlabError(f"{name} must be at least {low} (got {value})")
        for name, value in (("--max-inspect-tokens", self.limits.max_inspect_tokens),
                            ("--max-inspect-units", self.limits.max_inspect_units)):
            if value < 1:
                raise SeqlabError(f"{name} must be at least 1 (got {value})")
        if self.runtime not in RUNTIMES:
            raise SeqlabError(f"--runtime must be one of {', '.join(RUNTIMES)} (got {self.runtime!r})")
        if self.max_wait_ms < 0:
            raise SeqlabError(f"--max-wait-ms must be 0 or more (got {self.max_wait_ms})")
        if self.timeout <= 0:
            raise SeqlabError(f"--timeout must be above 0 seconds (got {self.timeout})")
        self.named_models()
        return self

    def named_models(self) -> dict[str, Path]:
        """{name: folder}: NAME=FOLDER, or the folder's own name."""
        out: dict[str, Path] = {}
        for spec in self.models:
            name, sep, folder = spec.partition("=")
            if not sep or Path(spec).is_dir():
                name, folder = Path(spec).resolve().name, spec
            if not name or "/" in name:
                raise SeqlabError(f"{spec}: a model name may not be empty or hold '/'")
            if name in out:
                raise SeqlabError(f"two models are named {name!r}: name them apart with NAME=FOLDER")
            out[name] = Path(folder)
        return out

    def load(self, folder: Path):
        """One bundle, run by torch (seqlab.load) or by onnxruntime (seqlab.onnx.load)."""
        if self.runtime == "onnx":
            from seqlab.onnx import load

            return load(folder)
        from seqlab import load

        return load(folder)

    def check_folder(self, folder: Path) -> None:
        """A one-line error before the server starts when `folder` holds nothing to serve."""
        if self.runtime == "onnx":
            from seqlab.onnx import find_export

            find_export(folder)
        elif not (folder / "config.json").is_file():
            raise SeqlabError(f"{folder}: not a seqlab bundle (no config.json)")

    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        data = json.loads(text)
        data["limits"] = Limits(**data.get("limits", {}))
        return cls(**data)
