"""Budgets that scale with the model. A ParityBudget's max_abs_error is per unit of the output's scale, and
never below a multiple of the source model's own numerical noise floor: the difference between two
legitimate float32 evaluations of the source itself (onnxruntime with and without graph optimisations,
torch eager vs its ONNX export, float32 vs float64, Keras eager vs its traced graph), measured on the probes
at conversion and recorded in conversion.json.

Why: an absolute 1e-4 rejects honest float noise of a deep network (a text detector's fp32 TFLite at 1.6e-4,
while onnxruntime disagrees with itself by more than 1e-5 on the same graph), and is below float32's
resolution for outputs in the thousands. A broken artifact (perturbed weights, a wrong layout, garbage
int8 calibration) misses by orders of magnitude more than either allowance, see tests/test_budgets.py.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Mapping, Optional

import numpy as np

from edgeproof._quant import QuantMode
from edgeproof._spec import ParityBudget

# An artifact's error against the float32 reference is the difference of two float32 evaluations of the same
# function (its runtime's, the source's); TFLite's and TF.js' kernels accumulate in other orders and
# approximate some activations, so their difference may exceed the source's own two-way disagreement by a
# few times. 10x leaves that margin and stays orders of magnitude below what a real defect costs.
NOISE_FACTOR = 10.0


@dataclass(frozen=True)
class OutputBudget:
    """The max-abs-error allowance of one output, and where it came from."""

    max_abs_error: float
    scale: float  # max(1, largest |reference value| on the probes)
    noise_floor: Optional[float]  # the source's own disagreement with itself (None: not measured)
    basis: str  # "scale" | "noise floor" | "fixed"


def output_scale(reference: np.ndarray) -> float:
    ref = np.asarray(reference, np.float64)
    finite = ref[np.isfinite(ref)]
    return max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0


def output_budget(budget: ParityBudget, reference: np.ndarray, noise_floor: Optional[float]) -> OutputBudget:
    scale = output_scale(reference)
    if not budget.scaled:
        return OutputBudget(budget.max_abs_error, scale, noise_floor, "fixed")
    by_scale = budget.max_abs_error * scale
    by_noise = NOISE_FACTOR * noise_floor if noise_floor else 0.0
    if by_noise > by_scale:
        return OutputBudget(by_noise, scale, noise_floor, "noise floor")
    return OutputBudget(by_scale, scale, noise_floor, "scale")


def effective(budget: ParityBudget, allowance: OutputBudget) -> ParityBudget:
    """The budget with this output's max-abs-error allowance (every other field as it was)."""
    return replace(budget, max_abs_error=allowance.max_abs_error)


def describe(allowances: Mapping[str, OutputBudget]) -> dict:
    return {name: asdict(a) for name, a in allowances.items()}


def parse_overrides(values) -> dict[QuantMode, dict[str, float]]:
    """`--budget fp32.max_abs_error=1e-3` / `int8.max_metric_drop=2` / `*.min_cosine=0.99` (repeatable)
    -> {mode: {field: value}}. Unknown modes or fields are a ValueError naming the choices."""
    fields = {"max_abs_error", "min_cosine", "max_metric_drop", "min_top1_agreement"}
    out: dict[QuantMode, dict[str, float]] = {}
    for raw in values or ():
        key, sep, number = str(raw).partition("=")
        mode_name, dot, field_name = key.strip().partition(".")
        if not sep or not dot or field_name not in fields:
            raise ValueError(f"--budget {raw!r}: expected MODE.FIELD=VALUE with FIELD one of {sorted(fields)}, "
                             f"e.g. --budget fp32.max_abs_error=1e-3")
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"--budget {raw!r}: {number!r} is not a number") from None
        if not np.isfinite(value):
            raise ValueError(f"--budget {raw!r}: the value must be finite")
        modes = list(QuantMode) if mode_name == "*" else [_mode(mode_name, raw)]
        for mode in modes:
            out.setdefault(mode, {})[field_name] = value
    return out


def _mode(name: str, raw: str) -> QuantMode:
    try:
        return QuantMode(name)
    except ValueError:
        raise ValueError(f"--budget {raw!r}: unknown precision {name!r}; choose one of "
                         f"{[m.value for m in QuantMode]} or *") from None


def apply_overrides(budgets: Mapping[QuantMode, ParityBudget],
                    overrides: Mapping[QuantMode, Mapping[str, float]]) -> dict[QuantMode, ParityBudget]:
    """Budgets with the overridden fields replaced; an overridden max_abs_error is absolute (not scaled)."""
    merged = dict(budgets)
    for mode, fields in overrides.items():
        if mode in merged:
            extra = {"scaled": False} if "max_abs_error" in fields else {}
            merged[mode] = replace(merged[mode], **fields, **extra)
    return merged
