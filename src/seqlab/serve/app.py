"""The HTTP API over served bundles (FastAPI): health, models, predict, generate, translate,
inspect, metrics, and the live lecture page (static files) at /. Routes dispatch on the verbs each task declares, never on task or family names;
the answers are what `seqlab predict/generate/translate --json` prints for the same input.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.staticfiles import StaticFiles

from seqlab.errors import SeqlabError
from seqlab.serve.batching import MicroBatcher, QueueFull
from seqlab.serve.guard import ApiError, Guard, error_response
from seqlab.serve.metrics import Metrics
from seqlab.serve.schemas import (
    AttributeRequest,
    GenerateRequest,
    InspectRequest,
    PredictRequest,
    TranslateRequest,
)
from seqlab.serve.settings import ServeSettings

if TYPE_CHECKING:
    from seqlab.introspect import InspectLimits

STATIC = Path(__file__).resolve().parent / "static"  # the live lecture page: plain HTML/JS/CSS
log = logging.getLogger("uvicorn.error")  # configured by uvicorn: start-up lines reach the terminal
_END = object()


class Model:
    """One served bundle: its own inference thread and micro-batchers (one per verb and settings)."""

    def __init__(self, name: str, folder: Path):
        self.name = name
        self.folder = folder
        self.bundle = None
        self.description: dict[str, Any] = {}
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"seqlab-{name}")
        self.batchers: dict[tuple, MicroBatcher] = {}


class Server:
    """What the routes share: settings, the models, metrics, readiness."""

    def __init__(self, settings: ServeSettings, exit_on_load_error: bool = False):
        self.settings = settings
        self.limits = settings.limits
        self.models = {name: Model(name, folder) for name, folder in settings.named_models().items()}
        self.metrics = Metrics(self.queue_depths)
        self.ready = False
        self.load_error: str | None = None
        self.exit_on_load_error = exit_on_load_error
        self.started = time.perf_counter()
        self.generators = ThreadPoolExecutor(8, thread_name_prefix="seqlab-generate")

    def queue_depths(self) -> dict[str, int]:
        return {m.name: sum(b.depth for b in m.batchers.values()) for m in self.models.values()}

    def load_all(self) -> None:
        """Load every bundle exactly as seqlab.load (or, --runtime onnx, seqlab.onnx.load) does,
        in a thread, after the socket is up."""
        try:
            for model in self.models.values():
                model.bundle = self.settings.load(model.folder)
                model.description = model.bundle.describe()
        except SeqlabError as exc:
            self.load_error = str(exc)
            log.error("seqlab: error: %s", exc)
            if self.exit_on_load_error:
                os.kill(os.getpid(), signal.SIGTERM)
            return
        self.ready = True
        self.metrics.ready = 1
        self.metrics.startup_s = time.perf_counter() - self.started
        log.info("ready: %d models loaded in %.2f s", len(self.models), self.metrics.startup_s)

    async def close(self) -> None:
        for model in self.models.values():
            for batcher in model.batchers.values():
                await batcher.close()
            model.executor.shutdown(wait=False, cancel_futures=True)
        self.generators.shutdown(wait=False, cancel_futures=True)

    # -- helpers of the routes ---------------------------------------------------------------
    def model(self, name: str, verb: str | None) -> Model:
        if name not in self.models:
            raise ApiError(404, f"no model named {name!r}; served: {', '.join(self.models)}")
        if not self.ready:
            raise ApiError(503, self.load_error or "the models are still loading", "not_ready",
                           {"Retry-After": "1"})
        model = self.models[name]
        if verb is not None and not model.bundle.supports(verb):
            raise ApiError(404, f"model {name!r} cannot {verb}; it can: {', '.join(sorted(model.bundle.task.verbs))}",
                           "unsupported")
        return model

    def texts(self, body: PredictRequest) -> tuple[list[str], bool]:
        """The request's texts, checked against the limits; and whether it gave one `text`."""
        if (body.text is None) == (body.texts is None):
            raise ApiError(422, "give either \"text\" (one string) or \"texts\" (a list of strings)")
        texts = [body.text] if body.text is not None else body.texts
        if not texts:
            raise ApiError(422, "\"texts\" is empty")
        if len(texts) > self.limits.max_texts:
            raise ApiError(422, f"{len(texts)} texts is over the limit of {self.limits.max_texts} per request",
                           "too_many_texts")
        for i, text in enumerate(texts, 1):
            self.check_chars(text, f"text {i}")
            if not text.strip():
                raise ApiError(422, f"input {i} is empty: give some text")
        return texts, body.text is not None

    def check_chars(self, text: str, what: str) -> None:
        if len(text) > self.limits.max_text_chars:
            raise ApiError(422, f"{what} has {len(text)} characters, over the limit of {self.limits.max_text_chars}",
                           "too_long")

    def inspect_bounds(self, text: str, max_tokens: int | None, max_units: int | None = None) -> InspectLimits:
        """The live page's text checked, and the inspect limits a request asks for within the server's."""
        from seqlab.introspect import InspectLimits  # torch: only once a model is inspected

        self.check_chars(text, "the text")
        if not text.strip():
            raise ApiError(422, "the text is empty: give some text")
        self.check_range(max_tokens, "max_tokens", 1, self.limits.max_inspect_tokens)
        self.check_range(max_units, "max_units", 1, self.limits.max_inspect_units)
        return InspectLimits(max_tokens or self.limits.max_inspect_tokens, max_units or self.limits.max_inspect_units)

    def check_range(self, value: int | None, name: str, low: int, high: int) -> None:
        if value is not None and not low <= value <= high:
            raise ApiError(422, f"{name} must be from {low} to {high} (got {value})",
                           "over_limit" if value > high else "invalid_input")

    async def within(self, awaitable, timeout: float | None = None):
        try:
            return await asyncio.wait_for(awaitable, timeout or self.settings.timeout)
        except asyncio.TimeoutError:
            raise ApiError(504, f"no answer within --timeout {self.settings.timeout:g} s") from None
        except QueueFull as exc:
            raise ApiError(503, f"the model's queue is full ({exc}); retry shortly", "queue_full",
                           {"Retry-After": "1"}) from None
        except SeqlabError as exc:
            raise ApiError(422, str(exc)) from None

    async def batched(self, model: Model, key: tuple, run, items: list) -> list:
        batcher = model.batchers.get(key)
        if batcher is None:
            s = self.settings
            batcher = model.batchers[key] = MicroBatcher(
                run, model.executor, max_batch_size=s.max_batch_size, max_wait_s=s.max_wait_ms / 1000,
                max_queue=s.max_queue, on_batch=partial(self.metrics.batch, model.name))
        return await self.within(batcher.submit(items))


