"""Artifacts run in a real browser: headless Chromium (Playwright, Debian's /usr/bin/chromium) on a
page served by the project's one server (cross-origin isolated, so wasm threads work).

    with BrowserRunner() as browser:
        info = browser.load(Path("tflite/int8.tflite"), "litertjs-wasm", threads=2)
        outputs = browser.predict({"serving_default_image:0": x})      # the artifact's own tensors
        browser.time(feed, warmup=3, repeats=20)["median_ms"]

Runtimes (`BrowserRuntime`): LiteRT.js (`@litertjs/core`) on its wasm (XNNPACK) or webgpu accelerator
for .tflite files; TF.js on its wasm, webgpu, webgl or cpu backend for model.json graph models. All
come from node_modules (edgeproof._js.js_modules(), deploy/_vendor.py), offline. The harness page is
verify/_browser_harness.mjs plus the demo's own runtime modules (web_demo/src/litert.js, ...), so the
verdict proves the code the demo runs.

Inputs and outputs are the artifact's own: tensor names, dtypes and layouts as in its manifest (no
canonical binding here: the caller binds, as for the TFLite interpreter). Arrays travel exactly, as
base64 of their raw little-endian bytes. When a runtime cannot run an artifact (no WebGPU adapter, a
tensor type LiteRT.js lacks, a truncated file, an op it has no kernel for) load() raises
`RuntimeUnsupportedError`, whose message is the runtime's reason: the verdict's "unsupported: reason".
Any other failure (no Chromium, the page crashed) is a `BrowserRuntimeError`.
"""
from __future__ import annotations

import base64
import json
import shutil
import statistics
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgeproof import _log
from edgeproof._js import web_demo_dir
from edgeproof.errors import EdgeproofError

__all__ = ["BrowserRunner", "BrowserRuntime", "BrowserRuntimeError", "LoadInfo", "RuntimeUnsupportedError"]

WEB_DEMO = web_demo_dir()
HARNESS_JS = Path(__file__).resolve().parent / "_browser_harness.mjs"
DEMO_MODULES = ("litert.js", "gpu.js", "tflite_flatbuffer.js", "tfjs_threads.js")
# The same flags as tests/browser_util.py (no GPU here; nothing phones home).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
MAX_MODEL_JSON_BYTES = 64 << 20
HARNESS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>edgeproof browser runtime harness</title><link rel="icon" href="data:,">
<script src="vendor/tf.min.js"></script>
<script src="vendor/tf-backend-wasm.min.js"></script>
<script src="vendor/tf-backend-webgpu.min.js"></script>
<script>tf.wasm.setWasmPaths(new URL('vendor/', location.href).href);</script>
<script type="module" src="harness.mjs"></script>
</head><body></body></html>
"""
_WIRE_DTYPES = {"float32": "<f4", "int32": "<i4", "uint8": "u1", "int8": "i1", "bool": "u1"}


class BrowserRuntime(str, Enum):
    LITERTJS_WASM = "litertjs-wasm"
    LITERTJS_WEBGPU = "litertjs-webgpu"
    TFJS_WASM = "tfjs-wasm"
    TFJS_WEBGPU = "tfjs-webgpu"
    TFJS_WEBGL = "tfjs-webgl"
    TFJS_CPU = "tfjs-cpu"

    @property
    def family(self) -> str:
        return self.value.split("-")[0]

    @property
    def label(self) -> str:
        """For verdict rows: "LiteRT.js wasm", "TF.js webgpu"."""
        return ("LiteRT.js " if self.family == "litertjs" else "TF.js ") + self.value.split("-")[1]


class BrowserRuntimeError(EdgeproofError):
    """The browser harness failed: Chromium or Playwright missing, the page crashed, a bad request."""


class RuntimeUnsupportedError(BrowserRuntimeError):
    """`runtime` cannot run this artifact; str(error) is the runtime's reason (verdict: "unsupported: reason")."""

    def __init__(self, runtime: str, reason: str):
        self.runtime, self.reason = runtime, reason
        super().__init__(reason)


