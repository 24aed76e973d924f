"""The server's own counters, written as Prometheus text (no client library needed).

Everything is updated on the event loop's thread, so no locks. Label values are bounded:
the endpoint is the route template, the model one of the served names.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*self.buckets, "+Inf"), self.counts):
            running += count
            le = bound if bound == "+Inf" else _num(bound)
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}')
        braces = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{braces} {_num(self.sum)}", f"{name}_count{braces} {self.count}"]
        return out


class Metrics:
    def __init__(self, queue_depths: Callable[[], dict[str, int]] = dict):
        self.queue_depths = queue_depths
        self.requests: dict[tuple[str, str, str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batch_sizes: dict[str, Histogram] = {}
        self.errors: dict[tuple[str, int], int] = defaultdict(int)
        self.generated: dict[str, int] = defaultdict(int)
        self.stopped: dict[str, int] = defaultdict(int)
        self.ready = 0
        self.startup_s: float | None = None

    def request(self, method: str, endpoint: str, model: str, status: int, seconds: float) -> None:
        self.requests[(method, endpoint, model, status)] += 1
        self.latency.setdefault(endpoint, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def error(self, code: str, status: int) -> None:
        self.errors[(code, status)] += 1

    def batch(self, model: str, inputs: int, requests: int) -> None:
        self.batch_sizes.setdefault(model, Histogram(BATCH_BUCKETS)).observe(inputs)

    def render(self) -> str:
        out = ["# HELP seqlab_requests_total HTTP requests answered, by route, model and status.",
               "# TYPE seqlab_requests_total counter"]
        for (method, endpoint, model, status), n in sorted(self.requests.items()):
            out.append(f'seqlab_requests_total{{method="{method}",endpoint="{endpoint}",model="{model}",'
                       f'status="{status}"}} {n}')
        out += ["# HELP seqlab_request_duration_seconds Time from request to the last byte of the answer.",
                "# TYPE seqlab_request_duration_seconds histogram"]
        for endpoint, hist in sorted(self.latency.items()):
            out += hist.lines("seqlab_request_duration_seconds", f'endpoint="{endpoint}"')
        out += ["# HELP seqlab_batch_size Inputs run through a model in one micro-batch.",
                "# TYPE seqlab_batch_size histogram"]
        for model, hist in sorted(self.batch_sizes.items()):
            out += hist.lines("seqlab_batch_size", f'model="{model}"')
        out += ["# HELP seqlab_queue_depth Requests waiting for a model.", "# TYPE seqlab_queue_depth gauge"]
        for model, depth in sorted(self.queue_depths().items()):
            out.append(f'seqlab_queue_depth{{model="{model}"}} {depth}')
        out += ["# HELP seqlab_errors_total Error answers, by error code and status.",
                "# TYPE seqlab_errors_total counter"]
        for (code, status), n in sorted(self.errors.items()):
            out.append(f'seqlab_errors_total{{code="{code}",status="{status}"}} {n}')
        out += ["# HELP seqlab_generated_tokens_total Tokens written by streamed language-model generation.",
                "# TYPE seqlab_generated_tokens_total counter"]
        out += [f'seqlab_generated_tokens_total{{model="{m}"}} {n}' for m, n in sorted(self.generated.items())]
        out += ["# HELP seqlab_generations_stopped_total Generations stopped early: client gone or timeout.",
                "# TYPE seqlab_generations_stopped_total counter"]
        out += [f'seqlab_generations_stopped_total{{model="{m}"}} {n}' for m, n in sorted(self.stopped.items())]
        out += ["# HELP seqlab_ready 1 once every model is loaded.", "# TYPE seqlab_ready gauge",
                f"seqlab_ready {self.ready}"]
        if self.startup_s is not None:
            out += ["# HELP seqlab_startup_seconds Seconds from start to every model loaded.",
                    "# TYPE seqlab_startup_seconds gauge", f"seqlab_startup_seconds {_num(self.startup_s)}"]
        return "\n".join(out) + "\n"


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value)) if abs(value) < 1e15 else repr(value)


def parse_histogram(text: str, name: str, labels: str) -> dict[str, int]:
    """{le: cumulative count} of one histogram in `render()` text (for tests and the bench)."""
    out = {}
    prefix = f"{name}_bucket{{{labels},le=\""
    for line in text.splitlines():
        if line.startswith(prefix):
            le, value = line[len(prefix):].split('"}', 1)
            out[le] = int(float(value))
    return out
