"""`seqlab serve`: every endpoint per task kind, answers equal to the CLI's --json, micro-
batching, each error code, token auth, streaming, and a real uvicorn process that stops a
generation when its client leaves and never imports Lightning."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'seqlab[serve]'")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from helpers import run_cli  # noqa: E402
from seqlab.cli import main  # noqa: E402
from seqlab.errors import SeqlabError  # noqa: E402
from seqlab.serve import Limits, ServeSettings, require_extra, serve  # noqa: E402
from seqlab.serve.app import create_app  # noqa: E402
from seqlab.serve.metrics import parse_histogram  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _train(out: Path, *argv: str) -> Path:
    assert main(["train", *argv, "--epochs", "1", "--seed", "0", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, shared_data) -> dict[str, Path]:
    """One tiny bundle per task kind (about 25 s on 2 cores)."""
    from seqlab.data.datasets import load_dataset

    root = tmp_path_factory.mktemp("serve")
    data = ["--data-dir", str(shared_data)]
    small = ["--embed-dim", "16", "--hidden-dim", "32"]
    with gzip.open(shared_data / "ud_english_ewt" / "en_ewt-ud-train.conllu.gz", "rt", encoding="utf-8") as f:
        text = f.read().split("\n\n")
    (root / "tag.conllu").write_text("\n\n".join(text[:300]) + "\n\n", encoding="utf-8")
    (root / "lm.txt").write_text((shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:20_000],
                                 encoding="utf-8")
    pairs = load_dataset("multi30k", shared_data)["train"][:300]
    for side, lang in (("source", "de"), ("target", "en")):
        (root / f"m30k.{lang}").write_text("".join(p[side] + "\n" for p in pairs), encoding="utf-8")
    return {
        "names": _train(root / "names", "--task", "classify", "--data", "names", *data, "--family", "gru",
                        "--limit", "600", *small),
        "tagger": _train(root / "tagger", "--task", "tag", "--data", str(root / "tag.conllu"), "--family", "gru",
                         *small, "--no-char-features"),
        "shakespeare": _train(root / "shakespeare", "--task", "lm", "--data", str(root / "lm.txt"), "--family",
                              "lstm", *small, "--seq-len", "32", "--batch-size", "16"),
        "names-gen": _train(root / "names-gen", "--task", "generate", "--data", "names", *data, "--family", "gru",
                            "--limit", "600", *small),
        "de-en": _train(root / "de-en", "--task", "translate", "--source", str(root / "m30k.de"), "--target",
                        str(root / "m30k.en"), "--family", "gru", *small, "--max-vocab", "300", "--beam", "2"),
    }


def _settings(bundles, **kw) -> ServeSettings:
    return ServeSettings(models=[f"{k}={v}" for k, v in bundles.items()], **kw)


def _ready(client) -> None:
    for _ in range(400):
        if client.get("/health/ready").status_code == 200:
            return
        time.sleep(0.025)
    raise AssertionError(client.get("/health/ready").json())


@pytest.fixture(scope="module")
def client(bundles):
    with TestClient(create_app(_settings(bundles))) as c:
        _ready(c)
        yield c


def _error(response, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    err = response.json()["error"]
    assert set(err) == {"code", "message"} and err["message"]
    if code:
        assert err["code"] == code
    return err["message"]


def _cli_json(capsys, *argv) -> object:
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


# -- endpoints -----------------------------------------------------------------------------
def test_health_models_and_docs(client, bundles):
    assert client.get("/health/live").json() == {"status": "live"}
    assert client.get("/health/ready").json()["models"] == list(bundles)
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == set(bundles)
    assert models["names"]["task"] == "classify" and "Russian" in models["names"]["labels"]
    assert "accuracy" in models["names"]["metrics"] and models["names"]["seqlab_version"]
    assert models["de-en"]["verbs"] == ["predict", "trace", "translate"]
    assert "Russian" in models["names-gen"]["conditions"]
    assert models["names"]["limits"]["max_texts"] == Limits().max_texts
    assert models["names"]["limits"]["max_inspect_tokens"] == Limits().max_inspect_tokens
    assert client.get("/docs").status_code == 200
    assert "/v1/models/{name}/translate" in client.get("/openapi.json").json()["paths"]


def test_predict_equals_the_cli(client, bundles, capsys):
    for name, texts in (("names", ["Nakamura", "O'Neill"]), ("tagger", ["The dog ran home .", "I saw her"])):
        assert client.post(f"/v1/models/{name}/predict", json={"text": texts[0]}).json() == \
            _cli_json(capsys, "predict", str(bundles[name]), texts[0])
        assert client.post(f"/v1/models/{name}/predict", json={"texts": texts}).json() == \
            _cli_json(capsys, "predict", str(bundles[name]), *texts)


def test_translate_equals_the_cli_and_ranks_n_best(client, bundles, capsys):
    texts = ["Ein Hund rennt.", "Zwei Männer spielen Fußball."]
    got = client.post("/v1/models/de-en/translate", json={"texts": texts, "beam": 3}).json()
    assert got == _cli_json(capsys, "translate", str(bundles["de-en"]), *texts, "--beam", "3")
    best = client.post("/v1/models/de-en/translate", json={"text": texts[1], "beam": 3, "n_best": 3}).json()
    assert best["translation"] == got[1]["translation"] == best["n_best"][0]["translation"]
    scores = [h["score"] for h in best["n_best"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_generate_equals_the_cli_and_streams(client, bundles, capsys):
    args = {"prime": "ROMEO:", "length": 60, "temperature": 0.8, "top_k": 5, "seed": 3}
    got = client.post("/v1/models/shakespeare/generate", json=args).json()
    assert got == _cli_json(capsys, "generate", str(bundles["shakespeare"]), "--prime", "ROMEO:", "--length", "60",
                            "--temperature", "0.8", "--top-k", "5", "--seed", "3")
    with client.stream("POST", "/v1/models/shakespeare/generate", json={**args, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        chunks = list(r.iter_text())
    assert "".join(chunks) == "ROMEO:" + got["text"] and len(chunks) > 1
    sample = {"condition": "Russian", "n": 4, "seed": 1, "temperature": 0.8}
    assert client.post("/v1/models/names-gen/generate", json=sample).json() == \
        _cli_json(capsys, "generate", str(bundles["names-gen"]), "--condition", "Russian", "-n", "4",
                  "--seed", "1", "--temperature", "0.8")


# -- micro-batching ------------------------------------------------------------------------
async def _concurrently(app, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            while (await c.get("/health/ready")).status_code != 200:
                await asyncio.sleep(0.02)
            answers = await asyncio.gather(*(c.post(url, json=body) for url, body in requests))
            answers.append(await c.get("/metrics"))
            return answers


def test_inspect_reads_one_text_step_by_step_for_every_task(client):
    doc = client.post("/v1/models/names/inspect", json={"text": "Nakamura"}).json()
    n = len(doc["tokens"])
    assert doc["model"] == "names" and doc["task"] == "classify" and n == len("nakamura")
    assert [layer["name"] for layer in doc["layers"]][-2:] == ["layer 1 forward", "layer 1 backward"]
    assert all(len(layer["values"]) == n for layer in doc["layers"])
    out = doc["outputs"]
    assert len(out["steps"]["values"]) == n and len(out["attribution"]["values"]) == n
    predicted = client.post("/v1/models/names/predict", json={"text": "Nakamura"}).json()
    assert out["prediction"]["label"] == predicted["label"]
    small = client.post("/v1/models/names/inspect", json={"text": "Nakamura", "max_tokens": 3, "max_units": 2}).json()
    assert small["truncated"] and len(small["tokens"]) == 3 and len(small["layers"][0]["values"][0]) == 2
    tags = client.post("/v1/models/tagger/inspect", json={"text": "The dog ran home ."}).json()["outputs"]
    assert len(tags["tags"]) == 5 and all(0 < c <= 1 for c in tags["confidence"])
    lm = client.post("/v1/models/shakespeare/inspect", json={"text": "To be"}).json()["outputs"]
    assert len(lm["next"]) == 5 and all(len(top) == 5 for top in lm["next"])
    mt = client.post("/v1/models/de-en/inspect", json={"text": "Ein Hund rennt."}).json()["outputs"]
    assert mt["n_best"][0]["translation"] == mt["translation"] and mt["attention"]["weights"]
    _error(client.post("/v1/models/names/inspect", json={"text": " "}), 422)
    _error(client.post("/v1/models/names/inspect", json={}), 422)
    _error(client.post("/v1/models/names/inspect", json={"text": "x", "max_units": 10**6}), 422, "over_limit")
    _error(client.post("/v1/models/names-gen/inspect", json={"text": "x"}), 404, "unsupported")


def test_the_page_asks_for_attributions_after_the_rest(client):
    """inspect with "attribution": false leaves them out; .../attribute gives the same ones."""
    text = "Nakamura"
    whole = client.post("/v1/models/names/inspect", json={"text": text}).json()
    first = client.post("/v1/models/names/inspect", json={"text": text, "attribution": False}).json()
    assert "attribution" not in first["outputs"] and first["outputs"]["steps"] == whole["outputs"]["steps"]
    later = client.post("/v1/models/names/attribute", json={"text": text}).json()
    assert later["model"] == "names" and later["tokens"] == whole["tokens"]
    assert later["attribution"] == whole["outputs"]["attribution"]
    cut = client.post("/v1/models/names/attribute", json={"text": text, "max_tokens": 3}).json()
    assert cut["truncated"] and len(cut["attribution"]["values"]) == 3
    _error(client.post("/v1/models/names/attribute", json={"text": " "}), 422)
    _error(client.post("/v1/models/names/attribute", json={"text": text, "max_tokens": 10**6}), 422, "over_limit")
    _error(client.post("/v1/models/tagger/attribute", json={"text": "The dog ran ."}), 404, "unsupported")


def test_inspect_limits_are_flags():
    import argparse

    from seqlab.serve import add_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = settings_from_args(parser.parse_args(["x", "--max-inspect-tokens", "9", "--max-inspect-units", "3"]))
    assert (settings.limits.max_inspect_tokens, settings.limits.max_inspect_units) == (9, 3)
    with pytest.raises(SeqlabError, match="--max-inspect-units must be at least 1"):
        settings_from_args(parser.parse_args(["x", "--max-inspect-units", "0"])).check()


def test_the_page_and_its_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for src in ("/static/api.js", "/static/views.js", "/static/page.js", "/static/page.css"):
        assert src in page.text
        assert client.get(src).status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text


def test_concurrent_requests_are_micro_batched(bundles, client):
    names = ["Nakamura", "Smith", "Ivanov", "Rossi", "Müller", "Kowalski", "Nguyen", "Dubois"] * 2
    app = create_app(_settings(bundles, max_batch_size=4, max_wait_ms=200))
    *answers, metrics = asyncio.run(_concurrently(app, [("/v1/models/names/predict", {"text": n}) for n in names]))
    alone = [client.post("/v1/models/names/predict", json={"text": n}).json() for n in names]
    assert [a.json()["label"] for a in answers] == [a["label"] for a in alone]
    hist = parse_histogram(metrics.text, "seqlab_batch_size", 'model="names"')
    assert hist["+Inf"] == 4 and hist["2"] == 0 and hist["4"] == 4, hist  # 16 requests in 4 full batches


# -- limits and errors ---------------------------------------------------------------------
def test_every_error_is_json_with_its_status(client):
    _error(client.post("/v1/models/names/predict", content=b'{"text": '), 400, "malformed_json")
    _error(client.post("/v1/models/nope/predict", json={"text": "x"}), 404, "not_found")
    _error(client.post("/v1/models/names/translate", json={"text": "x"}), 404, "unsupported")
    _error(client.post("/v1/models/names/generate", json={}), 404, "unsupported")
    _error(client.get("/no/such/page"), 404, "not_found")
    big = json.dumps({"text": "a" * (1100 * 1024)}).encode()
    _error(client.post("/v1/models/names/predict", content=big), 413, "body_too_large")
    _error(client.post("/v1/models/names/predict", json={"texts": ["a"] * 257}), 422, "too_many_texts")
    _error(client.post("/v1/models/names/predict", json={"text": "a" * 20_001}), 422, "too_long")
    _error(client.post("/v1/models/names/predict", json={"text": "  "}), 422)
    _error(client.post("/v1/models/names/predict", json={"texts": "not a list"}), 422)
    _error(client.post("/v1/models/shakespeare/generate", json={"temperature": 0}), 422)
    _error(client.post("/v1/models/shakespeare/generate", json={"length": 10**6}), 422, "over_limit")
    _error(client.post("/v1/models/de-en/translate", json={"text": "x", "beam": 99}), 422, "over_limit")
    metrics = client.get("/metrics").text
    for code in ("malformed_json", "body_too_large", "too_many_texts", "unsupported"):
        assert f'seqlab_errors_total{{code="{code}"' in metrics


def test_timeout_504_and_full_queue_503(bundles):
    app = create_app(_settings(bundles, timeout=0.05, max_wait_ms=1000))
    (late, metrics) = asyncio.run(_concurrently(app, [("/v1/models/names/predict", {"text": "Smith"})]))
    _error(late, 504, "timeout")
    app = create_app(_settings(bundles, max_queue=1, max_wait_ms=300))
    *answers, _ = asyncio.run(_concurrently(app, [("/v1/models/names/predict", {"text": "Smith"})] * 3))
    assert sorted(a.status_code for a in answers) == [200, 503, 503]
    full = next(a for a in answers if a.status_code == 503)
    _error(full, 503, "queue_full")
    assert full.headers["retry-after"] == "1"


def test_ready_is_503_until_every_model_is_loaded(bundles, monkeypatch):
    import seqlab

    release, load = threading.Event(), seqlab.load
    monkeypatch.setattr(seqlab, "load", lambda folder: (release.wait(10), load(folder))[1])
    with TestClient(create_app(_settings({"names": bundles["names"]}))) as c:
        assert c.get("/health/live").status_code == 200
        r = c.get("/health/ready")
        _error(r, 503, "not_ready")
        assert r.headers["retry-after"] == "1"
        _error(c.post("/v1/models/names/predict", json={"text": "x"}), 503, "not_ready")
        release.set()
        _ready(c)


def test_token_guards_everything_but_health(bundles):
    with TestClient(create_app(_settings({"names": bundles["names"]}, token="s3cret"))) as c:
        _ready(c)
        for path in ("/v1/models", "/metrics", "/docs"):
            assert c.get(path).status_code == 401
        assert c.get("/").status_code == 200 and c.get("/static/page.js").status_code == 200  # no model data
        assert c.post("/v1/models/names/inspect", json={"text": "x"}).status_code == 401
        r = c.post("/v1/models/names/predict", json={"text": "x"}, headers={"Authorization": "Bearer wrong"})
        _error(r, 401, "unauthorized")
        ok = {"Authorization": "Bearer s3cret"}
        assert c.post("/v1/models/names/predict", json={"text": "Smith"}, headers=ok).status_code == 200
        assert c.get("/v1/models", headers=ok).status_code == 200


def test_non_loopback_warns_and_missing_extra_names_it(bundles, monkeypatch, capsys):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    serve(_settings({"names": bundles["names"]}, host="0.0.0.0"))
    assert "without --token" in capsys.readouterr().err
    serve(_settings({"names": bundles["names"]}, host="0.0.0.0", token="t"))
    assert "warning" not in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(SeqlabError, match=r"pip install 'seqlab\[serve\]'"):
        require_extra()
    code, _, err = run_cli(capsys, "serve", str(bundles["names"]))
    assert code == 2 and "seqlab[serve]" in err and err.count("\n") == 1
    monkeypatch.delitem(sys.modules, "fastapi")
    code, _, err = run_cli(capsys, "serve", str(bundles["names"].parent / "missing"))
    assert code == 2 and "not a seqlab bundle" in err


# -- a real server process -----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_server_stops_a_generation_when_the_client_leaves(bundles):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "seqlab", "serve", *[f"{k}={v}" for k, v in bundles.items()],
                             "--port", str(port), "--max-generate-tokens", "1000000"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        start = time.perf_counter()
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{base}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.perf_counter() - start < 60
            time.sleep(0.1)
        with httpx.stream("POST", f"{base}/v1/models/shakespeare/generate", timeout=10,
                          json={"prime": "ROMEO:", "length": 1_000_000, "stream": True}) as r:
            assert r.status_code == 200
            next(r.iter_bytes())
        deadline = time.perf_counter() + 10
        while 'seqlab_generations_stopped_total{model="shakespeare"} 1' not in (m := httpx.get(f"{base}/metrics").text):
            assert time.perf_counter() < deadline, m
            time.sleep(0.1)
        written = [line for line in m.splitlines() if line.startswith("seqlab_generated_tokens_total")]
        time.sleep(0.3)
        assert written == [line for line in httpx.get(f"{base}/metrics").text.splitlines()
                           if line.startswith("seqlab_generated_tokens_total")]  # nothing more is written
        assert "seqlab_startup_seconds" in m
    finally:
        proc.terminate()
        proc.wait(10)


NO_LIGHTNING = """
import sys, json, time
from fastapi.testclient import TestClient
from seqlab.serve import ServeSettings
from seqlab.serve.app import create_app
with TestClient(create_app(ServeSettings(models=sys.argv[1:]))) as c:
    while c.get("/health/ready").status_code != 200:
        time.sleep(0.05)
    names = [m["name"] for m in c.get("/v1/models").json()["models"]]
    assert c.post(f"/v1/models/{names[0]}/predict", json={"text": "Smith"}).status_code == 200
    assert c.post(f"/v1/models/{names[1]}/generate", json={"length": 5}).status_code == 200
    assert c.post(f"/v1/models/{names[2]}/translate", json={"text": "Ein Hund."}).status_code == 200
print(json.dumps(sorted(m for m in sys.modules if "lightning" in m)))
"""


def test_the_server_never_imports_lightning(bundles):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", NO_LIGHTNING, str(bundles["names"]), str(bundles["shakespeare"]),
                          str(bundles["de-en"])], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
