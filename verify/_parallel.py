"""Verify several models (reference and users' own alike) at once, one worker process per model in flight.

Verification is mostly single-threaded work (a TF.js wasm runner in Node, Python glue, greedy
decoding one step at a time), so on a 2-core machine two pairs verified side by side, each with one
thread, take about half the time of one after the other with two threads. Each worker is a fresh
(spawned) process whose TensorFlow, PyTorch and TFLite thread pools are sized before they start."""
from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Optional, Sequence

from edgeproof import _log
from edgeproof._orphan import exit_with_parent
from edgeproof._spec import Task
from edgeproof.convert import ModelFolder
from edgeproof.errors import EdgeproofError

from ._api import ModelVerification, load_verdicts, verify_source
from ._budgets import parse_overrides

# With no earlier parity.json to go by, the slowest kinds of model start first so that the tail,
# when one worker idles while the other finishes, is a short job.
_TASK_COST_RANK = {Task.TRANSLATION: 0, Task.BINARY_CLASSIFICATION: 1, Task.CLASSIFICATION: 2,
                   Task.GENERATION: 3, Task.REGRESSION: 4, Task.CUSTOM: 5}


@dataclass(frozen=True)
class VerifyOptions:
    artifacts: str
    targets: Optional[Sequence[str]] = None
    modes: Optional[Sequence[str]] = None
    data_dir: Optional[str] = None
    tfjs_backend: str = "wasm"
    keras_custom: Sequence[str] = ()  # module:Class of custom Keras layers users' models need to load
    budgets: Sequence[str] = ()  # --budget MODE.FIELD=VALUE overrides
    browsers: Optional[Sequence[str]] = None  # browser runtimes for the .tflite rows; None: all, (): none


def default_jobs() -> int:
    """One verification per core, at most 4 (each worker holds TensorFlow, PyTorch and a dataset)."""
    return max(1, min(os.cpu_count() or 1, 4))


def verify_models(folders: list[ModelFolder], options: VerifyOptions,
                  jobs: Optional[int] = None) -> list[ModelVerification]:
    """verify_folder() for every model, `jobs` at a time; results in the order of `folders`. With one job
    (or one model) everything runs in this process."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, not {jobs}")
    jobs = min(jobs, len(folders))
    if jobs <= 1:
        return [verify_folder(folder, options) for folder in folders]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    order = sorted(range(len(folders)), key=lambda i: _expected_cost(folders[i]))
    _log.detail(f"verifying {len(folders)} models, {jobs} at a time ({threads} thread{'s' * (threads > 1)} each)")
    results: list[Optional[ModelVerification]] = [None] * len(folders)
    context = get_context("spawn")
    lines = context.Queue()  # the workers' progress lines, printed here as they come (and capturable)
    printer = threading.Thread(target=_print_lines, args=(lines,), daemon=True)
    printer.start()
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_worker,
                                 initargs=(threads, lines)) as pool:
            futures = {pool.submit(_verify_in_worker, folders[i], options, threads): i for i in order}
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            for future in done:
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    folder = folders[futures[future]]
                    raise EdgeproofError(f"the worker verifying {folder.label} died (out of memory?); verify it alone "
                                         f"with `{folder.verify_hint()} --jobs 1`") from error
                if error is not None:
                    raise error
                results[futures[future]] = future.result()
    finally:
        lines.put(None)
        printer.join(timeout=10)
    return [r for r in results if r is not None]


def verify_folder(folder: ModelFolder, options: VerifyOptions, threads: Optional[int] = None) -> ModelVerification:
    """One model verified from its folder (its Source opened again), report.md and plots rewritten."""
    from edgeproof.convert import import_custom_objects

    from ._model_report import write_model_report

    custom = import_custom_objects(options.keras_custom) if options.keras_custom else None
    source = folder.open_source(data_dir=options.data_dir, custom_objects=custom)
    kwargs = {} if threads is None else {"num_threads": threads}
    if options.browsers is not None:
        kwargs["browsers"] = tuple(options.browsers)
    verification = verify_source(source, folder.root, targets=options.targets, modes=options.modes,
                                 tfjs_backend=options.tfjs_backend, say=_worker_say,
                                 budgets=parse_overrides(options.budgets), **kwargs)
    write_model_report(folder.root, source, verification)
    return verification


def _verify_in_worker(folder: ModelFolder, options: VerifyOptions, threads: int) -> ModelVerification:
    """verify_folder() in a worker: the result crosses back by pickle, so the in-process baseline (the source's
    evaluation set, which holds its decode functions) stays behind; nothing the caller reads needs it."""
    result = verify_folder(folder, options, threads)
    result.baseline = None
    return result


def verify_pairs(pairs, options: VerifyOptions, jobs: Optional[int] = None) -> list[ModelVerification]:
    """verify_models() for (reference model name, framework) pairs."""
    from edgeproof.convert import find_models

    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs must be at least 1, not {jobs}")
    by_key = {(f.name, f.framework): f for f in find_models(options.artifacts, [n for n, _ in pairs])}
    return verify_models([by_key[(name, getattr(fw, "value", fw))] for name, fw in pairs], options, jobs)


_lines = None  # in a worker: the queue its progress lines go to


def _worker_say(*parts, **_) -> None:
    text = " ".join(str(p) for p in parts)
    if _lines is None:
        _log.detail(text)
    else:
        _lines.put(text)


def _print_lines(lines) -> None:
    while True:
        text = lines.get()
        if text is None:
            return
        _log.detail(text)


def _start_worker(threads: int, lines) -> None:
    """Runs first in each worker, before TensorFlow or PyTorch is imported there: thread pools sized, and
    progress lines sent to the parent (which prints them, so they read as one log)."""
    global _lines
    _lines = lines
    exit_with_parent()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS"):
        os.environ[var] = str(threads)


def _expected_cost(folder: ModelFolder) -> tuple[float, int]:
    """Sort key, most expensive first: the seconds the last verification took, else the task's rank."""
    try:
        _, verdicts = load_verdicts(folder.root)
        seconds = sum(v.verify_seconds or 0.0 for v in verdicts)
        task = folder.contract().task
    except (OSError, ValueError, KeyError, TypeError, EdgeproofError):  # an unreadable file only loses the hint
        seconds, task = 0.0, Task.CUSTOM
    return (-seconds, _TASK_COST_RANK.get(task, len(_TASK_COST_RANK)))

