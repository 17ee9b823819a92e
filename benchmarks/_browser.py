"""Browser timings in headless Debian Chromium (Playwright): TF.js wasm, webgl and cpu backends and
onnxruntime-web on the same model, load, first run and steady state apart; then LiteRT.js wasm and
TF.js wasm against native TFLite, interleaved in one run (_browser_native.py).

A temporary site holds benchmarks/web/bench.{html,js}, TF.js and onnxruntime-web from
web_demo/node_modules, the model's web bundles and the torch route's model.onnx. It is served from
127.0.0.1 with COOP/COEP headers, so the page is cross-origin isolated: wasm threads are allowed and
performance.now() has 5 us resolution instead of 100 us. One page per thread count (TF.js fixes the
wasm thread pool when the backend starts; web_demo/src/tfjs_threads.js lifts its hardwareConcurrency / 2
cap, without which 2 threads ran as 1 on this 2-core machine). WebGL has no GPU here: it runs in a second Chromium on
SwiftShader (software GL) when that starts, and is reported as such.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from edgeproof._js import JsDepsError, js_modules, web_demo_dir

from ._inventory import BenchmarkError, Group
from ._timing import Summary

HERE = Path(__file__).resolve().parent
WEB_DEMO = web_demo_dir()
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
# Software WebGL for the webgl backend (no GPU on these machines).
SWIFTSHADER_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--disable-quic"]
TFJS_FILES = (("@tensorflow/tfjs/dist", "tf.min.js"), ("@tensorflow/tfjs-backend-wasm/dist", "tf-backend-wasm.min.js"),
              ("@tensorflow/tfjs-backend-wasm/dist", "tfjs-backend-wasm.wasm"),
              ("@tensorflow/tfjs-backend-wasm/dist", "tfjs-backend-wasm-simd.wasm"),
              ("@tensorflow/tfjs-backend-wasm/dist", "tfjs-backend-wasm-threaded-simd.wasm"))
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")


def _modules() -> Path:
    """node_modules with TF.js and onnxruntime-web: the checkout's web_demo/node_modules, else the user cache."""
    try:
        return js_modules()
    except JsDepsError as err:
        raise BenchmarkError(str(err)) from None


def _package_version(name: str) -> Optional[str]:
    import json

    try:
        path = js_modules(install=False) / name / "package.json"
        return json.loads(path.read_text(encoding="utf-8"))["version"]
    except (JsDepsError, OSError, ValueError, KeyError):
        return None


def versions() -> dict[str, Optional[str]]:
    return {"@tensorflow/tfjs": _package_version("@tensorflow/tfjs"),
            "@tensorflow/tfjs-backend-wasm": _package_version("@tensorflow/tfjs-backend-wasm"),
            "@litertjs/core": _package_version("@litertjs/core"),
            "onnxruntime-web": _package_version("onnxruntime-web")}


def _build_site(site: Path, group_list: Sequence[Group]) -> None:
    modules = _modules()
    (site / "vendor").mkdir(parents=True)
    (site / "ort").mkdir()
    for sub, name in TFJS_FILES:
        src = modules / sub / name
        if not src.is_file():
            raise BenchmarkError(f"{src} is missing: run `cd web_demo && npm ci` (scripts/setup.sh web)")
        shutil.copy2(src, site / "vendor" / name)
    for name in ORT_FILES:
        src = modules / "onnxruntime-web" / "dist" / name
        if src.is_file():  # without it the onnxruntime-web rows say why
            shutil.copy2(src, site / "ort" / name)
    for name in ("bench.html", "bench.js"):
        shutil.copy2(HERE / "web" / name, site / name)
    (site / "src").mkdir()
    shutil.copy2(WEB_DEMO / "src" / "tfjs_threads.js", site / "src" / "tfjs_threads.js")
    for group in group_list:
        for bundle in group.web:
            shutil.copytree(bundle.path, site / "models" / bundle.name)
        if group.onnx is not None:
            dest = site / "models" / f"{group.model}-{group.framework}.onnx"
            shutil.copy2(group.onnx, dest)


def _serve(folder: Path):
    """The project's one local server: cross-origin isolated, so wasm threads are available."""
    from edgeproof.deploy._server import serving

    return serving(folder)


