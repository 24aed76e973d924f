"""Load test of `seqlab serve` on 127.0.0.1: bounded, stops by itself.

For each classifier bundle given (FAMILY=DIR): a server with --max-batch-size 1 and then
one with the default micro-batching, on a free loopback port; a fixed number of one-sentence
predict requests (first sentences of IMDB test reviews) at a fixed concurrency over
keep-alive connections from a small raw-asyncio client (cheap, so the 2 cores go to the
server). One `task: "serve"` line per setting in bench/results.jsonl: requests/s,
p50/p95/p99 latency, errors, the batch-size histogram (from /metrics), the server's peak RSS
and its RSS growth between request 1,000 and 10,000. `--startup` adds a line with the time
from process start to /health/ready for the bundles given there.

    python bench/serve_load.py gru=runs/imdb-gru cnn=runs/imdb-cnn bow=runs/imdb-bow \\
        --startup gru=runs/imdb-gru cnn=runs/imdb-cnn bow=runs/imdb-bow lm=runs/shakespeare
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SHARED_DATA, record  # noqa: E402

SETTINGS = [  # (name, concurrency, requests, --max-batch-size)
    ("c32-b1", 32, 3000, 1),
    ("c1-b32", 1, 1000, 32),
    ("c64-b32", 64, 10_000, 32),
    ("c32-b32", 32, 3000, 32),
]


def cpu_flags() -> str:
    """The lscpu flags that decide CPU inference speed."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in out.splitlines() if line.startswith("Flags")), [])
    keep = [f for f in flags if f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")]
    return " ".join(keep) or "none of avx2/avx512/amx"


def sentences(n: int = 500) -> list[str]:
    """First sentences (4-40 words) of IMDB test reviews."""
    from seqlab.data.datasets import load_dataset

    out = []
    for ex in load_dataset("imdb", data_dir=SHARED_DATA)["test"]:
        first = re.split(r"(?<=[.!?])\s", ex["text"].replace("<br />", " "), maxsplit=1)[0].strip()
        if 4 <= len(first.split()) <= 40:
            out.append(first)
        if len(out) == n:
            break
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    def __init__(self, models: list[str], *flags: str):
        self.port = free_port()
        self.argv = [sys.executable, "-m", "seqlab", "serve", *models, "--port", str(self.port), *flags]
        start = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        while asyncio.run(self.get("/health/ready"))[0] != 200:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server stopped: {self.proc.stderr.read()}")
            if time.perf_counter() - start > 120:
                raise SystemExit("the server was not ready within 120 s")
            time.sleep(0.02)
        self.startup_s = time.perf_counter() - start

    async def get(self, path: str) -> tuple[int, bytes]:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return 0, b""
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        status, body = await _answer(reader)
        writer.close()
        return status, body

    def batch_sizes(self, model: str) -> dict[str, int]:
        text = asyncio.run(self.get("/metrics"))[1].decode()
        prefix = f'seqlab_batch_size_bucket{{model="{model}",le="'
        return {line[len(prefix):].split('"')[0]: int(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line.startswith(prefix)}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


async def _answer(reader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def load(port: int, path: str, bodies: list[bytes], n: int, concurrency: int, pid: int) -> dict:
    latencies = np.zeros(n)
    state = {"next": 0, "done": 0, "errors": 0, "rss": {}}

    async def client() -> None:
        reader = writer = None
        while state["next"] < n:
            i = state["next"]
            state["next"] += 1
            body = bodies[i % len(bodies)]
            request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            start = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                status, _ = await _answer(reader)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                status, writer = 0, None
            latencies[i] = time.perf_counter() - start
            state["errors"] += status != 200
            state["done"] += 1
            if state["done"] in (1000, 10_000):
                state["rss"][state["done"]] = rss_mb(pid)
        if writer is not None:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) * 1000
    return {"wall": wall, "requests_per_s": n / wall, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "errors": state["errors"], "rss": state["rss"]}


def run_bundle(family: str, folder: str, bodies: list[bytes], note: str, only: set[str] | None) -> None:
    rates: dict[str, float] = {}
    server, server_batch = None, None
    try:
        for name, concurrency, n, batch in SETTINGS:
            if only and name not in only:
                continue
            if server_batch != batch:
                if server is not None:
                    server.stop()
                server = Server([f"{family}={folder}"], "--max-batch-size", str(batch))
                server_batch = batch
                asyncio.run(load(server.port, f"/v1/models/{family}/predict", bodies, 300, 8, server.proc.pid))
            before = server.batch_sizes(family)
            r = asyncio.run(load(server.port, f"/v1/models/{family}/predict", bodies, n, concurrency, server.proc.pid))
            after = server.batch_sizes(family)
            cumulative = {le: after[le] - before.get(le, 0) for le in after}
            hist, below = {}, 0
            for le, count in cumulative.items():
                if count - below:
                    hist[le] = count - below
                below = count
            rates[name] = r["requests_per_s"]
            metrics = {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()
                       if k in ("requests_per_s", "p50_ms", "p95_ms", "p99_ms", "errors")}
            metrics.update(requests=n, concurrency=concurrency, max_batch_size=batch)
            if 1000 in r["rss"] and 10_000 in r["rss"]:
                metrics["rss_growth_pct"] = round(100 * (r["rss"][10_000] / r["rss"][1000] - 1), 2)
            if name == "c32-b32" and "c32-b1" in rates:
                metrics["speedup_vs_batch1"] = round(rates["c32-b32"] / rates["c32-b1"], 2)
            record("serve", "imdb", family, name, metrics, wall_s=r["wall"],
                   peak_rss_mb=rss_mb(server.proc.pid, "VmHWM"), command=_command(), note=note,
                   batch_sizes=hist, startup_s=round(server.startup_s, 2), cpu_flags=cpu_flags(),
                   server=shlex.join(server.argv[1:]))
    finally:
        if server is not None:
            server.stop()


def _command() -> str:
    threads = os.environ.get("OMP_NUM_THREADS")
    return (f"OMP_NUM_THREADS={threads} " if threads else "") + "python " + shlex.join(
        [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="*", help="FAMILY=DIR classifier bundles to load-test")
    ap.add_argument("--startup", nargs="*", default=[], help="NAME=DIR bundles to time the start-up with")
    ap.add_argument("--only", help="comma list of settings to run (default: all)")
    ap.add_argument("--note", default="", help="what the bundles are (e.g. trained on a slice)")
    args = ap.parse_args()
    if args.startup:
        server = Server(args.startup)
        try:
            record("serve", "startup", f"{len(args.startup)} bundles", "startup", {"startup_s": round(server.startup_s, 2)},
                   wall_s=server.startup_s, peak_rss_mb=rss_mb(server.proc.pid, "VmHWM"), command=_command(),
                   note="seconds from `seqlab serve` process start to /health/ready: " + ", ".join(args.startup),
                   cpu_flags=cpu_flags())
        finally:
            server.stop()
    if args.bundles:
        bodies = [json.dumps({"text": s}).encode() for s in sentences()]
        only = set(args.only.split(",")) if args.only else None
        for spec in args.bundles:
            family, _, folder = spec.partition("=")
            run_bundle(family, folder, bodies, args.note, only)


if __name__ == "__main__":
    main()