def create_app(settings: ServeSettings, exit_on_load_error: bool = False) -> FastAPI:
    from seqlab import __version__

    server = Server(settings.check(), exit_on_load_error)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = asyncio.get_running_loop().run_in_executor(None, server.load_all)
        yield
        await asyncio.gather(loading, return_exceptions=True)
        await server.close()

    app = FastAPI(title="seqlab", version=__version__, lifespan=lifespan,
                  description="Predict, generate and translate with seqlab bundles. Errors are "
                              "`{\"error\": {\"code\", \"message\"}}`; limits are listed in `/v1/models`.")
    app.state.server = server
    _handlers(app)
    _routes(app, server)
    app.add_middleware(Guard, metrics=server.metrics, models=set(server.models), token=settings.token,
                       max_body=settings.max_body_kb * 1024)
    return app


def create_app_from_env() -> FastAPI:
    """The app factory of each uvicorn worker process (--workers): settings from the environment."""
    from seqlab.serve.settings import ENV_SETTINGS

    return create_app(ServeSettings.from_json(os.environ[ENV_SETTINGS]), exit_on_load_error=True)


def _handlers(app: FastAPI) -> None:
    def answer(request: Request, status: int, message: str, code: str | None = None, headers=None) -> JSONResponse:
        response = error_response(status, message, code, headers)
        request.state.error_code = response_code(response)
        return response

    def response_code(response: JSONResponse) -> str:
        import json

        return json.loads(response.body)["error"]["code"]

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if isinstance(exc, ApiError):
            return answer(request, exc.status, exc.message, exc.code, exc.headers)
        return answer(request, exc.status_code, str(exc.detail), None, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return answer(request, 400, "the body is not valid JSON", "malformed_json")
        shown = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
                          for e in errors[:3])
        return answer(request, 422, shown)

    @app.exception_handler(SeqlabError)
    async def user_error(request: Request, exc: SeqlabError):
        return answer(request, 422, str(exc))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        log.exception("internal error")
        return answer(request, 500, f"internal error: {type(exc).__name__}")


