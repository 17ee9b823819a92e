"""The static browser demo: the web deploy folder + the demo page + TF.js, served from 127.0.0.1.

`build_site(out)` turns `edgeproof deploy --target web`'s folder (bundle folders + index.json) into a
site that works offline: web_demo/index.html and web_demo/src/** are copied in, and the TF.js browser
builds are copied from web_demo/node_modules into `out/vendor/` (no CDN). `serve(site)` serves it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from edgeproof._atomic import write_bytes_atomic
from edgeproof.errors import EdgeproofError

from . import _server

__all__ = ["SiteError", "VENDOR_FILES", "WEB_DEMO", "build_site", "make_server", "serve"]

WEB_DEMO = Path(__file__).resolve().parents[1] / "web_demo"
SETUP_HINT = "run `scripts/setup.sh web` to install TF.js into web_demo/node_modules"

# (package under node_modules/@tensorflow, file in its dist/) -> copied to vendor/<file>.
# The UMD builds define the global `tf`; the wasm backend registers itself on it and fetches its
# .wasm binaries from the path given to tf.wasm.setWasmPaths('vendor/').
VENDOR_FILES = (
    ("tfjs", "tf.min.js"),
    ("tfjs-backend-wasm", "tf-backend-wasm.min.js"),
    ("tfjs-backend-wasm", "tfjs-backend-wasm.wasm"),
    ("tfjs-backend-wasm", "tfjs-backend-wasm-simd.wasm"),
    ("tfjs-backend-wasm", "tfjs-backend-wasm-threaded-simd.wasm"),
)



class SiteError(EdgeproofError):
    """The demo site cannot be built (TF.js not installed, demo sources or deploy folder missing)."""


def _demo_files(demo: Path) -> list[tuple[Path, str]]:
    """(source file, path relative to the site) for index.html, style.css and everything under src/."""
    index = demo / "index.html"
    if not index.is_file():
        raise SiteError(f"{index} is missing: the demo page is part of the repository (git checkout web_demo)")
    files = [(index, "index.html")]
    if (demo / "style.css").is_file():
        files.append((demo / "style.css", "style.css"))
    src = demo / "src"
    if not src.is_dir():
        raise SiteError(f"{src} is missing: the demo scripts are part of the repository (git checkout web_demo)")
    for p in sorted(src.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            files.append((p, p.relative_to(demo).as_posix()))
    return files


def _vendor_files(demo: Path) -> list[tuple[Path, str]]:
    modules = demo / "node_modules" / "@tensorflow"
    if not modules.is_dir():
        raise SiteError(f"{modules} is missing: {SETUP_HINT}")
    files, missing = [], []
    for package, name in VENDOR_FILES:
        path = modules / package / "dist" / name
        (files if path.is_file() else missing).append((path, f"vendor/{name}"))
    if missing:
        raise SiteError(f"TF.js browser build(s) missing: {', '.join(str(p) for p, _ in missing)}: {SETUP_HINT}")
    return files


def build_site(out: Path | str, demo: Optional[Path | str] = None) -> Path:
    """Add the demo page, its scripts and TF.js (vendor/) to the web deploy folder `out`; return `out`.

    `out` must already hold the bundles and index.json written by `deploy("web", ...)`. Every file is
    checked to exist before anything is written, and each is written atomically, so a failed build
    leaves no half-written file behind.
    """
    out = Path(out)
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
    files = _demo_files(demo) + _vendor_files(demo)
    for src, rel in files:
        write_bytes_atomic(out / rel, src.read_bytes())
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
