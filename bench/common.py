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



def run_child_job(argv: list[str], src: str | None = None) -> tuple[float, float, dict]:
    """Run one benchmark job in its own process at 1 thread (with PYTHONPATH=src: another
    checkout's code) and return (wall seconds, peak RSS in MB, the metrics it wrote to the
    file named by the --result flag appended here)."""
    import tempfile

    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "metrics.json"
        wall, rss = run_measured([*argv, "--result", str(result)], env=env)
        return wall, rss, json.loads(result.read_text())

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
        if line.get("suite"):  # the defaults study (bench/suite.py) has its own tables below
            continue
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
    out += suite_report([line for line in lines if line.get("suite")])
    tmp = REPORT.with_suffix(".md.tmp")
    tmp.write_text("\n".join(out), encoding="utf-8")
    os.replace(tmp, REPORT)


# --- the sentence-classification suite (bench/suite.py) -------------------------------

SUITE_DATASETS = ("cr", "mpqa", "subj", "trec", "names")
SUITE_FAMILIES = ("linear", "bow", "cnn", "lstm", "gru")
# The recipe each family's classify default is (tasks/classify.py family_defaults; bench/suite.py
# RECIPES spells it out, and tests/test_recipes.py checks that the two agree).
SUITE_DEFAULTS = {"linear": "nb-binary-bi-punct-chars-bauto", "bow": "bigrams16-e20-ema-refit",
                  "cnn": "e20-p5-ema-lr1e-3-refit",
                  "lstm": "imdb-e10-refit", "gru": "imdb-e10-refit"}
SUITE_ANCHORS = {
    "CNN-rand (Kim 2014)": {"subj": 0.896, "trec": 0.912, "cr": 0.798, "mpqa": 0.834},
    "NBSVM (Wang & Manning 2012)": {"subj": 0.932, "trec": 0.93, "cr": 0.818, "mpqa": 0.863},
}


def _suite_cell(line: dict | None, *, selection: bool = False) -> str:
    if line is None:
        return ""
    m = line["metrics"]
    value = m.get("val_accuracy") if selection and line["dataset"] == "names" else m.get("accuracy")
    if value is None:
        return ""
    std = m.get("accuracy_std")
    return f"{value:.4f} ± {std:.4f}" if std is not None else f"{value:.4f}"


