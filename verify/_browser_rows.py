"""Verdict rows for the .tflite artifacts in a browser runtime (LiteRT.js wasm in headless Chromium): the same
probes, evaluation set and budgets as every other verdict, judged by the same code, stored beside the native
rows in parity.json as `tflite/<mode> in litertjs-wasm`. `deploy --target web` ships a .tflite for LiteRT.js
only when its browser row passed; where LiteRT.js cannot run an artifact, the row is `unsupported` with
LiteRT.js's own reason."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgeproof._quant import Target
from edgeproof.convert._artifact import ArtifactRecord
from edgeproof.errors import EdgeproofError
from edgeproof.runtime._decode import greedy_decode_steps

from ._files import artifact_files
from ._runners import Arrays, ArtifactPredictor
from ._verdict import ArtifactVerdict, Status

BROWSER_RUNTIMES = ("litertjs-wasm",)


class _InBrowser(ArtifactPredictor):
    """A BrowserPredictor with the ArtifactPredictor interface (decoding, latency) verify's judge uses."""

    def __init__(self, predictor: Any, first: str):
        self.predictor, self.first, self.runtime = predictor, first, predictor.runtime

    def __call__(self, inputs: Arrays) -> Arrays:
        return self.predictor(inputs)

    def decode(self, source_ids: np.ndarray, bos: int, eos: int) -> np.ndarray:
        """Greedy decoding as the native rows do, each step's logits alone sent back from the page."""
        return greedy_decode_steps(lambda feeds, t: self.predictor(feeds, position=t)[self.first], source_ids, bos, eos)

    def latency_ms(self, example: Arrays, repeats: int = 20) -> float:
        return self.predictor.latency_ms(example, repeats)


def _row(native: ArtifactVerdict, runtime: str) -> ArtifactVerdict:
    return replace(native, browser=runtime, status=Status.UNSUPPORTED, reason=None, runtime=None, probe={},
                   failures=[], details={}, artifact_metric=None, metric_drop=None, test_agreement=None,
                   latency_ms=None, verify_seconds=None)


def browser_rows(contract: Any, records: Sequence[ArtifactRecord], natives: Sequence[ArtifactVerdict], root: Path,
                 run: Callable, judge: Callable, say: Callable, runtimes: Sequence[str] = BROWSER_RUNTIMES
                 ) -> list[ArtifactVerdict]:
    """One row per converted .tflite and browser runtime (a None in `natives`: no rows for that record).
    `run(predictor)` and `judge(verdict, record, outputs)` are verify_source's own."""
    from ._browser_predictor import BrowserPredictor
    from ._browser_runtime import BrowserRunner, BrowserRuntimeError, RuntimeUnsupportedError

    pairs = [(r, v) for r, v in zip(records, natives)
             if v is not None and r.target == Target.TFLITE.value and r.status == "ok"]
    if not pairs:
        return []
    rows: list[ArtifactVerdict] = []
    try:
        with BrowserRunner() as browser:
            for runtime in runtimes:
                for record, native in pairs:
                    rows.append(_one(browser, BrowserPredictor, RuntimeUnsupportedError, contract, record, native,
                                     root, runtime, run, judge, say))
    except BrowserRuntimeError as err:  # no Chromium / Playwright here: every row says why
        for runtime in runtimes:
            for record, native in pairs:
                if not any(r.cell == native.cell and r.browser == runtime for r in rows):
                    row = _row(native, runtime)
                    row.reason = (f"Chromium stopped during the browser rows ({len(rows)} done): {err}" if rows
                                  else f"the browser could not be started: {err}")
                    rows.append(row)
        say(f"   browser rows: unsupported ({err})", flush=True)
    return rows


def _one(browser, predictor_class, unsupported_error, contract, record, native, root, runtime, run, judge,
         say) -> ArtifactVerdict:
    row = _row(native, runtime)
    start = time.perf_counter()
    row.files = artifact_files(root, record.path)
    predictor, failed = None, True
    try:
        predictor = predictor_class(browser, contract, record, root, runtime)
        wrapped = _InBrowser(predictor, contract.outputs[0].name)
        row.runtime = wrapped.runtime
        measured = judge(row, record, run(wrapped))
        row.verify_seconds = round(time.perf_counter() - start, 2)
        say(f"   {row.key}: {row.summary()} ({measured}, {row.verify_seconds:.1f} s, {row.runtime})", flush=True)
        failed = False
    except unsupported_error as err:
        row.reason = f"{runtime}: {err.reason}"
        say(f"   {row.key}: unsupported: {row.reason}", flush=True)
    except (EdgeproofError, ValueError, RuntimeError, OSError, np.linalg.LinAlgError) as err:
        row.status, row.reason = Status.FAIL, f"could not run in {runtime}: {type(err).__name__}: {str(err)[:300]}"
        say(f"   {row.key}: FAIL ({row.reason})", flush=True)
    finally:
        if predictor is not None:
            _close(predictor, quietly=failed)
    return row


def _close(predictor, quietly: bool) -> None:
    """Unload the row's model. After an error, a failing unload (the browser died with that error) must not
    replace the error that explains it."""
    try:
        predictor.close()
    except Exception:  # noqa: BLE001
        if not quietly:
            raise
