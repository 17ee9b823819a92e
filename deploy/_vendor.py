"""The browser runtimes a page needs, copied from the node_modules folder edgeproof._js.js_modules() finds
(the checkout's web_demo/node_modules, else a user cache installed by `npm ci` from the package-lock.json
shipped in the package): no CDN. One table, used by the demo site (`_site.build_site`), the
in-browser verification harness (`edgeproof.verify._browser_runtime`) and the browser benchmarks.

- TF.js: the UMD builds (`tf.min.js` defines the global `tf`; the wasm and webgpu backends register
  on it) and the wasm backend's three binaries (plain, SIMD, threaded SIMD), fetched from the folder
  given to `tf.wasm.setWasmPaths`. Its pthread worker is built from a Blob by the backend itself.
- LiteRT.js: `@litertjs/core`'s ES module as `vendor/litertjs/core.js`, with its one bare import of
  `@litertjs/wasm-utils` rewritten to the copied `./wasm-utils.js` (no import map, no bundler), and
  its wasm builds in `vendor/litertjs/wasm/`: threaded (cross-origin isolated pages with relaxed
  SIMD), single-threaded, and compat (no relaxed SIMD). Each build's .js is also its pthread worker
  script. The JSPI build (only for WebNN, or for WebGPU models that fall back to wasm op by op) is
  left out: 9.6 MB that no page here uses. `vendor/litertjs/version.json` records the version.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from edgeproof._js import JsDepsError, js_modules
from edgeproof.errors import EdgeproofError

__all__ = ["VendorError", "VendorFile", "LITERT_WASM_BUILDS", "TFJS_FILES", "LITERT_FILES", "vendor_files",
           "package_versions"]

SETUP_HINT = "run `scripts/setup.sh web` (or `cd web_demo && npm ci`) to install the browser runtimes"
WASM_UTILS_IMPORT = 'from "@litertjs/wasm-utils"'
LITERT_WASM_BUILDS = ("litert_wasm_threaded_internal", "litert_wasm_internal", "litert_wasm_compat_internal")


class VendorError(EdgeproofError):
    """A browser runtime file is missing from node_modules, or not the file we expect."""


@dataclass(frozen=True)
class VendorFile:
    package: str   # npm package under node_modules
    path: str      # file inside the package
    dest: str      # path inside the site, under vendor/


TFJS_FILES = (
    VendorFile("@tensorflow/tfjs", "dist/tf.min.js", "tf.min.js"),
    VendorFile("@tensorflow/tfjs-backend-wasm", "dist/tf-backend-wasm.min.js", "tf-backend-wasm.min.js"),
    VendorFile("@tensorflow/tfjs-backend-wasm", "dist/tfjs-backend-wasm.wasm", "tfjs-backend-wasm.wasm"),
    VendorFile("@tensorflow/tfjs-backend-wasm", "dist/tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-simd.wasm"),
    VendorFile("@tensorflow/tfjs-backend-wasm", "dist/tfjs-backend-wasm-threaded-simd.wasm",
               "tfjs-backend-wasm-threaded-simd.wasm"),
    VendorFile("@tensorflow/tfjs-backend-webgpu", "dist/tf-backend-webgpu.min.js", "tf-backend-webgpu.min.js"),
)
LITERT_FILES = (
    VendorFile("@litertjs/core", "dist/index.js", "litertjs/core.js"),
    VendorFile("@litertjs/wasm-utils", "dist/index.js", "litertjs/wasm-utils.js"),
    *(VendorFile("@litertjs/core", f"wasm/{build}{ext}", f"litertjs/wasm/{build}{ext}")
      for build in LITERT_WASM_BUILDS for ext in (".js", ".wasm")),
)


def package_versions(modules: Path, packages: tuple[str, ...]) -> dict[str, Optional[str]]:
    """{package: version from its package.json, or None when it is not installed}."""
    out: dict[str, Optional[str]] = {}
    for name in packages:
        try:
            out[name] = json.loads((modules / name / "package.json").read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError, TypeError):
            out[name] = None
    return out


def _content(modules: Path, f: VendorFile) -> bytes:
    data = (modules / f.package / f.path).read_bytes()
    if f.dest == "litertjs/core.js":
        text = data.decode("utf-8")
        if text.count(WASM_UTILS_IMPORT) != 1:
            raise VendorError(f"{modules / f.package / f.path}: expected exactly one `{WASM_UTILS_IMPORT}` to point "
                              f"at the copied wasm-utils.js; this @litertjs/core is not the one package-lock.json "
                              f"pins: {SETUP_HINT}")
        data = text.replace(WASM_UTILS_IMPORT, 'from "./wasm-utils.js"').encode("utf-8")
    return data


def vendor_files(modules: Optional[Path] = None,
                 files: tuple[VendorFile, ...] = TFJS_FILES + LITERT_FILES) -> dict[str, bytes]:
    """{path under the site ("vendor/..."): bytes} for `files`, read from the node_modules folder `modules`
    (default: edgeproof._js.js_modules(), installed on first use); every file is checked to exist first
    (VendorError naming them all and the fix)."""
    if modules is None:
        try:
            modules = js_modules()
        except JsDepsError as err:
            raise VendorError(str(err)) from None
    modules = Path(modules)
    if not modules.is_dir():
        raise VendorError(f"{modules} is missing: {SETUP_HINT}")
    missing = [str(modules / f.package / f.path) for f in files if not (modules / f.package / f.path).is_file()]
    if missing:
        raise VendorError(f"browser runtime file(s) missing: {', '.join(missing)}: {SETUP_HINT}")
    out = {f"vendor/{f.dest}": _content(modules, f) for f in files}
    if any(f.package == "@litertjs/core" for f in files):
        version = package_versions(modules, ("@litertjs/core",))["@litertjs/core"]
        out["vendor/litertjs/version.json"] = json.dumps({"package": "@litertjs/core", "version": version}).encode()
    return out
