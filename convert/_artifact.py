"""What a conversion produced: one record per artifact, written to conversion.json, so that
nothing downstream guesses names, shapes, dtypes, layouts or quantization parameters."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional


def cell_key(target: str, mode: str, variant: Optional[str] = None) -> str:
    """'tflite/int8', or with a variant 'tflite/int8-16x8'."""
    return f"{target}/{mode}" + (f"-{variant}" if variant else "")


@dataclass
class TensorInfo:
    name: str
    shape: list[int]  # -1 for a dynamic dimension
    dtype: str
    layout: str  # NHWC / NCHW / NF / NT
    quantization: Optional[dict[str, Any]] = None  # {"scale": [...], "zero_point": [...]} for int8 tensors


@dataclass
class ArtifactRecord:
    """One (model, framework, target, mode) cell of the conversion matrix."""

    model: str
    framework: str
    target: str
    mode: str
    route: str  # e.g. "keras>saved_model>tflite" or "torch>onnx(dynamo)>onnx2tf>tflite"
    status: str  # "ok" | "unsupported" | "failed"
    path: Optional[str] = None  # relative to the model's artifact folder
    reason: Optional[str] = None  # why it is unsupported / failed
    size_bytes: Optional[int] = None
    convert_seconds: Optional[float] = None  # this cell alone
    source_export_seconds: Optional[float] = None  # the shared SavedModel (and ONNX) export before it
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    layout_changes: list[str] = field(default_factory=list)
    ops: Optional[dict[str, Any]] = None  # TFLite: operator list, builtin-only flag, GPU delegate report
    notes: list[str] = field(default_factory=list)
    # A variant of the (target, mode) cell: another route to the same precision (e.g. "litert-torch") or a
    # repair of a failing 8-bit cell (e.g. "16x8", "mixed"); `recipe` says how it was made.
    variant: Optional[str] = None
    recipe: Optional[dict[str, Any]] = None

    @property
    def key(self) -> str:
        return cell_key(self.target, self.mode, self.variant)

    @property
    def cell(self) -> tuple[str, str, str]:
        return (self.target, self.mode, self.variant or "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArtifactRecord":
        d = dict(d)
        d["inputs"] = [TensorInfo(**t) for t in d.get("inputs", [])]
        d["outputs"] = [TensorInfo(**t) for t in d.get("outputs", [])]
        return cls(**d)
