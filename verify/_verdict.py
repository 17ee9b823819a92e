"""Verdicts: an artifact's measurements checked against its ParityBudget, failures as typed errors."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Optional

from edgeproof._metrics import metric_drop  # noqa: F401 - part of this module's API
from edgeproof._spec import ParityBudget
from edgeproof.errors import ParityError


def _num(value: Optional[float]) -> str:
    return "n/a (not finite)" if value is None or value != value else f"{value:.4g}"


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    UNSUPPORTED = "unsupported"
    # The test split is too small to tell whether the metric drop is within the budget (its 95 % interval
    # contains the budget): not a pass, so the gate refuses it unless told otherwise.
    INCONCLUSIVE = "inconclusive"


def check_budget(artifact: str, output: str, budget: ParityBudget, probe: dict[str, Optional[float]],
                 drop: Optional[float], test_agreement: Optional[float]) -> list[ParityError]:
    """Every budget the measurements break, as ParityErrors (empty: within budget). Edges pass:
    a value exactly at its limit is within budget."""
    errors = []
    if probe.get("non_finite_fraction"):
        errors.append(ParityError(artifact, output, "non-finite (NaN/inf) outputs on probes, fraction",
                                  probe["non_finite_fraction"], 0.0))
        return errors
    max_err = probe["max_abs_error"]
    if not max_err <= budget.max_abs_error:  # NaN / inf fail too
        errors.append(ParityError(artifact, output, "max_abs_error on probes", max_err, budget.max_abs_error))
    cosine = probe["cosine"]
    if not cosine >= budget.min_cosine:
        errors.append(ParityError(artifact, output, "cosine on probes (min)", cosine, budget.min_cosine))
    # Decisions are compared on the whole test split where they exist, else on the probes (translator).
    where, agree = ("test split", test_agreement) if test_agreement is not None else ("probes", probe.get("top1_agreement"))
    if budget.min_top1_agreement is not None and agree is not None and not agree >= budget.min_top1_agreement:
        errors.append(ParityError(artifact, output, f"top-1 agreement on the {where} (min)", agree,
                                  budget.min_top1_agreement))
    if drop is not None and not drop <= budget.max_metric_drop:
        errors.append(ParityError(artifact, output, "task metric drop on the test split", drop, budget.max_metric_drop))
    return errors


@dataclass
class Failure:
    output: str
    measure: str
    measured: float
    limit: float

    @classmethod
    def of(cls, err: ParityError) -> "Failure":
        return cls(err.output, err.measure, err.measured, err.limit)

    def error(self, artifact: str) -> ParityError:
        return ParityError(artifact, self.output, self.measure, self.measured, self.limit)


@dataclass
class ArtifactVerdict:
    """One row of parity.json."""

    model: str
    framework: str
    target: str
    mode: str
    route: str
    status: Status
    path: Optional[str] = None
    size_bytes: Optional[int] = None
    runtime: Optional[str] = None  # e.g. "ai_edge_litert", "tfjs-node wasm"
    reason: Optional[str] = None  # unsupported: why
    metric: Optional[str] = None
    reference_metric: Optional[float] = None
    artifact_metric: Optional[float] = None
    metric_drop: Optional[float] = None
    test_examples: Optional[int] = None
    test_agreement: Optional[float] = None
    probe: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    latency_ms: Optional[float] = None  # median of one batch-1 inference
    verify_seconds: Optional[float] = None
    files: dict[str, str] = field(default_factory=dict)  # path (relative to the model folder) -> sha256 verified
    details: dict[str, Any] = field(default_factory=dict)
    variant: Optional[str] = None  # another route or a repair of the (target, mode) cell, see ArtifactRecord
    recipe: Optional[dict[str, Any]] = None
    browser: Optional[str] = None  # a browser runtime that ran this artifact (e.g. "litertjs-wasm"); None: native

    @property
    def cell(self) -> str:
        """'tflite/int8', with a variant 'tflite/int8-16x8', in a browser 'tflite/int8 in litertjs-wasm'."""
        return (f"{self.target}/{self.mode}" + (f"-{self.variant}" if self.variant else "")
                + (f" in {self.browser}" if self.browser else ""))

    @property
    def row(self) -> tuple[str, str, str, str]:
        """The key of this verdict's row in parity.json."""
        return (self.target, self.mode, self.variant or "", self.browser or "")

    @property
    def key(self) -> str:
        return f"{self.model}/{self.framework}/{self.cell}"

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def errors(self) -> list[ParityError]:
        return [f.error(self.key) for f in self.failures]

    def raise_for_status(self) -> None:
        """Raise the first ParityError (all of them are in `.errors()`) unless the artifact passed."""
        if self.status is Status.FAIL:
            if not self.failures:
                from edgeproof.errors import ArtifactRunError

                raise ArtifactRunError(self.key, self.reason or "unknown error")
            raise self.errors()[0]
        if self.status in (Status.UNSUPPORTED, Status.INCONCLUSIVE):
            from edgeproof.errors import EdgeproofError

            raise EdgeproofError(f"{self.key}: {self.summary()}")

    def summary(self) -> str:
        if self.status is Status.PASS:
            return "pass"
        if self.status is Status.UNSUPPORTED:
            return f"unsupported: {self.reason}"
        if self.status is Status.INCONCLUSIVE:
            return f"inconclusive: {self.reason}"
        if not self.failures:
            return f"fail: {self.reason}"
        return "fail: " + "; ".join(f"{f.measure} {_num(f.measured)} (budget {_num(f.limit)})" for f in self.failures)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArtifactVerdict":
        d = dict(d)
        d["status"] = Status(d["status"])
        d["failures"] = [Failure(**f) for f in d.get("failures", [])]
        verdict = cls(**d)
        for name in ("probe", "budget", "files", "details"):
            if not isinstance(getattr(verdict, name), dict):
                raise TypeError(f"{name!r} must be an object")
        return verdict

    def recheck(self) -> list[str]:
        """The budgets this entry's own measurements break, recomputed (not read from `failures`): a pass
        whose numbers say otherwise, or a fail with nothing failing, is inconsistent."""
        fields = ("max_abs_error", "min_cosine", "max_metric_drop", "min_top1_agreement")
        try:
            budget = ParityBudget(**{k: self.budget.get(k) for k in fields})
            per_output = self.details.get("per_output") or {"output": self.probe}
            allowances = self.budget.get("per_output") or {}
            broken = []
            for i, (name, probe) in enumerate(per_output.items()):
                limit = (allowances.get(name) or {}).get("max_abs_error", budget.max_abs_error)
                own = ParityBudget(limit, budget.min_cosine, budget.max_metric_drop, budget.min_top1_agreement)
                broken += [f"{e.output}: {e.measure}" for e in check_budget(
                    self.key, name, own, probe, self.metric_drop if i == 0 else None,
                    self.test_agreement if i == 0 else None)]
            return broken
        except (TypeError, KeyError, AttributeError) as err:
            return [f"unreadable measurements ({type(err).__name__})"]
