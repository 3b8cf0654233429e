"""The search page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from searchkit.config import Settings
from searchkit.web import create_app

from .conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (make installs it)"
)


@pytest.fixture(scope="module")
def server(seeds_index: Path) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(Settings(index_dir=seeds_index)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uvicorn_server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uvicorn_server.should_exit = True
    thread.join(timeout=10)


def test_search_page_finds_and_marks_the_sanctions_passage(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            external = []
            page.on(
                "request",
                lambda r: external.append(r.url) if not r.url.startswith(server) else None,
            )
            page.goto(server + "/")
            expect(page.locator("#q")).to_be_focused()  # keyboard first: type right away
            page.keyboard.type("S-400 sanctions")
            page.keyboard.press("Enter")
            first = page.locator("#results .hit").first
            expect(first).to_contain_text("SU-35 fighter jets and S-400")
            expect(first.locator("mark.lexical", has_text="S-400")).to_have_count(1)
            expect(first.locator("mark.lexical", has_text="sanctions")).to_have_count(1)
            # Hits that are unlikely to answer are shown as weak matches.
            expect(page.locator("#results .hit.weak").first).to_contain_text("weak match")
            expect(page.locator("#results .hit").first).not_to_have_class("hit weak")
            # The score breakdown opens from the keyboard too.
            first.locator("summary").focus()
            page.keyboard.press("Enter")
            expect(first.locator("details")).to_contain_text("BM25 #1")
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "search-page.png"), full_page=True)
            # Meaning-only mode marks the closest sentence instead of words.
            page.get_by_label("meaning").check()
            page.fill("#q", "defence chief's maiden trip abroad")
            page.keyboard.press("Enter")
            expect(page.locator("#results .hit").first.locator("mark.semantic")).to_contain_text(
                "first foreign visit"
            )
            assert external == [], f"the page fetched outside assets: {external}"
        finally:
            browser.close()
