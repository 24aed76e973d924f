"""Why `seqlab serve` is FastAPI + uvicorn + its own asyncio micro-batcher, not LitServe:
the same trivial batched "model" (the length of each text) behind both stacks, the same
one-sentence requests at concurrency 32 from bench/serve_load.py's client, on 127.0.0.1.
What differs is only the serving stack's per-request overhead: LitServe hands every
request to an inference worker process over a queue and back; seqlab's batcher stays in
the server's event loop and runs the batch in a thread.

LitServe is not a seqlab dependency: run this with a Python that has litserve installed
and seqlab's src/ on the path (it imports seqlab.serve.batching only, no torch):

    python -m venv /tmp/ls && /tmp/ls/bin/pip install litserve numpy
    PYTHONPATH=src /tmp/ls/bin/python bench/serve_stack.py
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from serve_load import _command, cpu_flags, free_port, load, rss_mb  # noqa: E402

LITSERVE = """
import sys, litserve as ls
class Lengths(ls.LitAPI):
    def setup(self, device): pass
    def decode_request(self, request): return request["text"]
    def predict(self, texts): return [len(t) for t in texts]
    def encode_response(self, n): return {"n": n}
if __name__ == "__main__":  # LitServe spawns its inference worker: the main-module guard is needed
    ls.LitServer(Lengths(max_batch_size=32, batch_timeout=0.005), accelerator="cpu", workers_per_device=1,
                 timeout=10).run(port=int(sys.argv[1]), generate_client_file=False)
"""

FASTAPI = """
import sys, asyncio, uvicorn
from concurrent.futures import ThreadPoolExecutor
from fastapi import FastAPI
from pydantic import BaseModel
from seqlab.serve.batching import MicroBatcher
class Body(BaseModel):
    text: str
app = FastAPI()
batcher = MicroBatcher(lambda texts: [len(t) for t in texts], ThreadPoolExecutor(1), max_batch_size=32,
                       max_wait_s=0.005)
@app.post("/predict")
async def predict(body: Body):
    return {"n": (await batcher.submit([body.text]))[0]}
@app.get("/health")
async def health():
    return {}
uvicorn.run(app, port=int(sys.argv[1]), log_level="warning")
"""


def measure(name: str, code: str, health: str, bodies: list[bytes]) -> dict:
    import tempfile
    import urllib.request

    port = free_port()
    script = Path(tempfile.mkdtemp()) / "server.py"
    script.write_text(code, encoding="utf-8")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.perf_counter() - t0 > 60:
                proc.kill()
                raise SystemExit(f"{name}: the server did not start") from None
            time.sleep(0.05)
    startup = time.perf_counter() - t0
    try:
        asyncio.run(load(port, "/predict", bodies, 300, 8, proc.pid))  # warm-up
        r = asyncio.run(load(port, "/predict", bodies, 3000, 32, proc.pid))
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        rss = rss_mb(proc.pid) + sum(rss_mb(int(c)) for c in children)
    finally:
        proc.terminate()
        proc.wait(30)
    out = {"stack": name, "requests_per_s": round(r["requests_per_s"], 1), "p50_ms": round(r["p50_ms"], 2),
           "p99_ms": round(r["p99_ms"], 2), "errors": r["errors"], "startup_s": round(startup, 2),
           "rss_mb": round(rss, 1), "processes": 1 + len(children)}
    record("serve", "stack", name, "c32-b32", {k: v for k, v in out.items() if k != "stack"}, wall_s=r["wall"],
           peak_rss_mb=rss, command=_command(), cpu_flags=cpu_flags(),
           note="a trivial batched model (text lengths) behind each stack: the stack's own overhead")
    return out


def main() -> None:
    t = time.perf_counter()
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401

    fastapi_import = time.perf_counter() - t
    t = time.perf_counter()
    import litserve  # noqa: F401

    print(json.dumps({"import_s": {"fastapi+uvicorn": round(fastapi_import, 3),
                                   "litserve (on top)": round(time.perf_counter() - t, 3)},
                      "lightning_imported_by_litserve": sorted(m for m in sys.modules if "lightning" in m)}))
    bodies = [json.dumps({"text": f"a one sentence review number {i}, quite good."}).encode() for i in range(100)]
    for _ in range(2):  # alternate, since timings drift on this machine (the newest line stays current)
        measure("fastapi+uvicorn+seqlab batcher", FASTAPI, "/health", bodies)
        measure("litserve", LITSERVE, "/health", bodies)


if __name__ == "__main__":
    main()
