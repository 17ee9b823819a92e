"""Numeric parity measures between a reference output and an artifact's output."""
from __future__ import annotations

from typing import Optional, Union

import numpy as np

from edgeproof._metrics import agreement, as_rule
from edgeproof._spec import Decision, Task

Rule = Union[Decision, Task]


def compare(rule: Rule, reference: np.ndarray, artifact: np.ndarray, threshold: float = 0.5) -> dict[str, Optional[float]]:
    """max/mean absolute error, cosine similarity of the flattened outputs, top-1 agreement (of the
    decisions `rule` makes: a Decision, or a Task standing for its usual one)."""
    rule = as_rule(rule)
    ref = np.asarray(reference, dtype=np.float64)
    art = np.asarray(artifact, dtype=np.float64)
    if ref.shape != art.shape:
        raise ValueError(f"output shape {list(art.shape)} differs from the reference's {list(ref.shape)}")
    finite = np.isfinite(art)
    if not finite.all():  # NaN / inf: no distance is meaningful (and JSON has no NaN); count them
        return {"max_abs_error": None, "mean_abs_error": None, "cosine": None,
                "non_finite_fraction": float(1.0 - finite.mean()),
                "top1_agreement": 0.0 if rule is not Decision.NONE else None}
    diff = np.abs(ref - art)
    a, b = ref.ravel(), art.ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(a @ b / denom) if denom > 0 else float(np.array_equal(a, b))
    return {"max_abs_error": float(diff.max()) if diff.size else 0.0,
            "mean_abs_error": float(diff.mean()) if diff.size else 0.0, "cosine": cosine,
            "top1_agreement": agreement(ref, art, rule, threshold)}


def worst(per_output: dict[str, dict]) -> dict:
    """One probe summary over every output: the largest errors, the smallest cosine (one output: itself)."""
    rows = list(per_output.values())
    if len(rows) == 1:
        return dict(rows[0])
    if any(r.get("non_finite_fraction") for r in rows):
        return {"max_abs_error": None, "mean_abs_error": None, "cosine": None,
                "non_finite_fraction": max(r.get("non_finite_fraction") or 0.0 for r in rows), "top1_agreement": None}
    return {"max_abs_error": max(r["max_abs_error"] for r in rows),
            "mean_abs_error": float(np.mean([r["mean_abs_error"] for r in rows])),
            "cosine": min(r["cosine"] for r in rows), "top1_agreement": rows[0].get("top1_agreement")}
