"""A user's own model as a Source: a Keras model or file, an ONNX file, or a PyTorch module (factory +
weights), with sample data (inputs, optional labels) that stands in for a test split. Opening one checks
everything before anything is written: the file is what the option says, the sample data matches the
model's inputs, the model runs on it; the result is a contract (user_model.json) that verify, deploy and
the reports rebuild later from the model's folder."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from edgeproof._metrics import NO_LABELS, accuracy, accuracy_samples, mse, mse_samples
from edgeproof._spec import ModelContract, ParityBudget
from edgeproof._util import in_slices, one_line
from edgeproof.errors import SampleDataError, UserConversionError, UserModelError

from ._litert_torch import TorchProgram
from ._onnx_model import OnnxModel
from ._onnx_backends import OnnxBackend
from ._onnx_route import onnx_route
from ._sample_data import SampleData, SampleSource, load_sample_data, sanitize
from ._saved_model import bind_saved_model
from ._source import KERAS_NOISE, ORT_NOISE, SPEC_BATCH, TORCH_NOISE, EvalSet, Exported, Say, Source, SourceKind
from ._user_contract import UserModelInfo, contract_of, info_for, make_contract
from ._user_inputs import (PROBE_COUNT, Declared, choose_metric, output_specs, parse_input_shapes, parse_layouts,
                           resolve_inputs, static_batch)

NAME_LIMIT = 100  # characters: the name is a folder name, and appears in bundle names and URLs


class UserSource(Source):
    layout_label = "source model"

    def __init__(self, handle: Any, contract: ModelContract, info: UserModelInfo, inputs: dict[str, np.ndarray],
                 labels: Optional[np.ndarray], declared: Sequence[Declared]):
        self.handle, self.contract, self.info = handle, contract, info
        self.kind = SourceKind(handle.kind)
        self.framework = handle.kind
        self.inputs, self.labels, self.declared = inputs, labels, list(declared)
        self._reference = in_slices(handle.reference, static_batch(contract.inputs) or 256)

    @property
    def static_batch(self) -> Optional[int]:
        return static_batch(self.contract.inputs)

    def reference(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._reference(inputs)

    def eval_set(self) -> EvalSet:
        contract, labels = self.contract, self.labels
        metric, first = contract.metric.name, contract.outputs[0].name

        def scored(outputs, predict=None) -> dict:
            if metric == "none" or labels is None:
                return {"parity": NO_LABELS}
            if metric == "accuracy":
                return {metric: accuracy(outputs[first], labels, contract.decision_rule, contract.threshold)}
            return {metric: mse(outputs[first], labels)}

        def per_example(outputs):
            if metric == "none" or labels is None:
                return None
            if metric == "accuracy":
                return accuracy_samples(outputs[first], labels, contract.decision_rule, contract.threshold)
            return mse_samples(outputs[first], labels)

        basis = NO_LABELS if labels is None else f"{metric} on the sample data"
        return EvalSet(self.inputs, scored, "user", basis=basis, samples=per_example)

    def calibration(self, samples: int) -> dict[str, np.ndarray]:
        return self.inputs

    def save_source(self, root: Path) -> list[str]:
        return self.handle.save_source(root)

    def export(self, root: Path, backends: Sequence[OnnxBackend], say: Say, batch_size: Any = SPEC_BATCH,
               names: tuple[str, str] = ("model.onnx", "saved_model"), unrolled_first: bool = False) -> Exported:
        batch = self.static_batch if batch_size == SPEC_BATCH else batch_size
        exported = self._export(root, backends, say, names, batch, unrolled_first)
        if self.info.casts:
            exported.notes.append("int64 inputs take int32 in the artifacts (cast to int64 inside): "
                                  + "; ".join(self.info.casts))
        return exported

    def _export(self, root: Path, backends: Sequence[OnnxBackend], say: Say, names: tuple[str, str],
                batch: Optional[int], unrolled_first: bool = False) -> Exported:
        probes = self.contract.probe_inputs()
        reference = self.reference(probes)
        try:
            if self.kind is SourceKind.KERAS:
                say("   Keras -> SavedModel" + (" (GRU and SimpleRNN layers unrolled where they can be)" if unrolled_first
                                              else ""), flush=True)
                path = self.handle.export(self.contract.inputs, root / names[1], batch, unrolled=unrolled_first)
                bound = bind_saved_model(path, self.contract, probes, reference)
                return Exported(bound, ["keras", "saved_model"], "Keras SavedModel").add_noise(bound.errors,
                                                                                                KERAS_NOISE)
            if self.kind is SourceKind.ONNX:
                to_tf = onnx_route(self.handle, self.declared, self.contract, self.native_inputs, root, probes,
                                   reference, backends, say, names, batch=batch, unrolled_first=unrolled_first)
                route, notes, noise = ["onnx", to_tf.backend.value], [], {}
            else:
                to_tf, route, notes, noise = self._export_torch(root, probes, reference, backends, say, names, batch,
                                                                  unrolled_first)
        except UserModelError:
            raise
        except Exception as err:  # the Keras route has one converter: its failure ends the conversion
            raise UserConversionError(f"{self.kind.value} -> TensorFlow SavedModel failed: {one_line(err)}") from None
        exported = Exported(to_tf.bound, route, to_tf.converter, notes + to_tf.notes, to_tf.record(), to_tf.prefer_layout)
        return exported.add_noise(noise, TORCH_NOISE).add_noise(to_tf.noise_floor, ORT_NOISE)

    def _export_torch(self, root, probes, reference, backends, say, names, batch=None, unrolled_first=False):
        say("   PyTorch -> ONNX (dynamo) and onnxruntime against torch", flush=True)
        raw = root / "model_export.onnx"
        export = self.handle.export_onnx(raw, probes)
        try:
            to_tf = onnx_route(OnnxModel(raw, what="exported ONNX model"), None, self.contract, self.native_inputs, root,
                               probes, reference, backends, say, names, batch=batch, unrolled_first=unrolled_first)
        finally:
            raw.unlink(missing_ok=True)
        return to_tf, ["torch", export.route, to_tf.backend.value], export.notes, export.noise

    def torch_program(self) -> Optional[TorchProgram]:
        if self.kind is not SourceKind.TORCH:
            return None
        if not self.handle.output_names:
            self.reference({k: v[:1] for k, v in self.contract.probe_inputs().items()})  # learns the outputs
        return TorchProgram(self.handle.module, self.contract.inputs, self.native_inputs, self.handle.output_names,
                            self.handle.structure)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "path": self.info.source_path}


# -- opening a user's model --------------------------------------------------------------------------------

def detect_kind(model: Any, kind: Optional[str]) -> str:
    if kind is not None:
        kind = str(kind).lower()
        if kind not in (k.value for k in SourceKind if k is not SourceKind.ZOO):
            raise UserModelError(f"unknown model kind {kind!r}; choose one of ['keras', 'onnx', 'torch']")
        return kind
    if isinstance(model, (str, Path)):
        text = str(model)
        path = Path(text)
        if path.suffix.lower() == ".onnx":
            return "onnx"
        if path.suffix.lower() in (".keras", ".h5", ".hdf5") or path.is_dir():
            return "keras"
        if ":" in text and not path.exists():
            return "torch"
        raise UserModelError(f"cannot tell what kind of model {text!r} is: pass kind='keras', 'onnx' or 'torch' "
                             f"(on the command line: --keras, --onnx or --torch)")
    mro = type(model).__mro__
    if any(c.__module__.split(".")[0] == "torch" for c in mro):
        return "torch"
    if any(c.__module__.split(".")[0] in ("tf_keras", "keras") for c in mro):
        return "keras"
    if callable(model):
        return "torch"  # a factory
    raise UserModelError(f"cannot tell what kind of model a {type(model).__name__} is: pass kind=")


def default_name(model: Any, kind: str) -> str:
    if isinstance(model, (str, Path)):
        text = str(model)
        stem = text.split(":")[-1] if kind == "torch" else Path(text.rstrip("/")).stem
    else:
        stem = getattr(model, "name", None) or getattr(model, "__name__", None) or type(model).__name__
    return sanitize(str(stem)).lower()[:NAME_LIMIT]


def check_name(name: str) -> str:
    from edgeproof._registry import model_names

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or "") or len(name) > NAME_LIMIT:
        raise UserModelError(f"model name {str(name)[:40]!r}{'...' if len(str(name)) > 40 else ''}: use at most "
                             f"{NAME_LIMIT} letters, digits, '_', '-' or '.' (it names the output folder)")
    if name in model_names():
        raise UserModelError(f"{name!r} is a reference model's name: pass another --name for your model")
    return name


def open_handle(kind: str, model: Any, weights=None, custom_objects=None):
    """The model loaded by its framework (KerasModel, OnnxModel or TorchModel)."""
    if kind == "keras":
        from ._keras_model import KerasModel

        return KerasModel(model, custom_objects)
    if kind == "onnx":
        if not isinstance(model, (str, Path)):
            raise UserModelError("an ONNX model is given as a path to a .onnx file")
        return OnnxModel(model)
    from ._torch_model import TorchModel

    return TorchModel(model, weights)


def _usable(sample: SampleData, inputs: dict[str, np.ndarray], step: Optional[int]):
    """A fixed-batch model (an ONNX file exported with batch 1, say) runs in whole steps of its batch."""
    usable = sample.count - sample.count % (step or 1)
    if usable == 0:
        raise SampleDataError(f"the model takes a fixed batch of {step}; {sample.where} has only {sample.count} examples")
    labels = None if sample.labels is None else sample.labels[:usable]
    return {k: v[:usable] for k, v in inputs.items()}, labels, usable


def _run_on_probes(handle, kind: str, probes: dict[str, np.ndarray], step: Optional[int], tensors) -> dict:
    try:
        return in_slices(handle.reference, step or 256)(probes)
    except UserModelError:
        raise
    except Exception as err:  # e.g. onnxruntime refusing the sample's shapes
        raise UserModelError(f"the {kind} model fails on the sample data ({one_line(err)}); its inputs: "
                             + ", ".join(f"{t.name} {list(t.shape)} {t.dtype}" for t in tensors)) from None


def open_user_source(model: Any, *, sample_data: SampleSource, kind: Optional[str] = None,
                     name: Optional[str] = None, weights: Optional[Path | str] = None, metric: Optional[str] = None,
                     input_shapes=None, layouts=None, custom_objects: Optional[Mapping[str, Any]] = None,
                     budgets: Optional[Mapping[Any, ParityBudget]] = None) -> UserSource:
    """Open a user's model with its sample data (see edgeproof.pipeline.convert_user_model for the
    arguments); cheap checks first, so a bad file fails before a framework is imported."""
    kind = detect_kind(model, kind)
    name = check_name(name or default_name(model, kind))
    shapes, layout_overrides = parse_input_shapes(input_shapes), parse_layouts(layouts)
    if weights is not None and kind != "torch":
        raise UserModelError("--weights goes with --torch (a state dict for the module the factory builds)")
    sample = load_sample_data(sample_data)
    if kind == "onnx" or (kind == "keras" and isinstance(model, (str, Path))):
        from ._model_files import require_exists

        require_exists(model, "ONNX model" if kind == "onnx" else "Keras model")
    handle = open_handle(kind, model, weights, custom_objects)
    tensors, inputs, fixed = resolve_inputs(handle.declared_inputs(sample), sample, kind, shapes, layout_overrides)
    step = static_batch(tensors)
    inputs, labels, usable = _usable(sample, inputs, step)
    probe_count = min(PROBE_COUNT, usable) // (step or 1) * (step or 1)
    probes = {k: v[:probe_count] for k, v in inputs.items()}
    reference_probe = _run_on_probes(handle, kind, probes, step, tensors)
    outputs = output_specs(list(handle.output_names), reference_probe, kind)
    metric_name, threshold = choose_metric(metric, labels, reference_probe[outputs[0].name])
    labels = None if metric_name == "none" else labels
    where = (str(Path(handle.path).resolve()) if isinstance(handle.path, Path) else handle.path) or "<in-memory model>"
    contract = make_contract(name, f"user model ({kind}: {where})", tensors, outputs, metric_name, threshold,
                             budgets, probes)
    kept = sample.where if isinstance(sample_data, Mapping) else str(Path(sample_data).resolve())
    info = info_for(contract, kind, str(where), fixed, threshold, labels is not None, kept, usable)
    info.weights = None if weights is None else str(Path(weights).resolve())  # `edgeproof verify` rebuilds from these
    return UserSource(handle, contract, info, inputs, labels, fixed)


def reopen_user_source(root: Path, info: UserModelInfo, model: Any, sample_data: SampleSource,
                       custom_objects: Optional[Mapping[str, Any]] = None) -> UserSource:
    """The user model converted into `root`, opened again on the sample data it was converted with (the
    same rows, probes, metric and budgets)."""
    sample = load_sample_data(sample_data)
    declared = [Declared(t["name"], t["source_name"], tuple(t["shape"]), t["dtype"]) for t in info.inputs]
    from edgeproof._spec import Layout

    _, inputs, _ = resolve_inputs(declared, sample, info.source, {},
                                  {t["name"]: Layout(t["layout"]) for t in info.inputs})
    n = info.examples
    if sample.count < n:
        raise SampleDataError(f"{sample.where} has {sample.count} examples; {info.name} was converted on {n}")
    inputs = {k: v[:n] for k, v in inputs.items()}
    labels = None
    if info.labels:
        if sample.labels is None:
            raise SampleDataError(f"{sample.where} has no labels any more; {info.name} was scored by {info.metric}")
        labels = sample.labels[:n]
    handle = open_handle(info.source, model, info.weights, custom_objects)
    handle.declared_inputs(sample)  # a torch module learns the input order of forward(), as at conversion
    step = static_batch(contract_of(info).inputs)
    count = min(PROBE_COUNT, n) // (step or 1) * (step or 1)
    contract = contract_of(info, {k: v[:count] for k, v in inputs.items()})
    return UserSource(handle, contract, info, inputs, labels, declared)