def _tfjs_inputs(bundle, spec) -> list[dict[str, Any]]:
    """The spec's first probe example, bound to the bundle's tensors (names, layout, dtype)."""
    from edgeproof.runtime._signature import bind, to_artifact

    probes = spec.probe_inputs(n=1)
    manifest = bundle.manifest
    bindings = bind([(t["name"], t.get("canonical_layout", t["layout"])) for t in manifest["inputs"]],
                    [{**t, "name": t["tensor"]} for t in manifest["inputs"]])
    out = []
    for b in bindings:
        array = to_artifact(b, probes[b.canonical])
        dtype = "float32" if array.dtype.kind == "f" else "int32"
        out.append({"tensor": b.name, "shape": list(array.shape), "dtype": dtype, "data": array.ravel().tolist()})
    return out


def _onnx_inputs(spec) -> list[dict[str, Any]]:
    """The same probe example in the torch model's layout (what model.onnx takes)."""
    from edgeproof._spec import Layout

    probes = spec.probe_inputs(n=1)
    out = []
    for t in spec.inputs:
        array = probes[t.name]
        if spec.torch_layout is Layout.NCHW and t.layout is Layout.NHWC:
            array = np.ascontiguousarray(array.transpose(0, 3, 1, 2))
        dtype = "float32" if array.dtype.kind == "f" else "int64"
        out.append({"shape": list(array.shape), "dtype": dtype, "data": array.ravel().tolist()})
    return out


def _row(result: dict[str, Any], **keys) -> dict[str, Any]:
    row = dict(keys)
    if "error" in result or not result.get("times"):
        row["error"] = result.get("error", "no timed runs")
        return row
    times = result["times"]
    row.update(runtime=result.get("backend"), threads=result.get("threads"), load_ms=round(result["loadMs"], 3),
               first_ms=round(result["firstMs"], 3), steady=Summary.of(times).to_dict())
    return row


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise BenchmarkError("Debian's chromium is not installed (scripts/setup.sh browser), or pass --skip-browser")
    return path


def _wasm_jobs(chosen: Sequence[Group]) -> tuple[list[dict], list[dict], dict[str, dict]]:
    """The interleaved wasm contestants: each TF.js bundle and onnxruntime-web on each model.onnx, with the facts of
    each row (by job key)."""
    from edgeproof import get_spec

    tfjs_jobs, onnx_jobs, meta = [], [], {}
    for g in chosen:
        spec = get_spec(g.model)
        for bundle in g.web:
            key = f"tfjs:{bundle.name}"
            tfjs_jobs.append({"key": key, "modelUrl": f"models/{bundle.name}/{bundle.manifest['model_file']}",
                              "inputs": _tfjs_inputs(bundle, spec),
                              "outputs": [t["tensor"] for t in bundle.manifest["outputs"]]})
            meta[key] = dict(model=g.model, framework=g.framework, mode=bundle.mode, runtime_label="tfjs wasm",
                             bundle=bundle.name, size_bytes=bundle.size_bytes)
        if g.onnx is not None:
            key = f"onnx:{g.model}-{g.framework}"
            onnx_jobs.append({"key": key, "modelUrl": f"models/{g.model}-{g.framework}.onnx",
                              "inputs": _onnx_inputs(spec)})
            meta[key] = dict(model=g.model, framework=g.framework, mode="fp32", runtime_label="onnxruntime-web wasm",
                             bundle=g.onnx.name, size_bytes=g.onnx.stat().st_size)
    return tfjs_jobs, onnx_jobs, meta


def _backend_rows(page, software_gl, url: str, chosen: Sequence[Group], n: int, runs: int,
                  budget_ms: float) -> Iterator[dict[str, Any]]:
    """The fp32 bundles on TF.js's cpu and webgl backends (webgl in a SwiftShader Chromium when it started), one
    after the other: a backend is global to the page."""
    from edgeproof import get_spec

    for g in chosen:
        spec = get_spec(g.model)
        for bundle in (b for b in g.web if b.mode == "fp32"):
            for backend in ("cpu", "webgl"):
                target, label = page, f"tfjs {backend}"
                if backend == "webgl" and software_gl is not None:
                    target = software_gl.new_page()
                    target.goto(f"{url}/bench.html")
                    target.evaluate(f"makeSetup({int(n)})")
                    label = "tfjs webgl (SwiftShader)"
                job = {"backend": backend, "modelUrl": f"models/{bundle.name}/{bundle.manifest['model_file']}",
                       "inputs": _tfjs_inputs(bundle, spec), "outputs": [t["tensor"] for t in bundle.manifest["outputs"]],
                       "runs": runs, "warmup": 5, "budgetMs": budget_ms}
                yield _row(_evaluate(target, "benchTfjs", job), model=g.model, framework=g.framework, mode=bundle.mode,
                           runtime_label=label, threads_requested=n, interleaved=False, bundle=bundle.name,
                           size_bytes=bundle.size_bytes)
                if target is not page:
                    target.close()


