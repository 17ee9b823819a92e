"""Install anywhere: the sdist and the wheel built from this checkout, installed into an empty venv in a temporary
folder outside the checkout, run the main job's stages for one small model from a working directory outside the
checkout (train, convert, verify incl. TF.js under Node, deploy web + pi + android), serve the demo site with the
installed `edgeproof serve`, and load it in Chromium with no console errors.

- The sdist is built from a copy of the source tree (nothing is written into the checkout) and the wheel from the
  sdist (`python -m build`), so the sdist is proven to hold everything the wheel needs.
- The venv gets the wheel with `--no-deps`; the heavy pinned stack is borrowed from the running environment
  (.venv) through one .pth line, since installing TensorFlow + torch afresh from the lock costs minutes and GBs
  (measured in the docs, "Test tiers"). `import edgeproof` must resolve inside the venv, never the checkout.
- The JS packages are not in the wheel: with $EDGEPROOF_JS_DIR pointing at an empty temporary folder they are
  installed on first use by `npm ci` from the lock shipped in the wheel, with npm forced offline
  (npm_config_offline: only npm's cache, which `scripts/setup.sh web` filled). No network is used.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from .browser_util import browser_page
from .conftest import REPO

pytestmark = [pytest.mark.wheel, pytest.mark.stack, pytest.mark.browser]

# What a source copy leaves out: environments, npm packages, outputs, data and caches (none is part of the
# source; .gitignore lists the same). Top-level names only, except the folders that appear at any depth.
TOP_LEVEL_SKIP = {".git", ".venv", ".venv-edge", "test-output", "site", "build", "dist", "data", ".pytest_cache",
                  ".hypothesis", ".ruff_cache"}
ANYWHERE_SKIP = shutil.ignore_patterns("node_modules", "__pycache__", "*.egg-info", "*.pyc")


def _skip(folder: str, names: list[str]) -> set[str]:
    top = Path(folder).resolve() == REPO.resolve()
    return set(ANYWHERE_SKIP(folder, names)) | ({n for n in names if n in TOP_LEVEL_SKIP or n.startswith("artifacts")}
                                                 if top else set())
DEMO_FILES = ("index.html", "package.json", "package-lock.json", "src/app.js", "src/greedy.js", "src/style.css")
PIPELINE_TIMEOUT_S = 1200  # measured ~55 s alone on 2 cores (linreg, fast profile); 20x headroom for a busy CI box


def _run(cmd: list, timeout: float, **kw) -> subprocess.CompletedProcess:
    started = time.monotonic()
    run = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    print(f"$ {' '.join(map(str, cmd))}  ({time.monotonic() - started:.1f} s, exit {run.returncode})")
    return run


def _ok(run: subprocess.CompletedProcess, what: str) -> str:
    if run.returncode != 0:
        pytest.fail(f"{what} failed (exit {run.returncode}):\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
    return run.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel (built from the sdist), from a copy of the source tree."""
    root = tmp_path_factory.mktemp("wheel-build")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=_skip, symlinks=True)
    # --no-isolation: the build backend (setuptools, wheel) comes from this environment, offline.
    _ok(_run([sys.executable, "-m", "build", "--no-isolation", "--outdir", root / "dist", src], timeout=600), "build")
    sdist, wheel = sorted((root / "dist").glob("*.tar.gz")), sorted((root / "dist").glob("*.whl"))
    assert len(sdist) == 1 and len(wheel) == 1, list((root / "dist").iterdir())
    return {"sdist": sdist[0], "wheel": wheel[0]}


