"""The browser demo's sources and its JavaScript dependencies, found the same way by every caller: the demo
site (deploy/_site.py, deploy/_vendor.py), the Node TF.js runner (verify/_tfjs_node.py), the browser harness
(verify/_browser_runtime.py), the browser benchmarks and `edgeproof doctor`.

- `web_demo_dir()`: index.html, src/*.js, package.json and package-lock.json. In an installed wheel they are
  package data (edgeproof/web_demo/); in a checkout, web_demo/ beside the package folders.
- `js_modules()`: a node_modules folder holding every npm package of package.json at its pinned version,
  looked for in this order:
  1. `web_demo/node_modules` beside the demo sources (a checkout after `scripts/setup.sh web`);
  2. a user cache: `$EDGEPROOF_JS_DIR` (default `$XDG_CACHE_HOME/edgeproof/js`, i.e. ~/.cache/edgeproof/js)
     `/<sha256 of package-lock.json, 16 hex>/node_modules`, installed on first use with `npm ci` from the lock
     shipped in the package: npm's own cache first (`--prefer-offline`, so it works offline once npm has the
     packages), no install scripts, into a temporary folder renamed into place only when complete, one
     process at a time (a lock file beside it). A changed lock gets a new folder; nothing is overwritten.
  The wheel does not carry node_modules (508 MB); node and npm are needed only when (2) must be installed.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

from .errors import EdgeproofError

__all__ = ["JsDeps", "JsDepsError", "JsSource", "cache_root", "find_js_modules", "js_modules", "lock_hash",
           "missing_packages", "web_demo_dir"]

ENV_CACHE = "EDGEPROOF_JS_DIR"
NPM_CI = ("ci", "--no-audit", "--no-fund", "--loglevel=error", "--ignore-scripts", "--prefer-offline")
NPM_TIMEOUT_S = 900.0  # a cold `npm ci` of the lock fetches ~130 MB of tarballs; from npm's cache it is ~30 s
NODE_FIX = ("install Node.js 18+ with npm (Debian/Ubuntu: `apt-get install nodejs npm`), or in a checkout run "
            "`scripts/setup.sh web`")
_HERE = Path(__file__).resolve().parent


class JsDepsError(EdgeproofError):
    """The browser runtimes (TF.js, LiteRT.js) cannot be found or installed: node/npm missing, `npm ci` failed,
    the cache folder is not writable, or the demo's package files are missing from the installation."""


class JsSource(str, Enum):
    CHECKOUT = "checkout"   # web_demo/node_modules beside the demo sources
    CACHE = "cache"         # the user cache, installed by npm ci
    MISSING = "missing"     # neither yet: js_modules() will install into the cache


@dataclass(frozen=True)
class JsDeps:
    """Where the JS dependencies are (or would be installed): `modules` is the node_modules folder."""
    source: JsSource
    modules: Path
    detail: str  # one line for people: what was found, or what is missing and how it gets installed


def web_demo_dir() -> Path:
    """The demo's sources: package data of an installed wheel, else the checkout's web_demo/."""
    packaged = _HERE / "web_demo"
    return packaged if (packaged / "index.html").is_file() else _HERE.parent / "web_demo"


def _package_files(demo: Path) -> tuple[Path, Path]:
    package, lock = demo / "package.json", demo / "package-lock.json"
    for path in (package, lock):
        if not path.is_file():
            raise JsDepsError(f"{path} is missing: this edgeproof installation is incomplete; reinstall edgeproof "
                              f"(pip install --force-reinstall edgeproof) or, in a checkout, restore web_demo/")
    return package, lock


def lock_hash(demo: Optional[Path] = None) -> str:
    """The first 16 hex digits of package-lock.json's sha256: the cache folder's name."""
    _, lock = _package_files(demo or web_demo_dir())
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:16]


