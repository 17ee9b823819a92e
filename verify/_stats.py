"""Statistically sound task-metric verdicts. A metric drop measured on a finite test split is an estimate: a
paired bootstrap gives its 95 % interval (the same resampled examples for the reference and the artifact), an
exact McNemar test says whether the decisions that flipped lean one way, and per-class counts say where.

The decision against a budget: pass when the whole interval is within the budget, fail when the whole interval
breaks it, and `inconclusive` when the budget lies inside the interval: the test split is too small to tell,
and the verdict says about how many examples would decide (the interval narrows as 1/sqrt(n)).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from edgeproof._metrics import Samples

RESAMPLES = 1000  # bootstrap resamples: the 2.5/97.5 percentiles move by < 0.1 of the interval's width beyond this
CONFIDENCE = 0.95
SEED = 0


@dataclass
class DropStats:
    drop: float  # point estimate, in the metric's unit (positive = worse)
    low: float  # 95 % paired-bootstrap interval of the drop
    high: float
    examples: int
    resamples: int
    decision: str = "pass"  # pass | fail | inconclusive, against the budget
    needed_examples: Optional[int] = None  # inconclusive: about how many examples would decide
    mcnemar: Optional[dict] = None  # {"worse": artifact wrong where the reference was right, "better": ..., "p": ...}
    per_class: Optional[dict] = field(default=None)  # {label: {"worse": n, "better": n}} for labels that changed

    def to_dict(self) -> dict:
        return asdict(self)


def mcnemar_exact(worse: int, better: int) -> float:
    """Two-sided exact McNemar p-value: the flipped decisions under H0 are Binomial(worse + better, 1/2)."""
    n = worse + better
    if n == 0:
        return 1.0
    k = min(worse, better)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2.0 * tail)


def paired_bootstrap(reference: Samples, artifact: Samples, higher_is_better: bool,
                     resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float, float]:
    """(drop, low, high): the drop on all examples and its percentile interval over paired resamples."""
    n = len(reference.values)
    sign = 1.0 if higher_is_better else -1.0
    drop = sign * (reference.aggregate(reference.values) - artifact.aggregate(artifact.values))
    rng = np.random.default_rng(seed)
    drops = np.empty(resamples)
    for b in range(resamples):
        idx = rng.integers(0, n, n)
        drops[b] = sign * (reference.aggregate(reference.values[idx]) - artifact.aggregate(artifact.values[idx]))
    alpha = (1.0 - CONFIDENCE) / 2
    low, high = np.quantile(drops, [alpha, 1.0 - alpha])
    return float(drop), float(low), float(high)


def _flips(reference: Samples, artifact: Samples) -> tuple[Optional[dict], Optional[dict]]:
    if reference.decisions is None or artifact.decisions is None:
        return None, None
    worse_mask = (reference.decisions == 1) & (artifact.decisions == 0)
    better_mask = (reference.decisions == 0) & (artifact.decisions == 1)
    worse, better = int(worse_mask.sum()), int(better_mask.sum())
    test = {"worse": worse, "better": better, "p": mcnemar_exact(worse, better)}
    if reference.classes is None:
        return test, None
    per_class = {}
    for label in np.unique(reference.classes[worse_mask | better_mask]):
        rows = reference.classes == label
        per_class[str(label)] = {"worse": int((worse_mask & rows).sum()), "better": int((better_mask & rows).sum())}
    return test, per_class


def judge_drop(reference: Samples, artifact: Samples, higher_is_better: bool, budget: float,
               resamples: int = RESAMPLES) -> DropStats:
    """The drop, its interval, the flips, and the decision against `budget` (see the module docstring)."""
    n = len(reference.values)
    drop, low, high = paired_bootstrap(reference, artifact, higher_is_better, resamples)
    stats = DropStats(drop, low, high, n, resamples)
    stats.mcnemar, stats.per_class = _flips(reference, artifact)
    if not np.isfinite(drop) or low > budget:
        stats.decision = "fail"
    elif high <= budget:
        stats.decision = "pass"
    else:
        stats.decision = "inconclusive"
        margin = abs(budget - drop)
        half_width = (high - low) / 2
        stats.needed_examples = int(math.ceil(n * (half_width / margin) ** 2)) if margin > 0 else None
    return stats
