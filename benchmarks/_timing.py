"""Timing primitives: per-call timings, medians and percentiles, and the interleaved runner.

Pure Python + time: no framework imports. `interleave` runs several contestants round-robin in
small batches of timed calls, so that a slow phase of the machine (another job on the cores) hits
every contestant alike and the ratios between them stay meaningful.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

Call = Callable[[], Any]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Summary:
    """Steady-state statistics of per-call times, in milliseconds."""

    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float

    @classmethod
    def of(cls, times_ms: Sequence[float]) -> "Summary":
        if not times_ms:
            raise ValueError("no timings to summarize")
        return cls(len(times_ms), statistics.median(times_ms), percentile(times_ms, 99),
                   statistics.fmean(times_ms), min(times_ms))

    def to_dict(self) -> dict[str, float]:
        return {"n": self.n, "p50_ms": _round(self.p50_ms), "p99_ms": _round(self.p99_ms),
                "mean_ms": _round(self.mean_ms), "min_ms": _round(self.min_ms)}


def _round(ms: float) -> float:
    """Four significant digits: enough for a microsecond model and for a 100 ms one."""
    return float(f"{ms:.4g}")


def ratio(peer_ms: Optional[float], ours_ms: Optional[float]) -> Optional[float]:
    """peer time / our time (> 1: ours is faster); None when either is missing or zero."""
    if peer_ms is None or ours_ms is None or ours_ms <= 0 or peer_ms <= 0:
        return None
    return peer_ms / ours_ms


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(fn(), wall milliseconds)."""
    start = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - start) * 1e3


@dataclass
class Plan:
    """How long to measure: `rounds` round-robin rounds, each giving every contestant about
    `batch_ms` of back-to-back timed calls (at least one, at most `max_batch`), after warm-up."""

    rounds: int = 30
    batch_ms: float = 25.0
    max_batch: int = 200
    warmup_calls: int = 3
    warmup_ms: float = 100.0

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {self.rounds}")
        if self.batch_ms <= 0:
            raise ValueError(f"batch_ms must be positive, got {self.batch_ms}")


@dataclass
class Interleaved:
    """Per-contestant timings from one interleaved run, and what failed."""

    times_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def summary(self, name: str) -> Optional[Summary]:
        times = self.times_ms.get(name)
        return Summary.of(times) if times else None


def _warm(call: Call, plan: Plan) -> float:
    """Warm a contestant up; return its estimated time per call in ms."""
    start = time.perf_counter()
    n = 0
    while n < plan.warmup_calls or (time.perf_counter() - start) * 1e3 < plan.warmup_ms:
        call()
        n += 1
        if n >= 1000:
            break
    # a cleaner estimate than the warm-up mean, which includes one-off costs
    _, one = timed(call)
    return max(one, 1e-4)


def interleave(calls: Mapping[str, Call], plan: Plan,
               progress: Optional[Callable[[str], None]] = None) -> Interleaved:
    """Time every call of `calls` round-robin; each round rotates the order.

    A contestant that raises is dropped from later rounds and its error kept (the others go on).
    """
    result = Interleaved()
    batch: dict[str, int] = {}
    for name, call in calls.items():
        try:
            estimate = _warm(call, plan)
        except Exception as err:  # a broken contestant must not stop the others
            result.errors[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            continue
        batch[name] = max(1, min(plan.max_batch, int(plan.batch_ms / estimate)))
        result.times_ms[name] = []
    names = list(batch)
    clock = time.perf_counter
    for r in range(plan.rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for name in order:
            if name in result.errors:
                continue
            call, times = calls[name], result.times_ms[name]
            try:
                for _ in range(batch[name]):
                    start = clock()
                    call()
                    times.append((clock() - start) * 1e3)
            except Exception as err:
                result.errors[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        if progress and r == plan.rounds - 1:
            for name in names:
                s = result.summary(name)
                if s:
                    progress(f"{name}: p50 {s.p50_ms:.4g} ms, p99 {s.p99_ms:.4g} ms ({s.n} calls)")
    for name in list(result.errors):
        result.times_ms.pop(name, None)
    return result