def _routes(app: FastAPI, server: Server) -> None:
    limits = server.limits

    @app.get("/", include_in_schema=False)
    async def page():
        """The live lecture page (static; it reads /v1/models and .../inspect)."""
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health/live", tags=["health"])
    async def live():
        return {"status": "live"}

    @app.get("/health/ready", tags=["health"])
    async def ready():
        if not server.ready:
            raise ApiError(503, server.load_error or "the models are still loading", "not_ready", {"Retry-After": "1"})
        return {"status": "ready", "models": list(server.models)}

    @app.get("/v1/models", tags=["models"])
    async def models():
        if not server.ready:
            raise ApiError(503, server.load_error or "the models are still loading", "not_ready", {"Retry-After": "1"})
        extra = {"limits": {**asdict(limits), "max_batch_size": server.settings.max_batch_size}}
        return {"models": [{"name": m.name, **m.description, **extra} for m in server.models.values()]}

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def metrics():
        return PlainTextResponse(server.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/models/{name}/predict", tags=["models"])
    async def predict(name: str, body: PredictRequest):
        """One output per text (classify: label + probabilities; tag: tokens + tags), micro-batched."""
        model = server.model(name, "predict")
        texts, single = server.texts(body)
        outputs = await server.batched(model, ("predict",), model.bundle.predict, texts)
        items = [{"text": t, **o} for t, o in zip(texts, outputs)]
        return JSONResponse(items[0] if single else items)

    @app.post("/v1/models/{name}/translate", tags=["models"])
    async def translate(name: str, body: TranslateRequest):
        """Translations (beam search), micro-batched; `n_best` > 1 adds the ranked hypotheses."""
        model = server.model(name, "translate")
        texts, single = server.texts(body)
        server.check_range(body.beam, "beam", 1, limits.max_beam)
        server.check_range(body.n_best, "n_best", 1, limits.max_beam)
        bundle, beam, n = model.bundle, body.beam, body.n_best
        if n == 1:
            run = partial(bundle.translate, beam=beam, warn=log.warning)
            outputs = await server.batched(model, ("translate", beam), run, texts)
            items = [{"source": s, "translation": t} for s, t in zip(texts, outputs)]
        else:
            run = partial(bundle.translate_nbest, beam=beam, n=n, warn=log.warning)
            outputs = await server.batched(model, ("translate", beam, n), run, texts)
            items = [{"source": s, "translation": h[0]["translation"], "n_best": h} for s, h in zip(texts, outputs)]
        return JSONResponse(items[0] if single else items)

    @app.post("/v1/models/{name}/inspect", tags=["models"])
    async def inspect(name: str, body: InspectRequest):
        """One text read step by step (the live page's data): tokens, every layer's per-step
        states, and the task's per-step outputs; bounded by the inspect limits."""
        from seqlab.introspect import inspect

        model = server.model(name, "trace")
        bounds = server.inspect_bounds(body.text, body.max_tokens, body.max_units)
        run = partial(inspect, model.bundle, body.text, bounds, attribution=body.attribution)
        doc = await server.within(asyncio.get_running_loop().run_in_executor(model.executor, run))
        return JSONResponse({"model": name, **doc})

    @app.post("/v1/models/{name}/attribute", tags=["models"])
    async def attribute(name: str, body: AttributeRequest):
        """Each token's share of a classifier's verdict on one text (the page's "Why" view)."""
        from seqlab.introspect import attribute

        model = server.model(name, "attribute")
        run = partial(attribute, model.bundle, body.text, server.inspect_bounds(body.text, body.max_tokens))
        doc = await server.within(asyncio.get_running_loop().run_in_executor(model.executor, run))
        return JSONResponse({"model": name, **doc})

    @app.post("/v1/models/{name}/generate", tags=["models"])
    async def generate(name: str, body: GenerateRequest, request: Request):
        """lm: continue `prime` (`stream`: text/plain as it is written); generate: `n` texts for `condition`."""
        model = server.model(name, None)
        server.check_chars(body.prime, "the prime")
        server.check_range(body.length, "length", 0, limits.max_generate_tokens)
        bundle = model.bundle
        if bundle.supports("sample"):
            server.check_range(body.n, "n", 1, limits.max_samples)
            run = partial(bundle.sample, body.condition, body.n, body.temperature, body.top_k, body.seed,
                          prime=body.prime, max_length=body.length, guidance=body.guidance)
            loop = asyncio.get_running_loop()
            texts = await server.within(loop.run_in_executor(model.executor, run))
            return JSONResponse({"condition": body.condition, "texts": texts, "seed": body.seed})
        if not bundle.supports("generate"):
            raise ApiError(404, f"model {name!r} cannot generate; it can: {', '.join(sorted(bundle.task.verbs))}",
                           "unsupported")
        if body.condition:
            raise ApiError(422, f"model {name!r} has no conditions; \"condition\" is for conditional generators")
        return await _generate_lm(server, model, body, request)


async def _generate_lm(server: Server, model: Model, body: GenerateRequest, request: Request) -> Response:
    """Run the lm's sampler in a thread that hands each piece to the event loop; stop it when
    the client goes away, the answer is past --timeout, or the stream is closed."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    warnings: list[str] = []
    length = 500 if body.length is None else body.length
    deadline = loop.time() + server.settings.timeout

    def put(item) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def produce() -> None:
        try:
            pieces = model.bundle.generate_stream(body.prime, length, body.temperature, body.top_k, body.seed,
                                                  warn=warnings.append)
            put(None)  # the settings were accepted: the answer starts
            for piece in pieces:
                if stop.is_set():
                    return
                put(piece)
        except Exception as exc:  # noqa: BLE001 - handed to the route
            put(exc)
        finally:
            put(_END)

    server.generators.submit(produce)
    state = {"done": False}

    async def next_piece():
        item = await asyncio.wait_for(queue.get(), max(deadline - loop.time(), 0.0))
        if isinstance(item, Exception):
            raise item
        if item is _END:
            state["done"] = True
        elif item is not None:
            server.metrics.generated[model.name] += 1
        return item

    def finish() -> None:  # once, however the answer ends
        if not state["done"]:
            state["done"] = True
            stop.set()
            server.metrics.stopped[model.name] += 1

    await server.within(next_piece())  # the start signal, or the settings' error (422)
    headers = {"X-Seqlab-Warning": ascii(warnings[0])[:500]} if warnings else {}
    if body.stream:
        async def chunks():
            try:
                yield body.prime
                while (piece := await next_piece()) is not _END:
                    yield piece
            except (asyncio.TimeoutError, Exception):  # past --timeout or a failure: the stream ends early
                return
            finally:
                finish()

        return _Stream(chunks(), finish, media_type="text/plain; charset=utf-8", headers=headers)

    async def collect() -> str:
        parts = []
        while (piece := await next_piece()) is not _END:
            parts.append(piece)
        return "".join(parts)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    work, watch = asyncio.ensure_future(collect()), asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():  # the client went away: nobody to answer
            return Response(status_code=499)
        text = await server.within(work)
    finally:
        watch.cancel()
        work.cancel()
        finish()
    return JSONResponse({"prime": body.prime, "text": text, "seed": body.seed}, headers=headers)


class _Stream(StreamingResponse):
    """A streamed answer that stops its generator however the response ends (client gone)."""

    def __init__(self, content, on_close, **kwargs):
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()