@dataclass
class LoadInfo:
    runtime: str
    threads: Optional[int]            # what the runtime reports it uses (None: not a CPU runtime)
    load_ms: float
    inputs: list[dict[str, Any]]      # [{name, dtype, shape}] in the artifact's tensor names (+ "signature"
    #                                   for a .tflite: its SignatureDef name, which predict() also takes)
    outputs: list[dict[str, Any]]
    version: Optional[str] = None     # the runtime's npm version
    extra: dict[str, Any] = field(default_factory=dict)  # threaded_build, pinned_dims, fully_accelerated
    handle: int = 0                   # the model's id in its page (for use())
    page: int = 0                     # which page (a new thread count opens a new one)


def _encode(name: str, array: np.ndarray, dtype: Optional[str]) -> dict[str, Any]:
    """numpy -> wire tensor in `dtype` (the loaded model's input dtype); refuses a lossy cast."""
    a = np.asarray(array)
    want = dtype if dtype in _WIRE_DTYPES else {"f": "float32", "i": "int32", "u": "int32"}.get(a.dtype.kind)
    if want is None:
        raise BrowserRuntimeError(f"input {name!r}: dtype {a.dtype} cannot go to the browser (float, int or bool)")
    cast = np.ascontiguousarray(a.astype(_WIRE_DTYPES[want]))
    if a.dtype.kind in "iub" and not np.array_equal(cast.astype(np.int64), a.astype(np.int64)):
        raise BrowserRuntimeError(f"input {name!r}: {a.dtype} values do not fit the model's {want} input")
    return {"dtype": want, "shape": list(a.shape), "data": base64.b64encode(cast.tobytes()).decode("ascii")}


def _decode(name: str, wire: dict[str, Any]) -> np.ndarray:
    dtype = _WIRE_DTYPES.get(wire.get("dtype"))
    if dtype is None:
        raise BrowserRuntimeError(f"output {name!r}: the page returned dtype {wire.get('dtype')!r}")
    a = np.frombuffer(base64.b64decode(wire["data"]), dtype=dtype).reshape(wire["shape"])
    return a.astype(np.bool_ if wire["dtype"] == "bool" else a.dtype.newbyteorder("="))


def _model_files(model_file: Path) -> list[Path]:
    """The files a model needs beside it: the .tflite alone, or model.json and its weight shards
    (names confined to model.json's folder)."""
    if not model_file.is_file():
        raise BrowserRuntimeError(f"{model_file} is not a file")
    if model_file.suffix == ".tflite":
        return [model_file]
    if model_file.suffix != ".json":
        raise BrowserRuntimeError(f"{model_file}: give a .tflite file or a TF.js model.json")
    if model_file.stat().st_size > MAX_MODEL_JSON_BYTES:
        raise BrowserRuntimeError(f"{model_file} is over {MAX_MODEL_JSON_BYTES >> 20} MiB: not a TF.js model.json")
    try:
        manifest = json.loads(model_file.read_text(encoding="utf-8"))["weightsManifest"]
        paths = [p for group in manifest for p in group["paths"]]
    except (ValueError, KeyError, TypeError) as err:
        raise BrowserRuntimeError(f"{model_file} is not a TF.js model.json ({err})") from None
    folder = model_file.parent.resolve()
    files = [model_file]
    for p in paths:
        path = (folder / str(p)).resolve()
        if not isinstance(p, str) or path.parent != folder or not path.is_file():
            raise BrowserRuntimeError(f"{model_file}: weight shard {p!r} is not a file beside model.json")
        files.append(path)
    return files


