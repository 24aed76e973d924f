"""Errors as JSON, and the one ASGI middleware in front of every request: it times and
counts each answer for /metrics, checks the bearer token, and refuses bodies over the limit
(before they are read: by Content-Length, or while a chunked body streams in)."""

from __future__ import annotations

import hmac
import time

from fastapi import HTTPException
from starlette.responses import JSONResponse

from seqlab.serve.metrics import Metrics

CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
         413: "body_too_large", 422: "invalid_input", 500: "internal", 503: "unavailable", 504: "timeout"}


class ApiError(HTTPException):
    """Answered as {"error": {"code", "message"}} with `status` (and `headers`). An
    HTTPException, so that FastAPI passes it on when it is raised while reading the body."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(status, message, headers)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, code: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code or CODES.get(status, "error"), "message": message}},
                        status_code=status, headers=headers)


def _endpoint(path: str, models: set[str]) -> tuple[str, str]:
    """(route template, model name) with bounded label values."""
    parts = path.strip("/").split("/")
    if len(parts) == 4 and parts[:2] == ["v1", "models"]:
        return f"/v1/models/{{name}}/{parts[3]}", parts[2] if parts[2] in models else ""
    if path in ("/", "/health/live", "/health/ready", "/v1/models", "/metrics", "/docs", "/openapi.json"):
        return path, ""
    if path.startswith("/static/"):
        return "/static", ""
    return "other", ""


def _open_path(path: str) -> bool:
    return path == "/" or path.startswith(("/health/", "/static/"))


class Guard:
    def __init__(self, app, *, metrics: Metrics, models: set[str], token: str | None, max_body: int):
        self.app = app
        self.metrics = metrics
        self.models = models
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}
        metrics = self.metrics

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                endpoint, model = _endpoint(scope["path"], self.models)
                metrics.request(scope["method"], endpoint, model, status["code"], time.perf_counter() - start)
                if status["code"] >= 400:  # the app's handlers leave the error code in the scope's state
                    code = scope.get("state", {}).get("error_code") or CODES.get(status["code"], "error")
                    metrics.error(code, status["code"])

        refusal = self._refuse(scope)
        if refusal is not None:
            await error_response(*refusal)(scope, receive, send_counted)
            return
        if scope["method"] == "POST":  # every body is JSON, whatever its Content-Type (curl -d says form)
            scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k != b"content-type"]
                         + [(b"content-type", b"application/json")])
        received = 0

        async def receive_limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise ApiError(413, f"the request body is over the limit of {self.max_body // 1024} KB")
            return message

        await self.app(scope, receive_limited, send_counted)

    def _refuse(self, scope):
        # health and the page's static files hold no model data; the page asks for the token
        if self.token is not None and not _open_path(scope["path"]):
            given = ""
            for key, value in scope["headers"]:
                if key == b"authorization":
                    given = value.decode("latin-1")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return (401, "give the server's token as 'Authorization: Bearer TOKEN'", None,
                        {"WWW-Authenticate": "Bearer"})
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return (400, "Content-Length is not a number")
                if length > self.max_body:
                    return (413, f"the request body ({length // 1024} KB) is over the limit of "
                                 f"{self.max_body // 1024} KB")
        return None
