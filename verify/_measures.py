"""Numeric parity measures between a reference output and an artifact's output."""
from __future__ import annotations

from typing import Optional

import numpy as np

from edgeproof._spec import Task


def labels(task: Task, outputs: np.ndarray) -> Optional[np.ndarray]:
    """The decision an output stands for (class, sentiment, next token), or None for regression/generation."""
    if task in (Task.CLASSIFICATION, Task.TRANSLATION):
        return outputs.argmax(-1)
    if task is Task.BINARY_CLASSIFICATION:
        return outputs[..., 0] > 0.5
    return None


def agreement(task: Task, reference: np.ndarray, artifact: np.ndarray) -> Optional[float]:
    """Fraction of decisions (top-1 labels) the artifact shares with the reference."""
    a, b = labels(task, reference), labels(task, artifact)
    return None if a is None else float(np.mean(a == b))


def compare(task: Task, reference: np.ndarray, artifact: np.ndarray) -> dict[str, Optional[float]]:
    """max/mean absolute error, cosine similarity of the flattened outputs, top-1 agreement."""
    ref = np.asarray(reference, dtype=np.float64)
    art = np.asarray(artifact, dtype=np.float64)
    if ref.shape != art.shape:
        raise ValueError(f"output shape {list(art.shape)} differs from the reference's {list(ref.shape)}")
    finite = np.isfinite(art)
    if not finite.all():  # NaN / inf: no distance is meaningful (and JSON has no NaN); count them
        return {"max_abs_error": None, "mean_abs_error": None, "cosine": None,
                "non_finite_fraction": float(1.0 - finite.mean()),
                "top1_agreement": 0.0 if labels(task, ref) is not None else None}
    diff = np.abs(ref - art)
    a, b = ref.ravel(), art.ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(a @ b / denom) if denom > 0 else float(np.array_equal(a, b))
    return {"max_abs_error": float(diff.max()), "mean_abs_error": float(diff.mean()), "cosine": cosine,
            "top1_agreement": agreement(task, ref, art)}
