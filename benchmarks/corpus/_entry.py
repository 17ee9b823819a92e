"""One corpus entry: a third-party architecture, where it comes from, how it is exported, and how to build it
(the model file or torch factory + weights, and its sample data). Nothing here imports a framework."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

CELLS = ("tflite/fp32", "tflite/fp16", "tflite/dynamic", "tflite/int8", "tfjs/fp32", "tfjs/fp16", "tfjs/uint8")


class SourceKind(str, Enum):
    """What convert_user_model() is given: a Keras file, an ONNX file, or a torch factory string."""

    KERAS = "keras"
    ONNX = "onnx"
    TORCH = "torch"


class Family(str, Enum):
    TEXT_ENCODER = "text-encoder"
    VISION_TRANSFORMER = "vision-transformer"
    AUDIO_ENCODER = "audio-encoder"
    CNN = "cnn"
    DETECTION_SEGMENTATION = "detection-segmentation"
    RECURRENT = "recurrent"


class CorpusError(Exception):
    """A corpus entry cannot be built or run (a missing package, a bad registry file)."""


@dataclass(frozen=True)
class Origin:
    """Where the architecture comes from: the package, the class (or the application function) and the version
    that built it (the version is read at build time and recorded in the built model's meta)."""

    package: str  # e.g. "transformers"
    cls: str  # e.g. "transformers.BertModel"
    weights: str = "random (seeded), built from the config below"
    config: str = ""  # the shrunk config, as the entry sets it


@dataclass(frozen=True)
class Export:
    """How the model file is produced: exporter, opset, dynamic axes and naming quirks."""

    exporter: str  # torch.onnx legacy | torch.onnx dynamo | tf2onnx | optimum | keras .keras | torch factory
    opset: Optional[int] = None
    dynamic_axes: str = "batch"
    quirks: str = ""  # renamed nodes/tensors and why


@dataclass
class BuiltModel:
    """What build(workdir) produced: the argument for convert_user_model(model=...), its kind, the sample data,
    and the optional weights / input shapes / layouts it needs."""

    model: str  # a file path, or "benchmarks.corpus.x:factory" for torch
    kind: SourceKind
    sample: Path  # .npz: one array per model input (named like it), `labels` only where meaningful
    weights: Optional[Path] = None  # torch: the state dict the factory's module loads
    input_shapes: Optional[Mapping[str, Any]] = None
    layouts: Optional[Any] = None  # "NHWC" for channels-last ONNX (tf2onnx), else inferred
    meta: dict[str, Any] = field(default_factory=dict)  # versions, sizes, anything the table shows

    def convert_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"kind": self.kind.value, "sample_data": str(self.sample)}
        if self.weights is not None:
            kwargs["weights"] = str(self.weights)
        if self.input_shapes:
            kwargs["input_shapes"] = dict(self.input_shapes)
        if self.layouts:
            kwargs["layouts"] = self.layouts
        return kwargs


@dataclass(frozen=True)
class CorpusEntry:
    name: str  # = the module's file name
    family: Family
    source: SourceKind
    origin: Origin
    export: Export
    data: str  # what the sample data is (real MNIST tiled to 3x96x96, IMDb first sentences...)
    build: Callable[[Path], BuiltModel]
    tags: frozenset[str] = frozenset()  # "fast": the CI subset; "pretrained": real weights; "labels"
    notes: str = ""

    @property
    def fast(self) -> bool:
        return "fast" in self.tags

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family.value, "source": self.source.value,
                "package": self.origin.package, "class": self.origin.cls, "weights": self.origin.weights,
                "config": self.origin.config, "exporter": self.export.exporter, "opset": self.export.opset,
                "dynamic_axes": self.export.dynamic_axes, "quirks": self.export.quirks, "data": self.data,
                "tags": sorted(self.tags), "notes": self.notes}
