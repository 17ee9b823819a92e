"""Verify several (model, framework) pairs at once, one worker process per pair in flight.

Verification is mostly single-threaded work (a TF.js wasm runner in Node, Python glue, greedy
decoding one step at a time), so on a 2-core machine two pairs verified side by side, each with one
thread, take about half the time of one after the other with two threads. Each worker is a fresh
(spawned) process whose TensorFlow, PyTorch and TFLite thread pools are sized before they start."""
from __future__ import annotations

import os
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Optional, Sequence

from edgeproof._registry import get_spec
from edgeproof._spec import Framework, Task
from edgeproof.errors import EdgeproofError

from ._api import ModelVerification, load_verdicts, verify

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


def default_jobs() -> int:
    """One verification per core, at most 4 (each worker holds TensorFlow, PyTorch and a dataset)."""
    return max(1, min(os.cpu_count() or 1, 4))


def verify_pairs(pairs: list[tuple[str, Framework]], options: VerifyOptions,
                 jobs: Optional[int] = None) -> list[ModelVerification]:
    """verify() for every pair, `jobs` at a time; results in the order of `pairs`. With one job (or
    one pair) everything runs in this process, as verify() alone does."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, not {jobs}")
    jobs = min(jobs, len(pairs))
    if jobs <= 1:
        return [_verify_one(name, framework, options) for name, framework in pairs]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    order = sorted(range(len(pairs)), key=lambda i: _expected_cost(pairs[i], options.artifacts))
    print(f"verifying {len(pairs)} models, {jobs} at a time ({threads} thread{'s' * (threads > 1)} each)",
          flush=True)
    results: list[Optional[ModelVerification]] = [None] * len(pairs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_limit_threads,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(_verify_one, *pairs[i], options, threads): i for i in order}
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            error = future.exception()
            if isinstance(error, BrokenProcessPool):
                name, framework = pairs[futures[future]]
                raise EdgeproofError(f"the worker verifying {name}/{framework.value} died (out of memory?); "
                                     f"verify it alone with `edgeproof verify --model {name} --framework "
                                     f"{framework.value} --jobs 1`") from error
            if error is not None:
                raise error
            results[futures[future]] = future.result()
    return [r for r in results if r is not None]


def _verify_one(name: str, framework: Framework, options: VerifyOptions,
                threads: Optional[int] = None) -> ModelVerification:
    kwargs = {} if threads is None else {"num_threads": threads}
    return verify(name, framework, artifacts=options.artifacts, targets=options.targets, modes=options.modes,
                  data_dir=options.data_dir, tfjs_backend=options.tfjs_backend, **kwargs)


def _limit_threads(threads: int) -> None:
    """Runs first in each worker, before TensorFlow or PyTorch is imported there."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS"):
        os.environ[var] = str(threads)


def _expected_cost(pair: tuple[str, Framework], artifacts: str) -> tuple[float, int]:
    """Sort key, most expensive first: the seconds the last verification took, else the task's rank."""
    from edgeproof.train import model_dir

    name, framework = pair
    try:
        _, verdicts = load_verdicts(model_dir(artifacts, name, framework))
        seconds = sum(v.verify_seconds or 0.0 for v in verdicts)
    except (OSError, ValueError, KeyError, TypeError):  # an unreadable parity.json only loses the hint
        seconds = 0.0
    return (-seconds, _TASK_COST_RANK.get(get_spec(name).task, len(_TASK_COST_RANK)))

