"""TaskData: the arrays a model trains and is evaluated on, framework-neutral (canonical layout)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


@dataclass
class TaskData:
    x_train: dict[str, np.ndarray]
    y_train: Optional[np.ndarray]
    x_test: dict[str, np.ndarray]
    y_test: Optional[np.ndarray]
    # JSON-serializable preprocessing that a checkpoint (and later a bundle) carries.
    preprocessing: dict[str, Any] = field(default_factory=dict)
    # Task-specific extras for evaluation (e.g. raw test sentences and references).
    extras: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def n_train(self) -> int:
        return len(next(iter(self.x_train.values())))

    @property
    def n_test(self) -> int:
        return len(next(iter(self.x_test.values())))


def subset(arrays: dict[str, np.ndarray], labels: Optional[np.ndarray], n: Optional[int], seed: int):
    """A seeded random subset of n rows (all rows when n is None or larger)."""
    total = len(next(iter(arrays.values())))
    if n is None or n >= total:
        return arrays, labels
    idx = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    return {k: v[idx] for k, v in arrays.items()}, (None if labels is None else labels[idx])
