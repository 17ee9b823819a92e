"""Canonical inputs in, canonical outputs out, for one artifact in one browser runtime
(edgeproof.verify._browser_runtime): what verification's verdict rows for the browser need."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgeproof.runtime._signature import bind, from_artifact, to_artifact

from ._browser_runtime import BrowserRunner, BrowserRuntime

__all__ = ["BrowserPredictor"]

BLOCK_ROWS = 1024  # examples per page call at most
# Bytes of inputs plus outputs per page call at most. They cross the DevTools protocol as base64 strings in one
# JSON message; with rows alone as the bound, the default translator's 1024 rows of [32, 8000] float32 logits made
# a 1.3 GB reply (1.7 GB of base64, past V8's string limit), the Playwright driver died ("Playwright connection
# closed") and every later browser row of the run was lost.
BLOCK_BYTES = 32 << 20


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

    def __call__(self, inputs: dict[str, np.ndarray], position: Optional[int] = None) -> dict[str, np.ndarray]:
        """Canonical outputs on canonical `inputs`; with `position`, only that index of axis 1 of every output of
        rank 3 or more (what greedy decoding reads at that step: 1/T of the logits crosses the protocol)."""
        feed = {b.name: to_artifact(b, inputs[b.canonical]) for b in self.inputs}
        n = len(next(iter(feed.values())))
        step = self.static_batch
        block = self.block_rows(feed, step or 1, position)
        if position is None and n <= block and (step is None or n == step):
            return self._run(feed)
        pad = (-n) % (step or 1)  # the last step padded with copies of the last row, dropped again below
        if pad:
            feed = {k: np.concatenate([v, np.repeat(v[-1:], pad, axis=0)]) for k, v in feed.items()}
        self.browser.use(self.info)
        blocks = [{k: v[i:i + block] for k, v in feed.items()} for i in range(0, n + pad, block)]
        parts = [self.browser.predict_split(b, step or len(next(iter(b.values()))), position) for b in blocks]
        raw = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return {b.canonical: from_artifact(b, raw[b.name][:n]) for b in self.outputs}

    def block_rows(self, feed: dict[str, np.ndarray], step: int, position: Optional[int] = None) -> int:
        """Rows per page call: a multiple of `step`, at most BLOCK_ROWS, and inputs plus outputs within
        BLOCK_BYTES (output rows sized from the loaded model's shapes, 4 bytes an element, unknown dims as 1;
        with `position`, axis 1 of rank-3+ outputs counts once)."""
        def row_elements(shape: list) -> int:
            dims = [abs(int(d)) or 1 for d in (shape or [1])[1:]]
            return int(np.prod(dims[1:] if position is not None and len(dims) >= 2 else dims))

        row_in = sum(v[:1].nbytes for v in feed.values())
        row_out = sum(4 * row_elements(o.get("shape")) for o in self.info.outputs)
        rows = min(BLOCK_ROWS, BLOCK_BYTES // max(1, row_in + row_out))
        return max(step, rows // step * step)

    def latency_ms(self, example: dict[str, np.ndarray], repeats: int = 20) -> float:
        """Median ms of one batch-`static_batch` call, timed in the page (binding excluded)."""
        feed = {b.name: to_artifact(b, example[b.canonical]) for b in self.inputs}
        if self.static_batch is not None:
            feed = {k: v[:self.static_batch] for k, v in feed.items()}
        self.browser.use(self.info)
        return float(self.browser.time(feed, warmup=3, repeats=repeats)["median_ms"])

    def close(self) -> None:
        self.browser.drop(self.info)
