"""`seqlab serve`: an HTTP API over trained bundles (FastAPI + uvicorn, the `serve` extra).

    GET  /health/live /health/ready     liveness; readiness (503 until every model is loaded)
    GET  /v1/models                     name, task, family, labels, verbs, metrics, limits
    POST /v1/models/{name}/predict      {"text": ...} or {"texts": [...]}, micro-batched
    POST /v1/models/{name}/generate     lm: prime, length, temperature, top_k, seed, stream;
                                        generate: condition, n, ...
    POST /v1/models/{name}/translate    {"texts": [...], "beam": 5, "n_best": 3}, micro-batched
    POST /v1/models/{name}/inspect      {"text": ...}: tokens, every layer's per-step states and the
                                        task's per-step outputs (seqlab.introspect), bounded
    GET  /                              the live lecture page (static HTML/JS/CSS in serve/static)
    GET  /metrics                       Prometheus text;  /docs: the OpenAPI page

This module imports nothing of the web stack, so the CLI can describe the verb without it.
"""

from __future__ import annotations

import argparse
import os
import sys

from seqlab.errors import SeqlabError
from seqlab.serve.settings import ENV_SETTINGS, RUNTIMES, Limits, ServeSettings

EXAMPLE = ("seqlab serve runs/imdb-gru runs/shakespeare --port 8000\n"
           "         curl -s localhost:8000/v1/models/imdb-gru/predict -d '{\"text\": \"a moving film\"}'")


def require_extra() -> None:
    """A one-line error naming the extra when the web stack is missing."""
    missing = []
    for module in ("fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise SeqlabError(f"seqlab serve needs {' and '.join(missing)}: pip install 'seqlab[serve]'")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `seqlab serve` flags (the CLI adds the verb; defaults are ServeSettings')."""
    d, lim = ServeSettings(models=[]), Limits()
    p.add_argument("models", nargs="+", metavar="DIR", help="bundle folders to serve (NAME=DIR names one)")
    p.add_argument("--host", default=d.host, help=f"address to bind (default {d.host}; any other needs --token)")
    p.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port}; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=d.workers, help="server processes, each with every model (default 1)")
    p.add_argument("--max-batch-size", type=int, default=d.max_batch_size,
                   help=f"texts run through a model at once (default {d.max_batch_size})")
    p.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms,
                   help=f"how long a request may wait for others to batch with (default {d.max_wait_ms:g})")
    p.add_argument("--max-queue", type=int, default=d.max_queue,
                   help=f"requests waiting per model before new ones get 503 (default {d.max_queue})")
    p.add_argument("--timeout", type=float, default=d.timeout, help=f"seconds per request before 504 (default {d.timeout:g})")
    p.add_argument("--max-body-kb", type=int, default=d.max_body_kb, help=f"largest request body (default {d.max_body_kb})")
    p.add_argument("--max-texts", type=int, default=lim.max_texts, help=f"texts per request (default {lim.max_texts})")
    p.add_argument("--max-text-chars", type=int, default=lim.max_text_chars,
                   help=f"characters per text or prime (default {lim.max_text_chars})")
    p.add_argument("--max-generate-tokens", type=int, default=lim.max_generate_tokens,
                   help=f"tokens one generation may write (default {lim.max_generate_tokens})")
    p.add_argument("--max-inspect-tokens", type=int, default=lim.max_inspect_tokens,
                   help=f"tokens one /inspect document reads (default {lim.max_inspect_tokens})")
    p.add_argument("--max-inspect-units", type=int, default=lim.max_inspect_units,
                   help=f"units per layer one /inspect document shows (default {lim.max_inspect_units})")
    p.add_argument("--token", default=os.environ.get("SEQLAB_TOKEN"),
                   help="require 'Authorization: Bearer TOKEN' on every endpoint but health (default $SEQLAB_TOKEN)")
    p.add_argument("--runtime", choices=RUNTIMES, default=d.runtime,
                   help="onnx: serve each bundle's export (seqlab export DIR --format onnx) with onnxruntime, "
                        "without torch")


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    limits = Limits(max_texts=args.max_texts, max_text_chars=args.max_text_chars,
                    max_generate_tokens=args.max_generate_tokens, max_inspect_tokens=args.max_inspect_tokens,
                    max_inspect_units=args.max_inspect_units)
    return ServeSettings(models=list(args.models), host=args.host, port=args.port, workers=args.workers,
                         max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                         timeout=args.timeout, max_body_kb=args.max_body_kb, token=args.token or None,
                         limits=limits, runtime=args.runtime)


def serve(settings: ServeSettings, log_level: str = "info") -> None:
    """Run the server until interrupted. Bundle folders are checked first (one-line errors);
    the models load in the background once the socket is up (/health/ready says when)."""
    require_extra()
    settings.check()
    for folder in settings.named_models().values():
        settings.check_folder(folder)
    if not settings.loopback() and not settings.token:
        print(f"seqlab: warning: serving on {settings.host} without --token: anyone who can reach this "
              "address can use the models", file=sys.stderr, flush=True)
    import uvicorn

    if settings.workers > 1:
        os.environ[ENV_SETTINGS] = settings.to_json()
        # two cores and four workers: each gets its share of the cores, not all of them
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // settings.workers)))
        uvicorn.run("seqlab.serve.app:create_app_from_env", factory=True, host=settings.host, port=settings.port,
                    workers=settings.workers, log_level=log_level, access_log=False)
        return
    from seqlab.serve.app import create_app

    app = create_app(settings, exit_on_load_error=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level, access_log=False)
    if app.state.server.load_error:
        raise SeqlabError(app.state.server.load_error)


__all__ = ["Limits", "ServeSettings", "add_arguments", "serve", "settings_from_args"]
