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
def chromium() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright; each `page_with_errors(browser)` is a fresh page in its own
    browser context (no cookies, storage or cache shared with another page)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def browser_page() -> Iterator[tuple[object, list[str]]]:
    """A fresh page plus the list its console errors and page errors are collected into."""
    with chromium() as browser:
        yield page_with_errors(browser)


def page_with_errors(browser) -> tuple[object, list[str]]:
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
        yield page_with_errors(browser)
    finally:
        browser.close()


def add_tflite_bundles(site: Path, pi_folder: Path) -> list[str]:
    """Put the .tflite bundles of a `deploy --target pi` folder into a web deploy folder the way
    `deploy --target web` writes them (`<model>-<framework>-tflite-<mode>/`, index.json entries with
    "artifact_target": "tflite"); the TF.js entries get "artifact_target": "tfjs". Returns the new
    bundle names. A web folder that already holds .tflite bundles is left as it is."""
    import json
    import shutil

    index_path = site / "index.json"
    index = json.loads(index_path.read_text())
    if any(b.get("artifact_target") == "tflite" for b in index["bundles"]):
        return []
    pi = json.loads((pi_folder / "index.json").read_text())
    added = []
    for entry in index["bundles"]:
        entry.setdefault("artifact_target", "tfjs")
    for entry in pi["bundles"]:
        name = f"{entry['model']}-{entry['framework']}-tflite-{entry['mode']}"
        shutil.copytree(pi_folder / entry["bundle"], site / name)
        index["bundles"].append({**entry, "bundle": name, "artifact_target": "tflite"})
        added.append(name)
    index["refused"] = index.get("refused", []) + pi.get("refused", [])
    index_path.write_text(json.dumps(index, indent=2))
    return added


def add_user_bundles(site: Path, sources: dict[str, str], model: str) -> list[str]:
    """Copy bundles of the web folder `site` as a user's own model: {source bundle: new bundle name};
    their manifests and index.json entries say model `model`, task "custom" (what a user's own model
    deployed by `deploy --target web` looks like to the page). Returns the new bundle names."""
    import json
    import shutil

    index_path = site / "index.json"
    index = json.loads(index_path.read_text())
    for src, name in sources.items():
        shutil.copytree(site / src, site / name)
        manifest = json.loads((site / name / "manifest.json").read_text())
        manifest.update(model=model, task="custom")
        (site / name / "manifest.json").write_text(json.dumps(manifest, indent=2))
        entry = next(b for b in index["bundles"] if b["bundle"] == src)
        index["bundles"].append({**entry, "bundle": name, "model": model, "task": "custom"})
    index_path.write_text(json.dumps(index, indent=2))
    return list(sources.values())