def _thread_rows(browser, software_gl, url: str, chosen: Sequence[Group], n: int, first: bool, info: dict,
                 settings: dict, say: Callable[[str], None]) -> Iterator[dict[str, Any]]:
    """Every row at `n` threads: the wasm contestants interleaved, then (on the first thread count) the backends."""
    page = browser.new_page()
    try:
        page.goto(f"{url}/bench.html")
        info[f"isolated_{n}"] = page.evaluate(f"makeSetup({int(n)})")["isolated"]
        if n > 1 and not info[f"isolated_{n}"]:
            say(f"  browser: the page is not cross-origin isolated: no wasm threads, {n}-thread rows skipped")
            return
        tfjs_jobs, onnx_jobs, meta = _wasm_jobs(chosen)
        result = _evaluate(page, "benchWasmInterleaved", {"tfjs": tfjs_jobs, "onnx": onnx_jobs, "warmup": 5,
                                                          "rounds": settings["rounds"], "batchMs": settings["batch_ms"]})
        for key, m in meta.items():
            r = result if "error" in result else result.get(key, {"error": "not run"})
            yield _row(r, threads_requested=n, interleaved=True, **m)
        if first:
            yield from _backend_rows(page, software_gl, url, chosen, n, settings["runs"], settings["budget_ms"])
    finally:
        page.close()


def run_browser(groups: Sequence[Group], models: Sequence[str], threads: Sequence[int], runs: int = 200,
                budget_ms: float = 2000, rounds: int = 30, batch_ms: float = 25.0,
                say: Callable[[str], None] = print) -> dict[str, Any]:
    """Time the web bundles of `models` (and their model.onnx) in Chromium; one row per measurement.

    Per thread count, every wasm contestant (each TF.js bundle, onnxruntime-web on each model.onnx)
    is loaded in one page and timed round-robin (`rounds` x about `batch_ms` each). On one thread the
    fp32 bundles also run on the cpu and webgl backends, one after the other (a backend is global to
    the page), up to `runs` runs or `budget_ms` each.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    chosen = [g for g in groups if g.model in models and (g.web or g.onnx)]
    if not chosen:
        return {"rows": [], "note": f"no web bundles or model.onnx for {list(models)}: run `edgeproof deploy --target web`"}
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {"versions": versions()}
    settings = {"runs": runs, "budget_ms": budget_ms, "rounds": rounds, "batch_ms": batch_ms}
    with tempfile.TemporaryDirectory(prefix="edgeproof-bench-site-") as tmp, _serve(Path(tmp)) as url, \
            sync_playwright() as p:
        _build_site(Path(tmp), chosen)
        executable = _chromium()
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        info["chromium"] = browser.version
        try:
            software_gl = p.chromium.launch(executable_path=executable, headless=True, args=SWIFTSHADER_ARGS)
        except PlaywrightError as err:
            software_gl, info["webgl_note"] = None, f"SwiftShader Chromium did not start: {str(err).splitlines()[0]}"
        try:
            for n in threads:
                for row in _thread_rows(browser, software_gl, url, chosen, n, n == min(threads), info, settings, say):
                    rows.append(row)
                    say(_line(row))
        finally:
            browser.close()
            if software_gl is not None:
                software_gl.close()
    from ._browser_native import run_vs_native

    say("  browser vs native TFLite, interleaved: LiteRT.js wasm and TF.js wasm against ai-edge-litert")
    info["vs_native"] = run_vs_native([g for g in groups if g.model in models], models, threads, rounds=rounds,
                                      batch_ms=batch_ms, say=say)
    return {"rows": rows, **info}


def _evaluate(page, fn: str, job: dict[str, Any]) -> dict[str, Any]:
    from playwright.sync_api import Error as PlaywrightError

    try:
        return page.evaluate(f"(job) => {fn}(job)", job)
    except PlaywrightError as err:
        return {"error": f"failed: {str(err).splitlines()[0][:240]}"}


def _line(row: dict[str, Any]) -> str:
    head = f"  [browser {row['threads_requested']}t] {row['model']}/{row['framework']} {row['mode']} {row['runtime_label']}"
    if "error" in row:
        return f"{head}: {row['error']}"
    s = row["steady"]
    return (f"{head}: load {row['load_ms']:.4g} ms, first {row['first_ms']:.4g} ms, p50 {s['p50_ms']:.4g} ms, "
            f"p99 {s['p99_ms']:.4g} ms ({s['n']} runs)")
