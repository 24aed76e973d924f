"""The live lecture page (`seqlab serve` at /) in a real headless Chromium, driven by
Playwright with the system's browser (Debian's `chromium`; never `playwright install`).

Skipped when Playwright or Chromium is missing, unless SEQLAB_REQUIRE_BROWSER=1 (CI sets
it), which turns their absence into a failure. Every test also fails on a console error or
an uncaught exception in the page."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'seqlab[serve]'")

from helpers import tiny_page_bundles  # noqa: E402

REQUIRE = os.environ.get("SEQLAB_REQUIRE_BROWSER") == "1"
LECTURE = "The movie my friend has not seen is good"


def chromium_path() -> str | None:
    """The system's Chromium: $SEQLAB_CHROMIUM, or chromium / chromium-browser on PATH."""
    for candidate in (os.environ.get("SEQLAB_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _missing(why: str):
    if REQUIRE:
        pytest.fail(f"SEQLAB_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed: pip install 'seqlab[browser]'")
    path = chromium_path()
    if path is None:
        _missing("no Chromium found (apt-get install chromium, or set SEQLAB_CHROMIUM)")
    with sync_playwright() as p:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start
        chromium = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def url(browser, tmp_path_factory):
    """A real uvicorn server (in a thread of this process) over small bundles of every kind."""
    import uvicorn

    from seqlab.serve import ServeSettings
    from seqlab.serve.app import create_app

    bundles = tiny_page_bundles(tmp_path_factory.mktemp("page"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ServeSettings(models=[f"{k}={v}" for k, v in bundles.items()], port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    import httpx

    for _ in range(400):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def page(browser, url):
    """The page, loaded and drawn; fails the test on any console error or page exception."""
    context = browser.new_context(viewport={"width": 1300, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    tab.goto(url)
    tab.wait_for_function("document.querySelectorAll('#rnn-steps .step').length > 0 && "
                          "document.querySelectorAll('#lm-steps .step').length > 0 && "
                          "document.querySelectorAll('#mt-nbest li').length > 0", timeout=20_000)
    tab.errors = errors
    yield tab
    context.close()
    assert not errors, errors


def _type(page, text: str, selector: str = "#text") -> None:
    """Type into an input and wait until the page has drawn the answer for it."""
    before = int(page.evaluate("document.body.dataset.updates"))
    n = len(text.split())
    page.fill(selector, text)
    page.wait_for_function(
        "([before, n]) => Number(document.body.dataset.updates) > before && "
        "document.querySelectorAll('#rnn-steps .step').length === n", arg=[before, n], timeout=10_000)


# The heatmap is a canvas: count the cells actually painted (each cell's centre pixel is
# opaque) and check the one-pixel gaps between columns stay empty, so it really is a grid of
# rows x columns. Returns (painted cells, rows, columns).
HEATMAP_SHAPE = """() => {
    const c = document.querySelector('#rnn-heatmap'), rows = Number(c.dataset.rows), cols = Number(c.dataset.columns);
    if (!c.width || !c.height) return [0, 0, 0];
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const alpha = (x, y) => data[(y * c.width + x) * 4 + 3];
    let painted = 0;
    for (let r = 0; r < rows; r++) for (let t = 0; t < cols; t++)
        if (alpha(t * STEP_W + (STEP_W >> 1), r * UNIT_H + (UNIT_H >> 1)) === 255) painted++;
    for (let t = 1; t < cols; t++) if (alpha(t * STEP_W - 1, UNIT_H >> 1) !== 0) return [-1, rows, cols];
    return [painted, rows, cols];
}"""


def _heatmap_shape(page) -> tuple[int, int, int]:
    cells, units, columns = page.evaluate(HEATMAP_SHAPE)
    return cells, units, columns


def _click_unit_row(page, row: int) -> None:
    page.wait_for_function("document.body.dataset.why === document.body.dataset.main")  # nothing moves after
    page.locator("#rnn-heatmap").click(position={"x": 5, "y": row * 7 + 3})


def test_typing_n_tokens_renders_n_step_columns_and_a_t_by_h_heatmap(page):
    assert page.locator("#rnn-steps .step").count() == len(LECTURE.split())
    for text in ("a truly great film", "the movie my friend has seen is not good at all , sadly"):
        _type(page, text)
        n = len(text.split())
        assert page.locator("#rnn-steps .step").count() == n
        cells, units, columns = _heatmap_shape(page)
        assert units == 16 and columns == n and cells == n * units  # hidden_dim 16 per direction
        assert page.locator("#rnn-curve polyline").count() == 2  # one curve per label (neg, pos)
        assert page.locator("#rnn-curve circle.pt").count() == 2 * n
    # the unit strip: clicking a unit colours each token of the text by it
    _click_unit_row(page, 3)
    assert page.locator("#unit-strip .tok").count() == n
    unit = page.evaluate("document.querySelector('#rnn-heatmap').dataset.units.split(' ')[3]")
    assert f"unit {unit}:" in page.locator("#unit-strip").inner_text()
    page.check("#sort-units")
    assert _heatmap_shape(page)[0] == n * 16


def test_predictions_update_on_typing(page):
    row = page.locator('#side-table tr[data-model="demo-gru"]')
    first = row.inner_text()
    assert "pos" in first
    _type(page, "The movie my friend has seen is not good")
    assert row.inner_text() != first and "neg" in row.inner_text().split("\t")[4]
    assert page.locator("#side-table tr.side-row").count() == 3  # every served classifier
    order = {name: page.locator(f'#side-table tr[data-model="demo-{name}"] td.order').inner_text()
             for name in ("bow", "cnn", "gru")}  # the word order each family can see
    assert order == {"bow": "none: a bag of words", "cnn": "windows of up to 5 tokens",
                     "gru": "the whole text, both directions"}
    assert "%" in page.locator('#side-table tr[data-model="demo-cnn"]').inner_text()
    assert page.locator("#why-bars .why-row").count() == 3
    # the attributions follow the first drawing: every classifier's bars, for this text
    page.wait_for_function("document.body.dataset.why === document.body.dataset.main")
    assert not any("…" in label for label in page.locator("#why-bars .why-row .label").all_inner_texts())
    assert page.locator("#why-bars .why-row").first.locator(".attr").count() == 9
    assert page.locator("#why-bars .attr-bar").evaluate_all("bars => bars.some((b) => b.style.height !== '0px')")
    assert page.locator("#tag-row .tagged").count() == len("The movie my friend has seen is not good".split())


def test_shuffle_leaves_the_bag_of_words_and_changes_the_rnn(page):
    table = page.locator("#bow-table").inner_text()
    assert "Identical vectors" in page.locator("#bow-flag").inner_text()
    curve = page.locator("#rnn-curve polyline").first.get_attribute("points")
    bow = page.locator('#side-table tr[data-model="demo-bow"] td').nth(4).inner_text()
    before = int(page.evaluate("document.body.dataset.updates"))
    page.click("#shuffle")
    page.wait_for_function("(b) => Number(document.body.dataset.updates) > b", arg=before)
    text = page.input_value("#text")
    assert text != LECTURE and sorted(text.split()) == sorted(LECTURE.split())
    assert page.locator("#bow-table").inner_text() == table
    assert page.locator('#side-table tr[data-model="demo-bow"] td').nth(4).inner_text() == bow
    assert page.locator("#rnn-curve polyline").first.get_attribute("points") != curve


def test_hovering_a_token_highlights_it_in_every_view(page):
    page.wait_for_function("document.body.dataset.why === document.body.dataset.main")  # attributions drawn
    page.hover("#rnn-steps .step:nth-child(6) .tok")  # "not"
    lit = page.locator(".tok.hl")
    assert lit.count() >= 5  # steps, cnn windows, attributions (3 models), tags
    assert set(lit.all_inner_texts()) == {"not"}
    # views match tokens by text and occurrence, not position (models may split a sentence
    # differently): a repeated word lights only its own occurrence
    page.mouse.move(0, 0)
    _type(page, "the film is good and the end is good")
    page.wait_for_function("document.body.dataset.why === document.body.dataset.main")
    page.hover("#rnn-steps .step:nth-child(9) .tok")  # the second "good"
    assert set(page.locator(".tok.hl").all_inner_texts()) == {"good"}
    assert page.locator("#rnn-steps .tok.hl").count() == 1
    assert page.locator("#rnn-steps .step:nth-child(9) .tok.hl").count() == 1


def test_lm_steps_sampling_streams_and_translation_attention(page):
    page.fill("#lm-text", "to be")
    page.wait_for_function("document.querySelectorAll('#lm-steps .step').length === 5")
    assert page.locator("#lm-steps .step").first.locator(".guess").count() == 5
    page.fill("#top-k", "5")
    page.click("#sample")
    page.wait_for_function("document.querySelector('#lm-sample').textContent.length > 'to be'.length + 20")
    assert page.input_value("#top-k") == "5" and page.locator("#top-k-out").inner_text() == "5"
    rects = page.locator("#mt-attention rect.att").count()
    rows, cols = page.locator("#mt-attention text.tgt").count(), page.locator("#mt-attention text.src").count()
    assert rects == rows * cols and cols >= 5  # "Ein Hund rennt über die Wiese." as read
    assert page.locator("#mt-nbest li").count() == 3


def test_saved_view_opens_offline_and_draws(page, browser, tmp_path):
    _type(page, "my friend has not seen the movie")
    with page.expect_download() as download:
        page.click("#save")
    saved = tmp_path / "view.html"
    download.value.save_as(saved)
    html = saved.read_text(encoding="utf-8")
    assert "SEQLAB_SAVED" in html  # data, styles and scripts inlined: nothing to load
    assert '<script src="/static/' not in html and '<link rel="stylesheet" href="/static/' not in html
    offline = browser.new_context(offline=True)
    tab = offline.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(saved.as_uri())
    tab.wait_for_function("document.querySelectorAll('#rnn-steps .step').length === 7")
    assert "saved view" in tab.locator("#status").inner_text()
    assert tab.evaluate(HEATMAP_SHAPE) == [7 * 16, 16, 7]
    assert tab.locator("#side-table tr.side-row").count() == 3
    assert tab.locator("#lm-steps .step").count() > 0 and tab.locator("#mt-attention rect.att").count() > 0
    tab.hover("#rnn-steps .step:nth-child(4) .tok")
    assert tab.locator(".tok.hl").count() >= 2
    offline.close()
    assert not errors, errors
