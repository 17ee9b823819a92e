"""The static browser demo: the web deploy folder + the demo page + the browser runtimes, served from 127.0.0.1.

`build_site(out)` turns `edgeproof deploy --target web`'s folder (bundle folders + index.json) into a
site that works offline: the demo's index.html and src/** (package data, or web_demo/ in a checkout:
edgeproof._js.web_demo_dir()) are copied in, and the browser runtimes (TF.js, LiteRT.js; see _vendor.py)
are copied from node_modules (edgeproof._js.js_modules()) into `out/vendor/` (no CDN). `serve(site)` serves it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from edgeproof._atomic import write_bytes_atomic
from edgeproof._js import web_demo_dir
from edgeproof.errors import EdgeproofError

from . import _server, _vendor

__all__ = ["SiteError", "VENDOR_FILES", "WEB_DEMO", "build_site", "make_server", "serve"]

WEB_DEMO = web_demo_dir()
SETUP_HINT = _vendor.SETUP_HINT

# Every browser runtime the page can use (TF.js cpu/wasm/webgl/webgpu, LiteRT.js wasm/webgpu), copied
# from node_modules into vendor/: the table and the reasons for each file are in _vendor.py.
VENDOR_FILES = _vendor.TFJS_FILES + _vendor.LITERT_FILES


class SiteError(EdgeproofError):
    """The demo site cannot be built (browser runtimes not installed, demo sources or deploy folder missing)."""


def _demo_files(demo: Path) -> list[tuple[Path, str]]:
    """(source file, path relative to the site) for index.html, style.css and everything under src/."""
    index = demo / "index.html"
    if not index.is_file():
        raise SiteError(f"{index} is missing: the demo page ships with edgeproof (reinstall it; in a checkout, "
                        f"restore web_demo/)")
    files = [(index, "index.html")]
    if (demo / "style.css").is_file():
        files.append((demo / "style.css", "style.css"))
    src = demo / "src"
    if not src.is_dir():
        raise SiteError(f"{src} is missing: the demo scripts ship with edgeproof (reinstall it; in a checkout, "
                        f"restore web_demo/)")
    for p in sorted(src.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            files.append((p, p.relative_to(demo).as_posix()))
    return files


def _vendor_files(modules: Optional[Path]) -> dict[str, bytes]:
    try:
        return _vendor.vendor_files(modules, VENDOR_FILES)
    except _vendor.VendorError as err:
        raise SiteError(str(err)) from None


def build_site(out: Path | str, demo: Optional[Path | str] = None) -> Path:
    """Add the demo page, its scripts and the browser runtimes (vendor/) to the web deploy folder `out`; return `out`.

    `out` must already hold the bundles and index.json written by `deploy("web", ...)`. Every file is
    checked to exist before anything is written, and each is written atomically, so a failed build
    leaves no half-written file behind.
    """
    out = Path(out)
    # A demo folder given explicitly brings its own node_modules; the default finds them (edgeproof._js).
    modules = Path(demo) / "node_modules" if demo is not None else None
    demo = Path(demo) if demo is not None else WEB_DEMO
    index = out / "index.json"
    if not index.is_file():
        raise SiteError(f"{index} is missing: run `edgeproof deploy --target web` first (it writes the bundles "
                        f"and index.json the demo loads)")
    try:
        target = json.loads(index.read_text(encoding="utf-8")).get("target")
    except (json.JSONDecodeError, AttributeError) as err:
        raise SiteError(f"{index} is not a deploy index ({err}); run `edgeproof deploy --target web` again") from None
    if target != "web":
        raise SiteError(f"{out} holds {target!r} bundles, not web ones: the demo needs `edgeproof deploy --target web`")
    files = {rel: src.read_bytes() for src, rel in _demo_files(demo)}
    files.update(_vendor_files(modules))  # every file is read (and checked) before anything is written
    for rel, data in files.items():
        write_bytes_atomic(out / rel, data)
    return out


def _check_site(site: Path | str) -> Path:
    site = Path(site)
    if not (site / "index.html").is_file():
        raise SiteError(f"{site} is not a demo site (no index.html): run `edgeproof deploy --target web` first")
    return site


def make_server(site: Path | str, port: int = 8000):
    """A server for the demo `site` bound to 127.0.0.1:`port` (0 picks a free port); the caller runs it."""
    return _server.make_server(_check_site(site), port)


def serve(site: Path | str, port: int = 8000) -> None:
    """Serve the demo site on 127.0.0.1 until Ctrl-C."""
    _server.serve_forever(_check_site(site), port)