def suite_report(lines: list[dict]) -> list[str]:
    """Markdown for the defaults study: the final table (datasets x families, published anchors
    beside it) and the recipe-selection table (every candidate recipe, cheap protocol)."""
    if not lines:
        return []
    newest: dict[tuple, dict] = {}
    for line in lines:
        newest[(line["suite"], line["dataset"], line["family"], line.get("recipe"), line["split"])] = line
    out = ["## classify: the sentence suite (defaults study)", "",
           "`bench/suite.py`: CR, MPQA, SUBJ, TREC (Kim 2014's preprocessing) and names, trained from",
           "scratch (no pretrained vectors), one job at a time at 1 thread. Final protocol: stratified",
           "10-fold cross-validation for CR, MPQA, SUBJ (mean ± sample std over folds, each fold's",
           "validation carved from its training part), TREC's and names' fixed test splits. The recipe",
           "each cell used is named under it; its settings are in bench/suite.py and in the line's",
           "`settings` in bench/results.jsonl.", ""]
    final = {(k[1], k[2]): v for k, v in newest.items() if k[0] == "final"}
    if final:
        columns = (*SUITE_DATASETS, "imdb") if any(d == "imdb" for d, _ in final) else SUITE_DATASETS
        out += ["### Final: each family's default recipe", "",
                "| family | recipe | " + " | ".join(columns) + " |",
                "|---|---|" + "---|" * len(columns)]
        # a family's current recipe: its default; else that of its newest final line
        current = {line["family"]: line.get("recipe") for line in lines if line["suite"] == "final"}
        current.update({f: r for f, r in SUITE_DEFAULTS.items() if f in current})

        def final_cells(family: str, recipe: str | None) -> list[dict | None]:
            return [newest.get(("final", d, family, recipe, "cv10" if d in ("cr", "mpqa", "subj") else "test"))
                    for d in columns]

        for family in SUITE_FAMILIES:
            if family in current:
                out.append(f"| {family} | {current[family]} | "
                           + " | ".join(_suite_cell(c) for c in final_cells(family, current[family])) + " |")
        for name, figures in SUITE_ANCHORS.items():
            out.append(f"| *{name}* | published | "
                       + " | ".join(f"*{figures[d]:.3f}*" if d in figures else "" for d in columns) + " |")
        # a family's other finals (earlier defaults, candidates) stay visible: what a change bought
        earlier = sorted({(k[2], k[3]) for k in newest if k[0] == "final" and current.get(k[2]) != k[3]},
                         key=lambda fr: (SUITE_FAMILIES.index(fr[0]) if fr[0] in SUITE_FAMILIES else 99, fr[1]))
        for family, recipe in earlier:
            out.append(f"| {family} (other) | {recipe} | "
                       + " | ".join(_suite_cell(c) for c in final_cells(family, recipe)) + " |")
        out.append("")
    seeds = sorted((((k[2], k[3], k[4]), v) for k, v in newest.items() if k[0] == "seeds"), key=lambda kv: kv[0])
    if seeds:
        out += ["### TREC's test over seeds", "",
                "TREC's test has 500 questions, and one run's accuracy moves by a point or more with the",
                "seed alone: `python bench/suite.py seeds FAMILY...` trains the fixed split once per seed",
                "(0 to N-1: the seed draws the initial weights, the batches and the validation carve) and",
                "records the mean ± sample std; the final table's TREC cell is the seed-0 run.", "",
                "| family | recipe | mean ± std | per seed | validation (mean) | mean epochs |",
                "|---|---|---|---|---|---|"]
        for (family, recipe, _), line in seeds:
            m = line["metrics"]
            out.append(f"| {family} | {recipe} | {_suite_cell(line)} | "
                       + ", ".join(f"{a:.3f}" for a in m["seed_accuracy"])
                       + f" | {m['val_accuracy']:.4f} | {m['epochs']:.1f} |")
        out.append("")
    # only each family's current default (older recipes' lines stay in results.jsonl)
    heldout = sorted((((k[1], SUITE_FAMILIES.index(k[2]) if k[2] in SUITE_FAMILIES else 99, k[2]), v)
                      for k, v in newest.items() if k[0] == "heldout" and SUITE_DEFAULTS.get(k[2]) == k[3]),
                     key=lambda kv: kv[0])
    if heldout:
        out += ["### A task no recipe was chosen on", "",
                "Each family's default recipe on TREC's 50 fine question types (`--label-column fine`;",
                "`python bench/suite.py heldout`), which no selection looked at: the fixed split's test",
                "accuracy, mean ± sample std over seeds 0-2 for the neural families (one fit for linear).", "",
                "| task | family | recipe | test accuracy | per seed | macro F1 |", "|---|---|---|---|---|---|"]
        for (task, _, _), line in heldout:
            m = line["metrics"]
            seeds = ", ".join(f"{a:.3f}" for a in m.get("seed_accuracy", []))
            f1 = f"{m['macro_f1']:.4f}" if m.get("macro_f1") is not None else ""
            out.append(f"| {task} | {line['family']} | {line['recipe']} | {_suite_cell(line)} | {seeds} | {f1} |")
        out.append("")
    select = {(k[1], k[2], k[3]): v for k, v in newest.items() if k[0] == "select"}
    if select:
        out += ["### Recipe selection (cheap protocol)", "",
                "3-fold cross-validation (held-out folds' accuracy) for CR, MPQA, SUBJ and TREC's training",
                "set (TREC's test is not used here); names: validation accuracy of one run on its fixed",
                "split. Mean: over the five columns, when all five were measured. Wall s: the jobs' own,",
                "but the rows first measured on 2026-12-02 (round 3: bigrams16-e20-ema, k234-f200-e10-ema,",
                "the imdb-e10-* TREC probes) ran beside other jobs (load average 4-5 on 2 cores): 1.5-3x slower,",
                "and so did round 4's (issue 14: e20-p5*, *-lr1e-3, *-d05, *-h256-d05, *-rcnn*, gru imdb-e10).", "",
                "| family | recipe | " + " | ".join(SUITE_DATASETS) + " | mean | wall s |",
                "|---|---|" + "---|" * (len(SUITE_DATASETS) + 2)]
        recipes = sorted({(k[1], k[2]) for k in select},
                         key=lambda fr: (SUITE_FAMILIES.index(fr[0]) if fr[0] in SUITE_FAMILIES else 99, fr[1]))
        for family, recipe in recipes:
            cells = [select.get((d, family, recipe)) for d in SUITE_DATASETS]
            values = [c["metrics"].get("val_accuracy" if c["dataset"] == "names" else "accuracy") for c in cells if c]
            mean = f"{sum(values) / len(values):.4f}" if len(values) == len(SUITE_DATASETS) else ""
            wall = sum(c["wall_s"] for c in cells if c)
            out.append(f"| {family} | {recipe} | " + " | ".join(_suite_cell(c, selection=True) for c in cells)
                       + f" | {mean} | {wall:.0f} |")
        out.append("")
        first = next(iter(newest.values()))
        out += [f"Commands: `{first['command'].rsplit(' job ', 1)[0]} job DATASET FAMILY RECIPE PROTOCOL`"
                " (each line's own command is in bench/results.jsonl).", ""]
    return out
