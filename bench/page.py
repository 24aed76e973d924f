"""The live lecture page in headless Chromium: how long one live update takes, and one
screenshot per view for the README.

    python bench/page.py time imdb-gru=runs/imdb-gru
    python bench/page.py shots imdb-gru=runs/imdb-gru imdb-cnn=runs/imdb-cnn --demo --others runs/page

`time` serves the given classifier(s) alone and types 50-token sentences into the page (each
a new shuffle, so no answer is cached): the update time is from the debounced request to the
drawn page (page.js's window.seqlabTiming; the attribution bars, asked for after the first drawing, as
with_attributions), median and 90th percentile of --repeats, recorded
with the server's own inspect latency for the same text. `shots` writes bench/page_<view>.png;
--demo adds the tests' small bundles (demo gru/bow/cnn classifiers, a tagger, a char lm and a
translator, tests/helpers.py) so that every view has a model; --others DIR trains (once,
into DIR) small real ones instead for the other tasks: a UD-EWT tagger, a tinyshakespeare
char lm and a Multi30k translator (small slices, a few minutes on 2 cores). Needs Playwright and the
system's Chromium (`pip install 'seqlab[browser]'`, `apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402
from serve_load import Server, _command, rss_mb  # noqa: E402

VIEWS = {"bow": "#bow-view", "side": "#side-view", "rnn": "#rnn-view", "cnn": "#cnn-view", "why": "#why-view",
         "tags": "#tag-view", "lm": "#lm-view", "mt": "#mt-view"}
REVIEW = ("the movie my friend has not seen is good , and although the first hour drags and the plot "
          "is thin , the actors are wonderful and the ending moved me more than i expected ; i would "
          "happily watch it again with my friends who love quiet dramas .").split()


def chromium() -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_page import chromium_path

    path = chromium_path()
    if path is None:
        raise SystemExit("no Chromium found: apt-get install chromium (or set SEQLAB_CHROMIUM)")
    return path


def wait_drawn(page, before: int, n: int) -> None:
    page.wait_for_function(
        "([b, n]) => Number(document.body.dataset.updates) > b && "
        "document.querySelectorAll('#rnn-steps .step').length === n", arg=[before, n], timeout=30_000)


def request_ms(port: int, name: str, route: str, body: dict) -> float:
    data = json.dumps(body).encode()
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/{name}/{route}", data, {"Content-Type": "application/json"})) as r:
        r.read()
    return 1000 * (time.perf_counter() - start)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def wait_why(page) -> None:
    """Until the attributions of the newest update are drawn (they follow the first paint)."""
    page.wait_for_function("document.body.dataset.why === document.body.dataset.main", timeout=30_000)


def time_updates(models: list[str], repeats: int) -> None:
    from playwright.sync_api import sync_playwright

    assert len(REVIEW) == 50
    server = Server(models)
    rng = random.Random(0)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.wait_for_function("document.querySelectorAll('#rnn-steps .step').length > 0", timeout=60_000)
            update, draw_ms, why_ms, server_ms, attribute_ms = [], [], [], [], []
            name = models[0].split("=")[0]
            for i in range(repeats + 2):  # the first two warm up
                words = REVIEW[:]
                rng.shuffle(words)
                text = " ".join(words)
                before = int(page.evaluate("document.body.dataset.updates"))
                page.fill("#text", text)
                wait_drawn(page, before, len(words))
                wait_why(page)
                timing = page.evaluate("window.seqlabTiming")
                if i >= 2:
                    update.append(timing["ms"])
                    draw_ms.append(timing["drawMs"])
                    why_ms.append(timing["whyMs"])
                    server_ms.append(request_ms(server.port, name, "inspect", {"text": text, "attribution": False}))
                    attribute_ms.append(request_ms(server.port, name, "attribute", {"text": text}))
            browser.close()
        update.sort()
        why_ms.sort()
        metrics = {"tokens": 50, "update_ms_median": statistics.median(update),
                   "update_ms_p90": update[int(0.9 * (len(update) - 1))],
                   "with_attributions_ms_median": statistics.median(why_ms),
                   "with_attributions_ms_p90": why_ms[int(0.9 * (len(why_ms) - 1))],
                   "draw_ms_median": statistics.median(draw_ms),
                   "inspect_request_ms_median": statistics.median(server_ms),
                   "attribute_request_ms_median": statistics.median(attribute_ms), "repeats": repeats}
        record("page", Path(models[0].split("=")[-1]).name, "+".join(m.split("=")[0] for m in models),
               "live-update", metrics, wall_s=sum(update) / 1000, peak_rss_mb=rss_mb(server.proc.pid, "VmHWM"),
               command=_command(), note="update: from the debounced request to the drawn page (every view; the "
               "attribution bars follow: with_attributions) in headless Chromium, a new 50-token shuffle each "
               "time; the server serves only these models; load average " + load_average())
    finally:
        server.stop()


# small real models of the other tasks for the screenshots: (task, dataset, config, settings)
OTHERS = {
    "ud-tagger": ("tag", "ud-ewt", "ud-ewt-lstm.yaml", {"data.limit": 1500, "train.epochs": 2, "model.layers": 1,
                                                       "model.hidden_dim": 64, "model.char_filters": 30}),
    "shakespeare": ("lm", "tinyshakespeare", None, {"model.family": "lstm", "model.hidden_dim": 128,
                                                    "train.epochs": 1, "train.seq_len": 64,
                                                    "train.max_minutes": 2.0}),
    "de-en": ("translate", "multi30k", "multi30k-gru-attention.yaml", {
        "data.limit": 3000, "train.epochs": 3, "model.embed_dim": 64, "model.hidden_dim": 128,
        "train.precision": "32-true"}),
}


def train_others(folder: Path) -> list[str]:
    import seqlab
    from common import SHARED_DATA

    out = []
    for name, (task, data, config, settings) in OTHERS.items():
        target = folder / name
        if not (target / "config.json").is_file():
            seqlab.train(out=target, task=task, data=data, config=config and str(ROOT / "configs" / config),
                         **{"data.data_dir": str(SHARED_DATA), "train.progress": False, **settings})
        out.append(f"{name}={target}")
    return out


def screenshots(models: list[str], demo: bool, others: str | None) -> None:
    from playwright.sync_api import sync_playwright

    if demo:
        sys.path.insert(0, str(ROOT / "tests"))
        from helpers import tiny_page_bundles

        folder = Path(tempfile.mkdtemp(prefix="seqlab-page-"))
        keep = ("demo-gru", "demo-bow", "demo-cnn") if others else None
        models = models + [f"{k}={v}" for k, v in tiny_page_bundles(folder).items() if keep is None or k in keep]
    if others:
        models = models + train_others(Path(others))
    server = Server(models)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.wait_for_function("document.querySelectorAll('#rnn-steps .step').length > 0", timeout=60_000)
            wait_why(page)
            page.wait_for_timeout(1500)  # the lm and translation answers
            if page.locator("#rnn-heatmap").get_attribute("height") not in (None, "0"):
                page.locator("#rnn-heatmap").click(position={"x": 5, "y": 2 * 7 + 3})  # colour the text by unit row 2
            if page.locator("#sample").is_visible():
                page.click("#sample")
                page.wait_for_timeout(2000)
            for view, selector in VIEWS.items():
                if page.locator(selector).is_visible():
                    out = ROOT / "bench" / f"page_{view}.png"
                    page.locator(selector).screenshot(path=str(out))
                    print(f"wrote {out.relative_to(ROOT)}")
            browser.close()
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("time", "shots"))
    ap.add_argument("models", nargs="*", help="NAME=DIR bundles to serve")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--demo", action="store_true", help="shots: add the tests' small bundles of every task")
    ap.add_argument("--others", metavar="DIR", help="shots: train (once) small real tagger, lm and translator here")
    args = ap.parse_args()
    if args.what == "time":
        if not args.models:
            raise SystemExit("give the classifier(s) to time, e.g. imdb-gru=runs/imdb-gru")
        time_updates(args.models, args.repeats)
    else:
        screenshots(args.models, args.demo, args.others)


if __name__ == "__main__":
    main()