@pytest.fixture(scope="module")
def venv(dists, tmp_path_factory):
    """An empty venv outside the checkout holding the wheel; the stack borrowed from this environment."""
    root = tmp_path_factory.mktemp("wheel-venv")
    assert REPO not in root.resolve().parents, f"{root} must be outside the checkout"
    env_dir = root / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", env_dir], timeout=120), "venv")
    python = env_dir / "bin" / "python"
    _ok(_run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index",
              dists["wheel"]], timeout=300), "pip install the wheel")
    site = Path(_ok(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=60),
                    "venv site-packages").strip())
    (site / "edgeproof-test-stack.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    js = root / "js-cache"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "EDGEPROOF_EDGE_PYTHON", "EDGEPROOF_TEST_REUSE_TRAINED")}
    env.update(PATH=f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", EDGEPROOF_JS_DIR=str(js),
               npm_config_offline="true")
    work = root / "work"
    work.mkdir()
    yield {"dir": env_dir, "python": python, "edgeproof": env_dir / "bin" / "edgeproof", "env": env, "work": work,
           "js": js}
    # ~500 MB of node_modules, not to be kept with pytest's last three tmp dirs; rm is ~2x faster than rmtree here
    subprocess.run(["rm", "-rf", str(js)], check=False, timeout=600)


@pytest.fixture(scope="module")
def pipeline(venv) -> Path:
    """`edgeproof pipeline --profile fast --model linreg --framework keras` run by the installed wheel."""
    art = venv["work"] / "art"
    run = _run([venv["edgeproof"], "pipeline", "--profile", "fast", "--model", "linreg", "--framework", "keras",
                "--artifacts", "art"], timeout=PIPELINE_TIMEOUT_S, cwd=venv["work"], env=venv["env"])
    print(run.stdout[-3000:], run.stderr[-3000:])
    _ok(run, "edgeproof pipeline from the installed wheel")
    return art


def test_wheel_and_sdist_carry_the_demo_and_the_js_lock_but_no_node_modules(dists):
    names = zipfile.ZipFile(dists["wheel"]).namelist()
    for rel in DEMO_FILES:
        assert f"edgeproof/web_demo/{rel}" in names, rel
    for rel in ("verify/_tfjs_runner.mjs", "verify/_browser_harness.mjs", "_js.py", "_doctor.py"):
        assert f"edgeproof/{rel}" in names, rel
    assert not [n for n in names if "node_modules" in n]
    with tarfile.open(dists["sdist"]) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    for rel in DEMO_FILES:
        assert f"web_demo/{rel}" in members, rel
    assert not [m for m in members if "node_modules" in m]
    # The lock in the wheel is the checkout's: the JS cache is keyed by it.
    lock = zipfile.ZipFile(dists["wheel"]).read("edgeproof/web_demo/package-lock.json")
    assert lock == (REPO / "web_demo" / "package-lock.json").read_bytes()


def test_base_install_requires_numpy_only(dists):
    """`pip install edgeproof` (no extras) pulls numpy and nothing else: the wheel's METADATA says so."""
    with zipfile.ZipFile(dists["wheel"]) as whl:
        meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        text = whl.read(meta).decode("utf-8")
    requires = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]
    base = [r for r in requires if "extra ==" not in r]
    assert [re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in base] == ["numpy"], base
    assert len(requires) > len(base)  # the extras are declared, just not pulled by the base install


def test_installed_package_is_the_wheel_not_the_checkout(venv):
    code = "import edgeproof, edgeproof._js as js; print(edgeproof.__file__); print(js.web_demo_dir())"
    out = _ok(_run([venv["python"], "-c", code], timeout=120, cwd=venv["work"], env=venv["env"]), "import")
    module, demo = (Path(line) for line in out.split())
    assert venv["dir"] in module.parents, module
    assert venv["dir"] in demo.parents and (demo / "index.html").is_file(), demo
    assert not (demo / "node_modules").exists()


def test_pipeline_from_the_wheel_trains_converts_verifies_and_deploys(pipeline, venv):
    parity = json.loads((pipeline / "linreg" / "keras" / "parity.json").read_text())
    rows = {(r["target"], r["mode"]): r for r in parity["artifacts"] if not r.get("browser")}
    assert {t for t, _ in rows} == {"tflite", "tfjs"}
    failed = {k: r["status"] for k, r in rows.items() if r["status"] != "pass"}
    assert not failed, failed
    assert all("tfjs" in r["runtime"] and "Node" in r["runtime"] for (t, _), r in rows.items() if t == "tfjs")
    web = json.loads((pipeline / "deploy" / "web" / "index.json").read_text())
    assert web["bundles"] and (pipeline / "deploy" / "web" / "vendor" / "tf.min.js").is_file()
    assert (pipeline / "deploy" / "pi" / "edgeproof-pi-bundles.tar.gz").is_file()
    # TF.js (Node and the site's vendor/) came from the JS cache installed from the wheel's lock.
    modules = sorted(venv["js"].glob("*/node_modules"))
    assert len(modules) == 1, list(venv["js"].iterdir())
    assert (pipeline / "deploy" / "web" / "vendor" / "tf.min.js").read_bytes() == \
        (modules[0] / "@tensorflow" / "tfjs" / "dist" / "tf.min.js").read_bytes()


