"""The per-artifact loop of `verify_source()`: pick the requested cells, record the ones that were never
converted, run each artifact in its own runtime, turn an artifact that cannot run into a failed verdict,
time it, and print one line per artifact. What is measured and judged is the caller's."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from edgeproof._quant import QuantMode, Target
from edgeproof.convert._artifact import ArtifactRecord
from edgeproof.errors import EdgeproofError

from ._files import artifact_files
from ._verdict import ArtifactVerdict, Status

Say = Callable[..., None]


def select_records(records: list[ArtifactRecord], targets: Optional[Iterable[str]],
                   modes: Optional[Iterable[str]]) -> list[ArtifactRecord]:
    """The records of the requested targets and precisions (None: all); unknown names raise ValueError."""
    wanted_targets = None if targets is None else {Target(t).value for t in targets}
    wanted_modes = None if modes is None else {QuantMode(m).value for m in modes}
    return [r for r in records if (wanted_targets is None or r.target in wanted_targets)
            and (wanted_modes is None or r.mode in wanted_modes)]


def verify_each(records: list[ArtifactRecord], root: Path, *, new_verdict: Callable[[ArtifactRecord], ArtifactVerdict],
                predictor: Callable[[ArtifactRecord, Any], Any], run: Callable[[Any], Any],
                judge: Callable[[ArtifactVerdict, ArtifactRecord, Any], str], tfjs_backend: str,
                say: Say) -> list[ArtifactVerdict]:
    """One verdict per record, in order.

    new_verdict(record): the verdict before measuring (status unsupported).
    predictor(record, tfjs_runner): the artifact loaded in its runtime (has `.runtime`; tfjs_runner is
      a TfjsNodeRunner for TF.js records, None for TFLite).
    run(predictor): everything the judge needs; an error here makes the verdict a failure "could not
      run in its runtime".
    judge(verdict, record, outputs): fills in the measures, failures and status; returns the words
      that go in the printed line after the verdict (e.g. "accuracy 98.6 vs 98.6, max error 2e-07")."""
    verdicts = []
    with contextlib.ExitStack() as stack:
        tfjs_runner = None
        for record in records:
            verdict = new_verdict(record)
            verdicts.append(verdict)
            if record.status != "ok":
                verdict.reason = record.reason or "not converted"
                say(f"   {verdict.key}: unsupported: {verdict.reason}", flush=True)
                continue
            start = time.perf_counter()
            verdict.files = artifact_files(root, record.path)
            try:
                if record.target == Target.TFJS.value and (tfjs_runner is None or not tfjs_runner.alive):
                    # a new runner after one was killed (a timed-out request), so one artifact's failure stays its own
                    from ._tfjs_node import TfjsNodeRunner

                    tfjs_runner = stack.enter_context(TfjsNodeRunner(backend=tfjs_backend))
                loaded = predictor(record, tfjs_runner if record.target == Target.TFJS.value else None)
                verdict.runtime = loaded.runtime
                outputs = run(loaded)
            except (EdgeproofError, ValueError, RuntimeError, OSError) as err:  # unrunnable artifact: a failed verdict
                verdict.status = Status.FAIL
                verdict.reason = f"could not run in its runtime: {type(err).__name__}: {str(err).splitlines()[0][:300]}"
                verdict.verify_seconds = round(time.perf_counter() - start, 2)
                say(f"   {verdict.key}: FAIL ({verdict.reason})", flush=True)
                continue
            measured = judge(verdict, record, outputs)
            verdict.verify_seconds = round(time.perf_counter() - start, 2)
            say(f"   {verdict.key}: {verdict.summary()} ({measured}, {verdict.verify_seconds:.1f} s, "
                f"{verdict.runtime})", flush=True)
    return verdicts
