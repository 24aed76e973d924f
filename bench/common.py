"""Shared benchmark plumbing: run a command as a child process, measure its wall time and
peak memory, append one JSON line to bench/results.jsonl, regenerate BENCHMARKS.md.

Lines are never rewritten: the newest line per (task, dataset, family, split) is the
current figure, older ones stay as history.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.jsonl"
REPORT = ROOT / "BENCHMARKS.md"
SHARED_DATA = ROOT.parent / "shared" / "data"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_measured(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a child process to completion: (wall seconds, peak RSS in MB of that child)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"benchmark command failed with exit code {code}: {shlex.join(argv)}")
    return wall, usage.ru_maxrss / 1024.0


def seqlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "seqlab", *args]


def record(task: str, dataset: str, family: str, split: str, metrics: dict, *, wall_s: float,
           peak_rss_mb: float, command: str, **extra) -> dict:
    from seqlab import __version__

    line = {
        "task": task, "dataset": dataset, "family": family, "split": split,
        "metrics": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items() if v is not None},
        "wall_s": round(wall_s, 1), "peak_rss_mb": round(peak_rss_mb, 1), "command": command,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(), "seqlab_version": __version__, "git_commit": git_commit(), **extra,
    }
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    write_report()
    print(json.dumps(line), flush=True)
    return line


def write_report() -> None:
    lines = [json.loads(s) for s in RESULTS.read_text().splitlines() if s.strip()] if RESULTS.exists() else []
    current: dict[tuple, dict] = {}
    for line in lines:
        current[(line["task"], line["dataset"], line["family"], line["split"])] = line
    out = ["# Benchmarks", "",
           "Generated from `bench/results.jsonl` by `bench/common.py` (newest line per task, dataset,",
           "family and split; older lines are kept there as history). Every figure below was measured",
           "by the command beside it; rerun a script under `bench/` to refresh it.",
           "Most accuracy runs ran with OMP_NUM_THREADS=1, two at a time on the 2-core machine, so",
           "their wall times and tokens/s are pessimistic; commands that set OMP_NUM_THREADS show the",
           "threads a run had; notes under a table say when a run shared the machine.", ""]
    for task in sorted({k[0] for k in current}):
        out += [f"## {task}", "",
                "| dataset | family | split | metrics | wall s | peak RSS MB | date | machine | command |",
                "|---|---|---|---|---|---|---|---|---|"]
        for key in sorted(k for k in current if k[0] == task):
            r = current[key]
            metrics = ", ".join(f"{k} {v}" for k, v in r["metrics"].items() if v is not None)
            metrics = metrics.replace("|", "\\|")  # sacrebleu signatures hold pipes
            out.append(f"| {r['dataset']} | {r['family']} | {r['split']} | {metrics} | {r['wall_s']} | "
                       f"{r['peak_rss_mb']} | {r['date'][:10]} | {r['machine']} | `{r['command']}` |")
        out.append("")
        for key in sorted(k for k in current if k[0] == task):
            r = current[key]
            label = f"{r['dataset']} / {r['family']}"
            if r.get("curve"):
                out.append(f"- {label}: ![{label}]({r['curve']})")  # BENCHMARKS.md sits at the root
            if r.get("note"):
                out.append(f"- {label}: {r['note']}")
            if r.get("examples"):
                shown = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["examples"].items())
                out.append(f"- {label} samples: {shown}")
        if out[-1]:
            out.append("")
    tmp = REPORT.with_suffix(".md.tmp")
    tmp.write_text("\n".join(out), encoding="utf-8")
    os.replace(tmp, REPORT)
