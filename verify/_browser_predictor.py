"""Canonical inputs in, canonical outputs out, for one artifact in one browser runtime
(edgeproof.verify._browser_runtime): what verification's verdict rows for the browser need."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.runtime._signature import bind, from_artifact, to_artifact

from ._browser_runtime import BrowserRunner, BrowserRuntime

__all__ = ["BrowserPredictor"]

BLOCK_ROWS = 1024  # examples per page call


class BrowserPredictor:
    """One artifact in one browser runtime, fed canonical inputs: {canonical name: array} in, {canonical
    output name: array} out, bound exactly as edgeproof.runtime binds them (runtime/_signature.py), like
    verify's TfjsPredictor. For verdict rows such as "tflite/int8 in LiteRT.js wasm".

    `contract`: the model's spec (`.inputs` / `.outputs` with `.name` and `.layout`); `record`: the
    artifact's conversion record (`.path` under `root`, `.inputs` / `.outputs` tensors). Several
    predictors may share one BrowserRunner (they keep their model loaded; close() unloads it). Raises
    RuntimeUnsupportedError (the runtime's reason) when the runtime cannot run the artifact.
    """

    def __init__(self, browser: BrowserRunner, contract: Any, record: Any, root: Path, runtime: str, threads: int = 1):
        layout = lambda t: getattr(t.layout, "value", t.layout)  # noqa: E731 - a str Enum or a str
        self.inputs = bind([(t.name, layout(t)) for t in contract.inputs], [vars(t) for t in record.inputs])
        self.outputs = bind([(t.name, layout(t)) for t in contract.outputs], [vars(t) for t in record.outputs])
        self.browser = browser
        self.info = browser.load(Path(root) / record.path, runtime, threads, keep_others=True)
        rt = BrowserRuntime(runtime)
        threads = self.info.threads
        self.runtime = (f"{rt.label} {self.info.version or ''} in headless Chromium"
                        + (f" ({threads} thread{'s' * (threads != 1)})" if threads else ""))
        # the batch the loaded model takes (LiteRT.js pins a dynamic batch to the static one), else any
        batches = {int(i["shape"][0]) for i in self.info.inputs if i.get("shape") and int(i["shape"][0]) > 0}
        self.static_batch = batches.pop() if len(batches) == 1 and rt.family == "litertjs" else None

    def _run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.browser.use(self.info)
        raw = self.browser.predict(feed)
        return {b.canonical: from_artifact(b, raw[b.name]) for b in self.outputs}

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {b.name: to_artifact(b, inputs[b.canonical]) for b in self.inputs}
        n = len(next(iter(feed.values())))
        step = self.static_batch
        if step is None or n == step:
            return self._run(feed)
        pad = (-n) % step  # the last step padded with copies of the last row, dropped again below
        if pad:
            feed = {k: np.concatenate([v, np.repeat(v[-1:], pad, axis=0)]) for k, v in feed.items()}
        self.browser.use(self.info)
        block = max(step, BLOCK_ROWS // step * step)  # bounded page calls (base64 over the DevTools protocol)
        parts = [self.browser.predict_split({k: v[i:i + block] for k, v in feed.items()}, step)
                 for i in range(0, n + pad, block)]
        raw = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return {b.canonical: from_artifact(b, raw[b.name][:n]) for b in self.outputs}

    def latency_ms(self, example: dict[str, np.ndarray], repeats: int = 20) -> float:
        """Median ms of one batch-`static_batch` call, timed in the page (binding excluded)."""
        feed = {b.name: to_artifact(b, example[b.canonical]) for b in self.inputs}
        if self.static_batch is not None:
            feed = {k: v[:self.static_batch] for k, v in feed.items()}
        self.browser.use(self.info)
        return float(self.browser.time(feed, warmup=3, repeats=repeats)["median_ms"])

    def close(self) -> None:
        self.browser.drop(self.info)
