"""A user's own model as a contract (ModelContract): its tensors, its metric, its budgets, probes drawn from
its sample data; and user_model.json, which records that contract and where the model came from, so that
verify, deploy and the reports can rebuild it later. User models are never registered in the global
registry: `edgeproof.model_names()` lists the reference models only."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from edgeproof._metrics import METRICS
from edgeproof._util import one_line
from edgeproof.errors import UserModelError
from edgeproof._quant import QuantMode
from edgeproof._spec import (DEFAULT_BUDGETS, Decision, Distribution, Layout, ModelContract, ParityBudget, Task,
                             TensorSpec)

from ._user_inputs import PROBE_COUNT, Declared

USER_MODEL_JSON = "user_model.json"
USER_MODEL_FORMAT = "edgeproof-user-model"
SOURCES = ("keras", "onnx", "torch")


@dataclass
class UserModelInfo:
    """What user_model.json holds: enough to rebuild the spec and to say where the model came from."""

    name: str
    source: str  # keras | onnx | torch
    source_path: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    metric: str
    threshold: float
    labels: bool
    sample_data: str
    examples: int
    budgets: dict[str, dict[str, Any]]
    onnx_backend: Optional[dict[str, Any]] = None  # {"used": ..., "attempts": [{"backend", "ok", "error"}]}
    casts: list[str] = field(default_factory=list)  # int64 -> int32 at the artifact boundary, per input
    notes: list[str] = field(default_factory=list)
    weights: Optional[str] = None  # torch: the state dict the factory's module was loaded with
    format: str = USER_MODEL_FORMAT
    format_version: int = 1

    def preprocessing(self) -> dict[str, Any]:
        """preprocessing.json of this model's bundles: no preprocessing, the value ranges of the sample
        data (the runtime's benchmark feeds valid ids), the int64 -> int32 casts."""
        return {"kind": "custom", "value_ranges": {t["name"]: t["value_range"] for t in self.inputs},
                "source_dtypes": {t["name"]: t["dtype"] for t in self.inputs}, "casts": self.casts,
                "note": "raw tensors in, raw tensors out: feed what the source model takes"}


def _tensor_dict(t: TensorSpec, source_name: Optional[str] = None) -> dict[str, Any]:
    return {"name": t.name, "source_name": source_name or t.name, "shape": list(t.shape), "dtype": t.dtype,
            "layout": t.layout.value, "value_range": list(t.value_range)}


def _tensor_spec(d: dict[str, Any]) -> TensorSpec:
    dist = Distribution.INTEGER if np.dtype(d["dtype"]).kind in "iub" else Distribution.UNIFORM
    return TensorSpec(d["name"], tuple(d["shape"]), d["dtype"], Layout(d["layout"]), dist, tuple(d["value_range"]))


def make_contract(name: str, description: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                  metric: str, threshold: float = 0.5, budgets: Optional[Mapping[Any, ParityBudget]] = None,
                  probes: Optional[dict[str, np.ndarray]] = None) -> ModelContract:
    """A user model's contract: raw tensors in and out (task custom), judged by `metric` on its sample data
    (accuracy: argmax over class scores, or one score against `threshold`), probes = the sample's first rows."""
    merged = dict(DEFAULT_BUDGETS)
    for mode, budget in (budgets or {}).items():
        merged[QuantMode(mode)] = budget
    probe_fn = None
    count = PROBE_COUNT
    if probes is not None:
        count = len(next(iter(probes.values())))
        probe_fn = lambda n, rng: {k: v[:n] for k, v in probes.items()}  # noqa: E731 - fixed: the sample's first rows
    return ModelContract(name=name, task=Task.CUSTOM, description=description, inputs=tuple(inputs),
                         outputs=tuple(outputs), metric=METRICS[metric], budgets=merged, probe_count=count,
                         probe_fn=probe_fn, threshold=threshold,
                         decision=Decision.AUTO if metric == "accuracy" else Decision.NONE)


def info_for(spec: ModelContract, source: str, source_path: str, declared: Sequence[Declared], threshold: float,
             labels: bool, sample_data: str, examples: int) -> UserModelInfo:
    by_name = {d.name: d.source_name for d in declared}
    return UserModelInfo(
        name=spec.name, source=source, source_path=source_path,
        inputs=[_tensor_dict(t, by_name.get(t.name)) for t in spec.inputs],
        outputs=[_tensor_dict(t) for t in spec.outputs], metric=spec.metric.name, threshold=threshold,
        labels=labels, sample_data=sample_data, examples=examples,
        budgets={m.value: asdict(b) for m, b in spec.budgets.items()},
        casts=[f"{t.name}: int64 -> int32 at the artifact's boundary (ids must fit in int32)"
               for t in spec.inputs if t.dtype == "int64"])


def write_info(root: Path, info: UserModelInfo) -> Path:
    from edgeproof._atomic import write_bytes_atomic

    path = Path(root) / USER_MODEL_JSON
    write_bytes_atomic(path, json.dumps(asdict(info), indent=2).encode())
    return path


def read_info(root: Path | str) -> Optional[UserModelInfo]:
    path = Path(root) / USER_MODEL_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserModelError(f"{path} is not valid JSON ({one_line(err, 120)}): convert the model again") from None
    if not isinstance(data, dict) or data.get("format") != USER_MODEL_FORMAT:
        return None
    try:
        return UserModelInfo(**data)
    except TypeError as err:
        raise UserModelError(f"{path} does not describe a user model ({one_line(err, 120)}): convert it again") from None


def load_contract(root: Path | str, probes: Optional[dict[str, np.ndarray]] = None) -> Optional[ModelContract]:
    """The contract of the user model converted into `root` (artifacts/<name>/<source>), or None.
    `probes`: the sample data's first rows, as its conversion took them (for verifying it again)."""
    info = read_info(root)
    if info is None:
        return None
    return contract_of(info, probes)


def contract_of(info: UserModelInfo, probes: Optional[dict[str, np.ndarray]] = None) -> ModelContract:
    budgets = {QuantMode(m): ParityBudget(**b) for m, b in info.budgets.items()}
    return make_contract(info.name, f"user model ({info.source}: {info.source_path})",
                         [_tensor_spec(t) for t in info.inputs], [_tensor_spec(t) for t in info.outputs], info.metric,
                         info.threshold, budgets, probes)