def test_site_served_by_the_wheel_loads_in_chromium_without_console_errors(pipeline, venv):
    server = subprocess.Popen([str(venv["edgeproof"]), "serve", "--site", str(pipeline / "deploy" / "web"),
                               "--port", "0"], cwd=venv["work"], env=venv["env"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()  # "Serving <folder> at http://127.0.0.1:<port>/ (Ctrl-C stops)"
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, f"`edgeproof serve` printed {line!r}"
        with browser_page() as (page, errors):
            page.set_default_timeout(120_000)
            page.goto(match.group(0) + "index.html")
            page.wait_for_function("window.edgeproof !== undefined")
            page.evaluate("window.edgeproof.ready")
            panel = page.locator("#panel-linreg")
            panel.get_by_role("button", name="Fit line with the model").click()
            page.evaluate("window.edgeproof.idle()")
            assert page.evaluate("window.edgeproof.panels.linreg.last") is not None
            assert "PASS" in panel.locator("[data-role=stats]").inner_text()
            assert errors == [], errors
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_doctor_from_the_wheel_finds_the_js_cache(pipeline, venv):
    run = _run([venv["edgeproof"], "doctor"], timeout=600, cwd=venv["work"], env=venv["env"])
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    js_line = next(line for line in run.stdout.splitlines() if "JS packages" in line)
    assert js_line.startswith("ok") and "cache" in js_line and str(venv["js"]) in js_line, js_line
    assert ".venv-edge" in run.stdout and "not in a checkout" in run.stdout


def _deploy_web(venv, pipeline, tmp_path, **env) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """`edgeproof deploy --target web` from the wheel into a new folder, with an empty JS cache and `env`."""
    js, out = tmp_path / "js", tmp_path / "web"
    run = _run([venv["edgeproof"], "deploy", "--target", "web", "--artifacts", pipeline, "--out", out], timeout=600,
               cwd=venv["work"], env={**venv["env"], "EDGEPROOF_JS_DIR": str(js), **env})
    return run, js, out


def _one_error_line(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 2, run.stdout + run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("edgeproof deploy: error:")]
    assert len(errors) == 1 and "Traceback" not in run.stderr, run.stderr
    return errors[0]


def test_without_npm_the_site_build_names_the_fix(pipeline, venv, tmp_path):
    """No npm on PATH and nothing installed yet: one line naming the fix, exit 2, no site, no cache folder."""
    run, js, out = _deploy_web(venv, pipeline, tmp_path, PATH=str(venv["dir"] / "bin"))  # the venv's tools only
    line = _one_error_line(run)
    assert "is not on PATH" in line and "install Node.js 18+ with npm" in line, line
    assert not (out / "index.html").exists() and not (out / "vendor").exists()
    assert not js.exists() or not any(js.iterdir()), list(js.iterdir())


def test_a_failed_npm_install_names_the_reason_and_leaves_no_half_install(pipeline, venv, tmp_path):
    """npm offline with an empty npm cache: npm's reason in one line, exit 2, nothing left in the JS cache."""
    run, js, out = _deploy_web(venv, pipeline, tmp_path, npm_config_cache=str(tmp_path / "empty-npm-cache"))
    line = _one_error_line(run)
    assert "`npm ci` of the browser runtimes failed" in line, line
    assert "no cached response" in line and "complete log" not in line, line  # npm's reason, not its log pointer
    assert not (out / "index.html").exists() and not (out / "vendor").exists()
    assert [p.name for p in js.iterdir() if not p.name.endswith(".lock")] == [], list(js.iterdir())