def cache_root() -> Path:
    """$EDGEPROOF_JS_DIR, else $XDG_CACHE_HOME/edgeproof/js, else ~/.cache/edgeproof/js."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgeproof" / "js"


def _pinned(package_json: Path) -> dict[str, str]:
    try:
        deps = json.loads(package_json.read_text(encoding="utf-8")).get("dependencies", {})
    except (OSError, ValueError, AttributeError) as err:
        raise JsDepsError(f"{package_json} is not readable JSON ({err}): reinstall edgeproof") from None
    if not isinstance(deps, dict) or not all(isinstance(v, str) for v in deps.values()):
        raise JsDepsError(f"{package_json}: 'dependencies' is not a name -> version table: reinstall edgeproof")
    return deps


def missing_packages(modules: Path, package_json: Path) -> list[str]:
    """The dependencies of package.json that `modules` lacks or holds at another version than the exact pin
    ("name (have X, need Y)"); empty when the folder is complete."""
    missing = []
    for name, want in _pinned(package_json).items():
        try:
            have = json.loads((modules / name / "package.json").read_text(encoding="utf-8")).get("version")
        except (OSError, ValueError, AttributeError):
            missing.append(f"{name} (not installed)")
            continue
        exact = want[:1].isdigit()
        if exact and have != want:
            missing.append(f"{name} (have {have}, need {want})")
    return missing


def find_js_modules() -> JsDeps:
    """Where the JS dependencies are, without installing anything."""
    demo = web_demo_dir()
    package, _ = _package_files(demo)
    local = demo / "node_modules"
    if local.is_dir():
        gaps = missing_packages(local, package)
        if not gaps:
            return JsDeps(JsSource.CHECKOUT, local, f"{local} (scripts/setup.sh web)")
        stale = f"{local} is incomplete ({', '.join(gaps)}); "
    else:
        stale = ""
    cached = cache_root() / lock_hash(demo) / "node_modules"
    if cached.is_dir() and not missing_packages(cached, package):
        return JsDeps(JsSource.CACHE, cached, f"{cached} (npm ci from package-lock.json)")
    return JsDeps(JsSource.MISSING, cached, f"{stale}not installed yet: the first command that needs them runs "
                                            f"`npm ci` into {cached}")


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise JsDepsError(f"the browser runtimes (TF.js, LiteRT.js) must be installed with npm, and `{name}` is not "
                          f"on PATH: {NODE_FIX}")
    return exe


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if needed) while the block runs; one installer at a time."""
    with open(path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: the rename below still keeps a half install out of sight
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _npm_reason(text: str) -> str:
    """npm's own reason: its last error line that is not the pointer to its debug log."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    useful = [line for line in lines if "complete log of this run" not in line]
    return (useful or lines or ["no message"])[-1][:300]


def _npm_ci(npm: str, folder: Path) -> None:
    try:
        run = subprocess.run([npm, *NPM_CI], cwd=folder, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise JsDepsError(f"`npm ci` of the browser runtimes took over {NPM_TIMEOUT_S:.0f} s and was stopped: check "
                          f"the network or npm's registry settings, then run again") from None
    if run.returncode != 0:
        raise JsDepsError(f"`npm ci` of the browser runtimes failed ({_npm_reason(run.stderr or run.stdout)}): check "
                          f"the network or npm's cache (~/.npm), or set {ENV_CACHE} to a writable folder, and run "
                          f"again")


def _install(demo: Path, root: Path, digest: str) -> Path:
    """npm ci into root/.<digest>-tmp-*, then rename it to root/<digest>; returns root/<digest>/node_modules."""
    package, lock = _package_files(demo)
    _tool("node")  # npm runs on node: both must be on PATH
    npm = _tool("npm")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise JsDepsError(f"cannot create the JS cache {root} ({err.strerror}): set {ENV_CACHE} to a writable "
                          f"folder") from None
    final = root / digest
    with _locked(root / f".{digest}.lock"):
        if (final / "node_modules").is_dir() and not missing_packages(final / "node_modules", package):
            return final / "node_modules"  # another process installed it while we waited
        for stale in root.glob(f".{digest}-tmp-*"):  # left by a killed install; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{digest}-tmp-", dir=root))
        try:
            shutil.copy2(package, tmp / "package.json")
            shutil.copy2(lock, tmp / "package-lock.json")
            print(f"edgeproof: installing the browser runtimes (npm ci from package-lock.json) into {final} ...",
                  file=sys.stderr, flush=True)
            started = time.monotonic()
            _npm_ci(npm, tmp)
            gaps = missing_packages(tmp / "node_modules", package)
            if gaps:
                raise JsDepsError(f"`npm ci` finished but {', '.join(gaps)}: package.json and package-lock.json "
                                  f"disagree; reinstall edgeproof")
            tmp.chmod(0o755)  # mkdtemp made it private; the installed folder is an ordinary readable one
            if final.exists():
                shutil.rmtree(final)  # an incomplete folder from outside this module
            os.replace(tmp, final)
            print(f"edgeproof: browser runtimes installed in {time.monotonic() - started:.0f} s", file=sys.stderr,
                  flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final / "node_modules"


def js_modules(install: bool = True) -> Path:
    """The node_modules folder with every pinned npm package (see the module docstring for the order). With
    `install` (default) a missing cache is installed now; without it, JsDepsError says how to install it."""
    found = find_js_modules()
    if found.source is not JsSource.MISSING:
        return found.modules
    if not install:
        raise JsDepsError(f"the browser runtimes are {found.detail}")
    demo = web_demo_dir()
    return _install(demo, cache_root(), lock_hash(demo))