class BrowserRunner:
    """Headless Chromium with the harness page; one model loaded at a time. A context manager."""

    def __init__(self, chromium: Optional[str] = None, timeout_s: float = 180.0):
        self.chromium = chromium or shutil.which("chromium") or "/usr/bin/chromium"
        self.timeout_ms = int(timeout_s * 1000)
        self._stack: Optional[ExitStack] = None
        self._page = None
        self._pages = 0
        self._threads: Optional[int] = None
        self._inputs: dict[str, Optional[str]] = {}
        self._signature_inputs: dict[str, Optional[str]] = {}
        self._models = 0
        self.console: list[str] = []  # the page's console errors and page errors, for diagnosis

    # -- lifetime ---------------------------------------------------------------------------------

    def __enter__(self) -> "BrowserRunner":
        from edgeproof.deploy._server import serving
        from edgeproof.deploy._vendor import VendorError, vendor_files

        if not Path(self.chromium).is_file():
            raise BrowserRuntimeError(f"Chromium not found at {self.chromium}: install Debian's chromium "
                                      f"(scripts/setup.sh browser)")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise BrowserRuntimeError("the playwright package is missing: install edgeproof's pipeline stack") from None
        self._stack = ExitStack()
        try:
            self.site = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="edgeproof-browser-")))
            try:
                files = vendor_files()
            except VendorError as err:
                raise BrowserRuntimeError(str(err)) from None
            for rel, data in files.items():
                (self.site / rel).parent.mkdir(parents=True, exist_ok=True)
                (self.site / rel).write_bytes(data)
            (self.site / "src").mkdir()
            for name in DEMO_MODULES:
                shutil.copy2(WEB_DEMO / "src" / name, self.site / "src" / name)
            shutil.copy2(HARNESS_JS, self.site / "harness.mjs")
            (self.site / "harness.html").write_text(HARNESS_HTML, encoding="utf-8")
            self.url = self._stack.enter_context(serving(self.site))
            playwright = self._stack.enter_context(sync_playwright())
            self._browser = playwright.chromium.launch(executable_path=self.chromium, headless=True, args=CHROMIUM_ARGS)
            self._stack.callback(self._browser.close)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the page, Chromium and Playwright. A browser or driver that already died (seen on the default
        profile: "Playwright connection closed" at close) is not an error here: every row was recorded, and a
        row the crash interrupted already says why."""
        if self._stack is not None:
            stack, self._stack, self._page = self._stack, None, None
            try:
                stack.close()
            except Exception as err:  # noqa: BLE001 (cleanup of a dead browser: nothing left to release)
                _log.detail(f"   LiteRT.js: closing Chromium failed ({type(err).__name__}: {err}); it had already stopped")

    def _page_for(self, threads: int):
        """The harness page for `threads` (TF.js fixes its wasm pool per page: a new count, a new page)."""
        if self._stack is None:
            raise BrowserRuntimeError("BrowserRunner is not started: use it as a context manager")
        if self._page is not None and self._threads == threads:
            return self._page
        if self._page is not None:
            self._page.close()
        page = self._browser.new_page()
        page.set_default_timeout(self.timeout_ms)
        page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console.append(str(e)))
        page.goto(f"{self.url}/harness.html?threads={int(threads)}")
        page.wait_for_function("document.body && document.body.dataset.ready === 'true'")
        self._page, self._threads = page, threads
        self._pages += 1
        return page

    def _call(self, method: str, arg: Any) -> dict[str, Any]:
        from playwright.sync_api import Error as PlaywrightError

        try:
            result = self._page.evaluate(f"(arg) => window.harness.{method}(arg)", arg)
        except PlaywrightError as err:
            raise BrowserRuntimeError(f"the harness page failed in {method}: {str(err).splitlines()[0]}") from None
        if not result.get("ok"):
            if result.get("unsupported"):
                raise RuntimeUnsupportedError(result.get("runtime") or "?", result["reason"])
            raise BrowserRuntimeError(f"{result.get('runtime') or 'the browser'}: {result.get('reason')}")
        return result

    # -- the API ----------------------------------------------------------------------------------

    def environment(self, threads: int = 1) -> dict[str, Any]:
        """What the page sees: cross-origin isolation, logical cores, the WebGPU problem (None when an
        adapter exists), the TF.js version, LiteRT.js's build (threaded or not) and version."""
        return self._page_for(threads).evaluate("window.harness.environment()")

    def load(self, model_file: Path, runtime: str, threads: int = 1, keep_others: bool = False) -> LoadInfo:
        """Load `model_file` (.tflite for litertjs-*, model.json for tfjs-*) on `runtime` with `threads`
        CPU threads; predict() and time() then run it. Raises RuntimeUnsupportedError (the runtime's
        reason) when it cannot run it. `keep_others`: models loaded before on the same page stay
        loaded, for use() (a new thread count opens a new page, which holds none)."""
        try:
            rt = BrowserRuntime(runtime)
        except ValueError:
            raise BrowserRuntimeError(f"unknown browser runtime {runtime!r}; use one of "
                                      f"{', '.join(r.value for r in BrowserRuntime)}") from None
        model_file = Path(model_file)
        wanted = ".tflite" if rt.family == "litertjs" else ".json"
        if model_file.suffix != wanted:
            what = ".tflite files" if wanted == ".tflite" else "TF.js model.json"
            raise BrowserRuntimeError(f"{rt.value} runs {what}, not {model_file.name}")
        if int(threads) < 1:
            raise BrowserRuntimeError(f"threads must be >= 1, got {threads}")
        files = _model_files(model_file)
        self._page_for(int(threads))
        self._models += 1
        folder = self.site / "models" / str(self._models)
        folder.mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, folder / f.name)
        result = self._call("load", {"url": f"models/{self._models}/{model_file.name}", "runtime": rt.value,
                                     "keepOthers": bool(keep_others)})
        info = LoadInfo(runtime=rt.value, threads=result.get("threads"), load_ms=float(result["load_ms"]),
                        inputs=result["inputs"], outputs=result["outputs"], version=result.get("version"),
                        extra={k: result[k] for k in ("threaded_build", "pinned_dims", "fully_accelerated")
                               if k in result},
                        handle=int(result["handle"]), page=self._pages)
        self._set_inputs(info)
        if rt.value.endswith("-wasm") and info.threads != int(threads):
            raise RuntimeUnsupportedError(rt.value, f"asked for {threads} wasm threads, {rt.label} runs {info.threads}")
        return info

    def use(self, info: LoadInfo) -> None:
        """Make the model `info` describes (loaded with keep_others) the one predict() and time() run."""
        if info.page != self._pages or self._page is None:
            raise BrowserRuntimeError(f"{info.runtime} model {info.handle} was loaded on an earlier page; "
                                      f"load it again")
        self._call("use", info.handle)
        self._set_inputs(info)

    def _set_inputs(self, info: LoadInfo) -> None:
        self._inputs = {i["name"]: i.get("dtype") for i in info.inputs}
        self._signature_inputs = {i["signature"]: i.get("dtype") for i in info.inputs if i.get("signature")}

    def _names_for(self, feed: dict[str, np.ndarray]) -> dict[str, Optional[str]]:
        """{input name: dtype} of the kind of names `feed` uses (tensor or signature names)."""
        for names in (self._inputs, self._signature_inputs):
            if names and set(feed) == set(names):
                return names
        by_signature = f" (or by signature name {sorted(self._signature_inputs)})" if self._signature_inputs else ""
        raise BrowserRuntimeError(f"the model takes {sorted(self._inputs)}{by_signature}; got {sorted(feed)}")

    def drop(self, info: LoadInfo) -> None:
        """Unload the model `info` describes (no-op when its page is gone)."""
        if self._page is not None and info.page == self._pages:
            self._call("drop", info.handle)

    def predict(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the loaded model on `feed` ({tensor name: array}, or for a .tflite {signature name: array});
        returns {output name: array}, named the same way as the inputs were."""
        names = self._names_for(feed)
        wire = {k: _encode(k, v, names[k]) for k, v in feed.items()}
        out = self._call("predict", wire)["outputs"]
        return {k: _decode(k, v) for k, v in out.items()}

    def predict_split(self, feed: dict[str, np.ndarray], step: int, position: Optional[int] = None
                      ) -> dict[str, np.ndarray]:
        """predict() on many examples in one page call, run in steps of `step` rows inside the page (the rows
        must divide into steps: pad the last one). `position`: only that index of axis 1 of every output of rank
        3 or more comes back ([n, T, ...] -> [n, ...]; greedy decoding's step)."""
        names = self._names_for(feed)
        wire = {k: _encode(k, v, names[k]) for k, v in feed.items()}
        arg = {"feeds": wire, "step": int(step), "position": None if position is None else int(position)}
        out = self._call("predictSplit", arg)["outputs"]
        return {k: _decode(k, v) for k, v in out.items()}

    def time(self, feed: dict[str, np.ndarray], warmup: int = 3, repeats: int = 20) -> dict[str, Any]:
        """Time `repeats` runs on `feed` in the page (performance.now(), 5 us resolution when isolated),
        after `warmup`: {"median_ms", "p90_ms", "runs", "times_ms"}. Input encoding is not timed."""
        if repeats < 1:
            raise BrowserRuntimeError(f"repeats must be >= 1, got {repeats}")
        names = self._names_for(feed)
        wire = {k: _encode(k, v, names[k]) for k, v in feed.items()}
        times = self._call("time", {"feeds": wire, "warmup": int(warmup), "repeats": int(repeats)})["times_ms"]
        ordered = sorted(times)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        return {"median_ms": statistics.median(times), "p90_ms": p90, "runs": len(times), "times_ms": times}

