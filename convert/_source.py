"""A Source: where a model comes from and how to run and export it. A zoo checkpoint, a Keras model or
file, an ONNX file and a PyTorch module (factory + weights) are all Sources; every stage after it
(export, convert, verify, report, deploy) takes the same thing and does not ask which it is.

A Source gives:
- `contract`: the model's tensors, metric, budgets and allowed precisions (edgeproof.ModelContract);
- `reference(inputs)`: the source model itself run on canonical inputs, every output by name;
- `eval_set()`: the data it is judged on (the zoo's test split, or a user's sample data) and the scorer;
- `calibration()`: int8 calibration inputs;
- `export(root, ...)`: the model as a TensorFlow SavedModel under `root` (through ONNX for PyTorch and
  ONNX sources), bound to the contract and checked against `reference` on the probes.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from edgeproof._spec import ModelContract, TensorSpec

from ._saved_model import BoundSavedModel

Arrays = dict[str, np.ndarray]
Say = Callable[..., None]
SPEC_BATCH = "spec"  # export with the contract's export_batch_size
KERAS_NOISE = "Keras eager vs its traced SavedModel"
TORCH_NOISE = "torch eager vs its ONNX export (onnxruntime), float32 vs float64"
ORT_NOISE = "onnxruntime with vs without graph optimisations"


class SourceKind(str, Enum):
    """Where a model came from; recorded in conversion.json, parity.json and every bundle manifest."""

    ZOO = "zoo"  # a reference model trained here (a checkpoint under artifacts/<name>/<keras|torch>/)
    KERAS = "keras"  # a user's tf-keras model (.keras, .h5, SavedModel folder, or object)
    ONNX = "onnx"  # a user's ONNX file, from any exporter
    TORCH = "torch"  # a user's PyTorch module (factory + weights, or object)


@dataclass
class EvalSet:
    """What a model is judged on, beyond the probes: the zoo's test split or a user's sample data."""

    inputs: Arrays  # canonical layout
    score: Callable[[Any, Optional[Callable]], dict]  # (outputs on `inputs`, predict) -> {metric: value, details...}
    profile: str  # the training profile of a zoo checkpoint; "user" for users' models
    decode: Optional[tuple[int, int]] = None  # (bos, eos): outputs are greedy-decoded ids, not raw outputs
    basis: str = ""  # what the metric is computed on, for reports ("numeric parity only: no labels"...)
    # outputs -> the metric as per-example values (edgeproof._metrics.Samples), for its interval; None: no metric
    samples: Optional[Callable[[Any], Any]] = None

    @property
    def n(self) -> int:
        return len(next(iter(self.inputs.values())))


@dataclass
class Exported:
    """The source model as a SavedModel, ready for the TFLite and TF.js converters."""

    bound: BoundSavedModel
    route: list[str]  # e.g. ["torch", "onnx(dynamo, opset 18)", "onnx2tf"]
    converter: str  # who produced the graph, for layout-change notes ("onnx2tf", "Keras SavedModel")
    notes: list[str] = field(default_factory=list)
    onnx_backend: Optional[dict[str, Any]] = None  # {"used": ..., "attempts": [...]} on the ONNX route
    prefer_layout: Optional[str] = None  # how to read an ambiguous 4-D artifact tensor (onnx2tf: NHWC)
    # The source's own float noise per output (two legitimate float32 evaluations of it), for the budgets.
    noise_floor: dict[str, float] = field(default_factory=dict)
    noise_methods: list[str] = field(default_factory=list)

    def add_noise(self, floors: dict[str, float], method: str) -> "Exported":
        if floors:
            for name, value in floors.items():
                self.noise_floor[name] = max(self.noise_floor.get(name, 0.0), float(value))
            self.noise_methods.append(method)
        return self


class Source(ABC):
    """A model to convert and prove. Subclasses: ZooSource (checkpoints) and UserSource (users' models)."""

    kind: SourceKind
    framework: str  # the folder under artifacts/<name>/: keras | torch | onnx
    contract: ModelContract
    layout_label: str = "source model"  # how layout-change notes name the source model's own layout

    @property
    def name(self) -> str:
        return self.contract.name

    @property
    def native_inputs(self) -> Sequence[TensorSpec]:
        """The inputs as the source model itself takes them (PyTorch images: NCHW)."""
        return self.contract.inputs

    @property
    def static_batch(self) -> Optional[int]:
        """The batch every call must have (a fixed-batch graph), or None."""
        return self.contract.export_batch_size

    @abstractmethod
    def reference(self, inputs: Arrays) -> Arrays:
        """The source model on canonical inputs: every output, by the contract's output names."""

    @abstractmethod
    def eval_set(self) -> EvalSet:
        ...

    @abstractmethod
    def calibration(self, samples: int) -> Arrays:
        """int8 calibration inputs (canonical layout), at least `samples` examples where there are that many."""

    @abstractmethod
    def export(self, root: Path, backends: Sequence[Any], say: Say, batch_size: Any = SPEC_BATCH,
               names: tuple[str, str] = ("model.onnx", "saved_model"), unrolled_first: bool = False) -> Exported:
        """The model as root/<names[1]> (a SavedModel), through root/<names[0]> on the ONNX route.
        `unrolled_first`: on the ONNX route with a fixed batch, recurrent layers unrolled over time before the
        graph with their loops is tried (no tensor lists: what full-integer TFLite needs)."""

    def torch_program(self) -> Optional[Any]:
        """A torch source's module for the litert-torch route (a convert._litert_torch.TorchProgram); None for
        the others."""
        return None

    def save_source(self, root: Path) -> list[str]:
        """Keep a copy of the source model in the model's folder (users' models); returns notes."""
        return []

    def describe(self) -> dict[str, Any]:
        """Where the model came from, for conversion.json and the reports."""
        return {"kind": self.kind.value}
