"""The browser runtimes against native TFLite, measured in one interleaved run: per thread count,
LiteRT.js wasm on every .tflite bundle, TF.js wasm on every TF.js bundle, and the TFLite interpreter
(ai-edge-litert) in this process on the same .tflite files, timed round-robin in small batches, so a
slow phase of the machine hits all of them alike and the ratios hold.

Browser side: edgeproof.verify._browser_runtime (headless Chromium, the demo's own LiteRT.js and TF.js
code, a cross-origin isolated page: wasm threads work). A browser batch is timed inside the page
(performance.now() around each call: input tensor made, model run, output read back); a native batch
is timed here around each signature-runner call (inputs set, invoke, outputs read back).

Ratios: LiteRT.js against the native run of the same .tflite file; TF.js fp32 and uint8 against
native fp32 (TF.js dequantizes uint8 weights when it loads them and computes in float32), fp16
against native fp16. A contestant slower than `budget_ms` in total stops early (it keeps at least
`min_calls`): the LSTM in TF.js takes most of a second per call.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ._inventory import Bundle, Group
from ._timing import Summary

NATIVE = "native TFLite (ai-edge-litert)"
LITERT = "LiteRT.js wasm"
TFJS = "TF.js wasm"
NATIVE_MODE_FOR_TFJS = {"fp32": "fp32", "fp16": "fp16", "uint8": "fp32"}


@dataclass
class Contestant:
    model: str
    framework: str
    mode: str
    runtime: str
    threads_requested: int
    native_mode: Optional[str]  # the .tflite precision its ratio is taken against (None: it is native)
    batch: Optional[Callable[[int], list[float]]] = None
    threads: Optional[int] = None
    load_ms: Optional[float] = None
    bundle: str = ""
    error: Optional[str] = None
    times: list[float] = field(default_factory=list)
    per_call: float = 1.0


def _feed(bundle: Bundle, spec) -> dict[str, np.ndarray]:
    """The spec's first probe bound to the bundle's tensors: its names, layout and dtype."""
    from edgeproof.runtime._signature import bind, to_artifact

    manifest = bundle.manifest
    bindings = bind([(t["name"], t.get("canonical_layout", t["layout"])) for t in manifest["inputs"]],
                    [{**t, "name": t["tensor"]} for t in manifest["inputs"]])
    probes = spec.probe_inputs(n=1)
    return {b.name: to_artifact(b, probes[b.canonical]) for b in bindings}


def _native(c: Contestant, path: Path, feed: dict[str, np.ndarray]) -> None:
    """A native contestant: ai-edge-litert's signature runner with `threads` threads."""
    from ai_edge_litert.interpreter import Interpreter

    start = time.perf_counter()
    interpreter = Interpreter(str(path), num_threads=c.threads_requested)
    runner = interpreter.get_signature_runner()
    runner(**feed)
    c.load_ms, c.threads = (time.perf_counter() - start) * 1e3, c.threads_requested

    def batch(n: int) -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            runner(**feed)
            out.append((time.perf_counter() - t0) * 1e3)
        return out

    c.batch = batch


def _browser(c: Contestant, browser, path: Path, runtime: str, feed: dict[str, np.ndarray]) -> None:
    from edgeproof.verify._browser_runtime import BrowserRuntimeError

    try:
        info = browser.load(path, runtime, c.threads_requested, keep_others=True)
    except BrowserRuntimeError as err:
        c.error = f"unsupported: {err}"
        return
    c.load_ms, c.threads = info.load_ms, info.threads

    def batch(n: int) -> list[float]:
        browser.use(info)
        return browser.time(feed, warmup=0, repeats=n)["times_ms"]

    c.batch = batch


def _contestants(groups: Sequence[Group], threads: int, browser) -> list[Contestant]:
    from edgeproof import get_spec

    out = []
    for g in groups:
        spec = get_spec(g.model)
        for b in g.native:
            path, feed = b.path / b.manifest["model_file"], _feed(b, spec)
            native = Contestant(g.model, g.framework, b.mode, NATIVE, threads, None, bundle=b.name)
            _native(native, path, feed)
            lite = Contestant(g.model, g.framework, b.mode, LITERT, threads, b.mode, bundle=b.name)
            _browser(lite, browser, path, "litertjs-wasm", feed)
            out += [native, lite]
        for b in g.web:
            tfjs = Contestant(g.model, g.framework, b.mode, TFJS, threads, NATIVE_MODE_FOR_TFJS.get(b.mode),
                              bundle=b.name)
            _browser(tfjs, browser, b.path / b.manifest["model_file"], "tfjs-wasm", _feed(b, spec))
            out.append(tfjs)
    return out


