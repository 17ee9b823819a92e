"""TF.js from the committed npm lock runs in headless Debian Chromium, offline."""
import shutil

import pytest

from .browser_util import browser_page, serve
from .conftest import REPO

pytestmark = pytest.mark.browser


def test_tfjs_from_node_modules_runs_on_cpu_and_wasm(tmp_path):
    node_modules = REPO / "web_demo" / "node_modules" / "@tensorflow"
    if not node_modules.exists():
        pytest.fail("web_demo/node_modules is missing: run `scripts/setup.sh web` (make test does it)")
    # copies, not a symlink: the project's server (deploy/_server.py) refuses paths whose real location leaves
    # the served folder
    wanted = ["tfjs/dist/tf.min.js", "tfjs-backend-wasm/dist/tf-backend-wasm.min.js",
              *(str(p.relative_to(node_modules)) for p in (node_modules / "tfjs-backend-wasm" / "dist").glob("*.wasm"))]
    for rel in wanted:
        dest = tmp_path / "node_modules" / "@tensorflow" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(node_modules / rel, dest)
    shutil.copy(REPO / "tests" / "assets" / "tfjs_smoke.html", tmp_path / "index.html")
    with serve(tmp_path) as url, browser_page() as (page, errors):
        page.goto(f"{url}/index.html")
        page.wait_for_function("window.__result !== undefined", timeout=60_000)
        result = page.evaluate("window.__result")
    assert result["version"] == "4.22.0"
    for backend in ("cpu", "wasm"):
        assert result["results"][backend] == {"active": backend, "values": [19, 22, 43, 50]}, result
    # webgl needs a GPU context; with --disable-gpu it may fall back or fail, but never silently lie.
    webgl = result["results"]["webgl"]
    assert "error" in webgl or webgl["values"] == [19, 22, 43, 50]
    assert [e for e in errors if "webgl" not in e.lower()] == [], errors
