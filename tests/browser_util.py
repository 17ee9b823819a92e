"""Serve a folder on 127.0.0.1 and drive Debian's Chromium with Playwright (no browser download)."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """The project's one local server (edgeproof.deploy._server) on a free port."""
    from edgeproof.deploy._server import serving

    with serving(folder) as url:
        yield url


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `scripts/setup.sh browser` (make test does it)")
    return path


@contextlib.contextmanager
def browser_page() -> Iterator[tuple[object, list[str]]]:
    """A fresh page plus the list its console errors and page errors are collected into."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield _page_with_errors(browser)
        finally:
            browser.close()


def _page_with_errors(browser) -> tuple[object, list[str]]:
    """A new page of `browser` and the list its console errors, page errors and HTTP >= 400 go into."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    return page, errors


def draw_digit(page, canvas, image, threshold: int = 128) -> None:
    """Draw a 28x28 uint8 digit (white on black) onto a canvas with real mouse strokes: one horizontal
    stroke over each run of pixels >= `threshold` in each row, the canvas split into a 28x28 grid."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    sx, sy = box["width"] / 28, box["height"] / 28
    for r in range(28):
        bright = [int(v) >= threshold for v in image[r]]
        c = 0
        while c < 28:
            if not bright[c]:
                c += 1
                continue
            start = c
            while c < 28 and bright[c]:
                c += 1
            y = box["y"] + (r + 0.5) * sy
            page.mouse.move(box["x"] + (start + 0.5) * sx, y)
            page.mouse.down()
            page.mouse.move(box["x"] + (c - 0.5) * sx, y, steps=max(1, c - 1 - start))
            page.mouse.up()


@contextlib.contextmanager
def another_browser_page(page, *extra_args: str) -> Iterator[tuple[object, list[str]]]:
    """A second Chromium, launched from the Playwright that drives `page` (Playwright's sync API cannot
    be started twice in one thread), with extra flags, e.g. --disable-webgl to check a page's fallbacks."""
    browser = page.context.browser.browser_type.launch(executable_path=chromium_path(), headless=True,
                                                       args=CHROMIUM_ARGS + list(extra_args))
    try:
        yield _page_with_errors(browser)
    finally:
        browser.close()