def _calibrate(c: Contestant, batch_ms: float) -> int:
    c.batch(3)  # warm-up
    c.per_call = max(1e-3, float(np.median(c.batch(5))))
    return max(1, min(500, int(batch_ms / c.per_call)))


def _interleave(contestants: list[Contestant], rounds: int, batch_ms: float, budget_ms: float, min_calls: int) -> None:
    live = [c for c in contestants if c.batch is not None and c.error is None]
    sizes = {}
    for c in live:
        try:
            sizes[id(c)] = _calibrate(c, batch_ms)
        except Exception as err:  # a contestant that breaks must not stop the others
            c.error = f"failed: {str(err).splitlines()[0][:200]}"
    live = [c for c in live if c.error is None]
    for r in range(rounds):
        order = live[r % len(live):] + live[:r % len(live)] if live else []
        for c in order:
            if len(c.times) >= min_calls and sum(c.times) >= budget_ms:
                continue
            try:
                c.times += c.batch(sizes[id(c)])
            except Exception as err:
                c.error = f"failed: {str(err).splitlines()[0][:200]}"
        live = [c for c in live if c.error is None]


def _rows(contestants: list[Contestant]) -> list[dict[str, Any]]:
    rows = []
    for c in contestants:
        row: dict[str, Any] = {"model": c.model, "framework": c.framework, "mode": c.mode, "runtime": c.runtime,
                               "threads_requested": c.threads_requested, "threads": c.threads, "bundle": c.bundle,
                               "native_mode": c.native_mode}
        if c.error or not c.times:
            row["error"] = c.error or "no timed calls"
        else:
            row.update(load_ms=round(c.load_ms or 0, 3), steady=Summary.of(c.times).to_dict())
        rows.append(row)
    native = {(r["model"], r["framework"], r["mode"], r["threads_requested"]): r["steady"]["p50_ms"]
              for r in rows if r["runtime"] == NATIVE and "steady" in r}
    for r in rows:
        base = native.get((r["model"], r["framework"], r["native_mode"], r["threads_requested"]))
        if r["runtime"] != NATIVE and "steady" in r and base:
            r["native_p50_ms"], r["vs_native"] = base, round(r["steady"]["p50_ms"] / base, 3)
    return rows


def run_vs_native(groups: Sequence[Group], models: Sequence[str], threads: Sequence[int], rounds: int = 30,
                  batch_ms: float = 25.0, budget_ms: float = 4000.0, min_calls: int = 5,
                  say: Callable[[str], None] = print) -> dict[str, Any]:
    """{"rows": [...], "environment": {...}}: every browser row with its ratio to native (same thread
    count, same .tflite precision), measured interleaved per thread count."""
    from edgeproof.verify._browser_runtime import BrowserRunner, BrowserRuntimeError

    chosen = [g for g in groups if g.model in models and (g.native or g.web)]
    if not chosen:
        return {"rows": [], "note": f"no .tflite or TF.js bundles of {list(models)}: run `edgeproof deploy "
                                    f"--target pi` and `--target web`"}
    rows: list[dict[str, Any]] = []
    load_start = [round(v, 2) for v in os.getloadavg()]
    try:
        with BrowserRunner() as browser:
            env = browser.environment()
            for n in threads:
                count = sum(len(g.native) * 2 + len(g.web) for g in chosen)
                say(f"  browser vs native, {n} thread(s): loading {count} contestants")
                contestants = _contestants(chosen, n, browser)
                _interleave(contestants, rounds, batch_ms, budget_ms, min_calls)
                for row in _rows(contestants):
                    rows.append(row)
                    say(_line(row))
    except BrowserRuntimeError as err:
        return {"rows": rows, "error": str(err)}
    return {"rows": rows, "environment": env, "rounds": rounds, "batch_ms": batch_ms, "budget_ms": budget_ms,
            "load_average": {"start": load_start, "end": [round(v, 2) for v in os.getloadavg()]}}


def _line(row: dict[str, Any]) -> str:
    head = f"  [{row['threads_requested']}t] {row['model']}/{row['framework']} {row['mode']} {row['runtime']}"
    if "error" in row:
        return f"{head}: {row['error']}"
    ratio = f", {row['vs_native']:.2f}x native" if row.get("vs_native") else ""
    return f"{head}: p50 {row['steady']['p50_ms']:.4g} ms ({row['steady']['n']} calls, {row['threads']} threads){ratio}"
