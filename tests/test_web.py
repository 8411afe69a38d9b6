"""The web page in a real browser: Debian's Chromium driven by Playwright against a real ``vtr serve`` process.

The page is loaded from the server on a free loopback port, over an index built by ``vtr index``; the test types
a query, sees one card per result, clicks one and checks that the video element seeks to that moment's start.
The page runs under its own Content-Security-Policy, so any inline script or outside resource would show up as
a console error here. A screenshot is saved under the test's tmp_path (its path is printed).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from test_serve_e2e import LiveServer, build_real_index

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Queries tried in turn until one has a result whose moment starts after 0 s, so that the seek is visible.
QUERIES = ("cars driving on a busy street", "a rabbit on a green hill", "a man talks in a car", "people on bikes")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def poll(page, expression: str, timeout: float = 30.0):
    """Evaluate ``expression`` until it is truthy. (Playwright's wait_for_function evaluates a string, which the
    page's Content-Security-Policy forbids; ``evaluate`` goes through the DevTools protocol instead.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {expression}")


def test_search_page_plays_the_clicked_moment(tmp_path_factory, sample_videos, tmp_path):
    from playwright.sync_api import sync_playwright

    layout = build_real_index(tmp_path_factory, sample_videos)
    server = LiveServer(layout["index"])
    try:
        for query in QUERIES:
            results = httpx.get(server.url + "api/search", params={"q": query, "k": 24}).json()["results"]
            chosen = max(results, key=lambda r: (r["start"], -r["rank"]))
            if chosen["start"] > 0:
                break
        else:
            pytest.fail(f"no query in {QUERIES} has a result whose moment starts after 0 s")

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                console_errors: list[str] = []
                page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: console_errors.append(str(e)))
                bad_responses: list[str] = []
                page.on("response", lambda r: bad_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None)

                page.goto(server.url)
                assert page.title().startswith("vtr")
                page.fill("#q", query)
                page.press("#q", "Enter")
                page.wait_for_selector(".card")
                cards = page.locator(".card")
                assert cards.count() == len(results)
                titles = page.locator(".card-title").all_text_contents()
                assert titles == [Path(r["path"]).name for r in results]
                assert f"{len(results)} results for" in page.locator("#status").text_content()
                # Every thumbnail came back as an image the browser could decode.
                poll(page, "[...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth > 0)")
                assert page.evaluate("document.querySelectorAll('.thumb img').length") == len(results)
                assert "q=" in page.url  # the search is in the address, so it can be shared

                # 'seeking' fires with currentTime already at the target, before playback moves it on.
                page.evaluate(
                    "() => { const v = document.querySelector('#video'); window.__seeks = [];"
                    " v.addEventListener('seeking', () => window.__seeks.push(v.currentTime)); }"
                )
                page.locator(f".card[data-id='{chosen['id']}']").click()
                assert page.locator("#player").is_visible()
                seeks = poll(page, "window.__seeks.length > 0 && window.__seeks")
                assert seeks[0] == pytest.approx(chosen["start"], abs=1e-3)
                poll(page, "!document.querySelector('#video').seeking")
                current = page.evaluate("document.querySelector('#video').currentTime")
                assert chosen["start"] - 1e-3 <= current <= chosen["end"]
                assert page.evaluate("document.querySelector('#video').currentSrc").endswith(chosen["stream_url"])
                assert page.locator("#player-title").text_content() == Path(chosen["path"]).name
                assert page.locator(".card.active").get_attribute("data-id") == str(chosen["id"])

                screenshot = tmp_path / "vtr-web.png"
                page.screenshot(path=str(screenshot), full_page=True)
                print(f"screenshot: {screenshot}")
                assert screenshot.stat().st_size > 10_000
                assert console_errors == [], console_errors
                assert bad_responses == [], bad_responses

                # The API docs render from the server's own files: every request stays on the loopback server.
                requests: list[str] = []
                docs = browser.new_page()
                docs.on("request", lambda r: requests.append(r.url))
                docs.goto(server.url + "docs")
                docs.wait_for_selector(".opblock", timeout=30_000)
                assert "/api/search" in docs.locator(".opblock-summary-path").all_text_contents()
                assert requests and all(url.startswith(server.url) for url in requests), requests
            finally:
                browser.close()
    finally:
        server.stop()
