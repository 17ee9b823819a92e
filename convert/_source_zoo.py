"""A reference model trained here, as a Source: its checkpoint under artifacts/<name>/<keras|torch>/, its
spec from the registry (the contract), its dataset's test split as the evaluation set. Exported like any
model of its framework: Keras -> SavedModel, PyTorch -> ONNX -> the ONNX route."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from edgeproof._registry import get_spec
from edgeproof._spec import Framework, ModelSpec, Task, TensorSpec

from ._litert_torch import TorchProgram
from ._onnx_export import export_torch
from ._onnx_model import OnnxModel
from ._onnx_backends import OnnxBackend
from ._onnx_route import onnx_route
from ._saved_model import bind_saved_model, export_keras
from ._source import KERAS_NOISE, ORT_NOISE, SPEC_BATCH, TORCH_NOISE, EvalSet, Exported, Say, Source, SourceKind

CALIBRATION_SEED = 12345  # probe-style calibration draws (the GAN's latent vectors) differ from the probes


def calibration_inputs(spec: ModelSpec, data: Any, samples: int) -> dict[str, np.ndarray]:
    """int8 calibration inputs: the training split when it feeds the deployed model directly, else the
    model's own input distribution (the GAN generator's N(0, 1) latent vectors)."""
    if set(data.x_train) == {t.name for t in spec.inputs}:
        return data.x_train
    return spec.probe_inputs(seed=CALIBRATION_SEED, n=max(samples, 1))


class ZooSource(Source):
    kind = SourceKind.ZOO

    def __init__(self, name: str, framework: Framework | str, artifacts: Path | str = "artifacts",
                 data_dir: Optional[str] = None):
        from edgeproof.train import load_checkpoint, model_dir

        self.spec: ModelSpec = get_spec(name)
        self.contract = self.spec
        self.framework = Framework(framework).value
        self.artifacts, self.data_dir = Path(artifacts), data_dir
        self.root = model_dir(artifacts, self.spec.name, self.framework)
        self.checkpoint = load_checkpoint(self.root / "checkpoint")
        self.layout_label = "PyTorch/ONNX" if self.framework == Framework.TORCH.value else "Keras"
        self._predict = None
        self._data = None

    @property
    def native_inputs(self) -> Sequence[TensorSpec]:
        return self.spec.input_signature(self.framework)

    @property
    def net(self) -> Any:
        """The deployed network (the GAN deploys its generator)."""
        model = self.checkpoint.model
        return model[0] if isinstance(model, tuple) else model

    def reference(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._predict is None:
            from edgeproof.train import predictor_for

            self._predict = predictor_for(self.checkpoint)
        return {self.spec.outputs[0].name: np.asarray(self._predict(inputs))}

    def _task_data(self, profile: str):
        from edgeproof.train._data import load_dataset

        if self._data is None or self._data[0] != profile:
            raw = load_dataset(self.spec.dataset, data_dir=self.data_dir)
            self._data = (profile, self.spec.prepare_data(raw, self.spec.profile(profile),
                                                          self.checkpoint.meta.get("seed", 0)))
        return self._data[1]

    def eval_set(self) -> EvalSet:
        from edgeproof.train import find_judge
        from edgeproof.train._evaluate import samples, score

        spec = self.spec
        profile = self.checkpoint.meta.get("profile", "default")
        data = self._task_data(profile)
        judge = find_judge(self.artifacts) if spec.task is Task.GENERATION else None
        first = spec.outputs[0].name

        def scored(outputs, predict=None) -> dict:
            arrays = outputs[first] if isinstance(outputs, dict) else outputs
            single = None if predict is None else (lambda x: predict(x)[first])
            return score(spec, arrays, data, single, judge)

        def per_example(outputs):
            return samples(spec, outputs[first] if isinstance(outputs, dict) else outputs, data, judge)

        pre = data.preprocessing
        decode = (pre["bos"], pre["eos"]) if spec.task is Task.TRANSLATION else None
        return EvalSet(data.x_test, scored, profile, decode,
                       basis=f"{spec.metric.name} on {data.n_test} examples of the test split", samples=per_example)

    def calibration(self, samples: int) -> dict[str, np.ndarray]:
        return calibration_inputs(self.spec, self._task_data("fast"), samples)

    def export(self, root: Path, backends: Sequence[OnnxBackend], say: Say, batch_size: Any = SPEC_BATCH,
               names: tuple[str, str] = ("model.onnx", "saved_model"), unrolled_first: bool = False) -> Exported:
        batch = self.spec.export_batch_size if batch_size == SPEC_BATCH else batch_size
        label = f"[{self.name}/{self.framework}]" + (" (dynamic batch)" if batch_size != SPEC_BATCH else "")
        probes = self.spec.probe_inputs()
        reference = self.reference(probes)
        if self.framework == Framework.KERAS.value:
            say(f"{label} exporting the SavedModel", flush=True)
            first = self.spec.outputs[0].name
            path = export_keras(self.net, self.spec.inputs, lambda out: {first: out}, root / names[1], batch)
            bound = bind_saved_model(path, self.spec, probes, reference)
            return Exported(bound, ["keras", "saved_model"], "Keras SavedModel").add_noise(bound.errors, KERAS_NOISE)
        return self._export_torch(root, backends, say, batch, names, label, probes, reference, unrolled_first)

    def _export_torch(self, root, backends, say, batch, names, label, probes, reference,
                      unrolled_first: bool = False) -> Exported:
        from edgeproof.train._torch_trainer import to_framework_layout

        say(f"{label} exporting ONNX (dynamo) and checking it with onnxruntime", flush=True)
        raw = root / f".export-{names[0]}"
        export = export_torch(self.net, raw, [t.name for t in self.spec.inputs], [self.spec.outputs[0].name],
                              to_framework_layout(self.spec, probes), static_batch=batch, label=self.name)
        try:
            say(f"{label} ONNX -> TensorFlow", flush=True)
            to_tf = onnx_route(OnnxModel(raw, what="exported ONNX model"), None, self.spec, self.native_inputs, root,
                               probes, reference, backends, say, names, unrolled_first=unrolled_first)
        finally:
            raw.unlink(missing_ok=True)
        exported = Exported(to_tf.bound, ["torch", export.route, to_tf.backend.value], to_tf.converter,
                            export.notes + to_tf.notes, to_tf.record(), to_tf.prefer_layout)
        return exported.add_noise(export.noise, TORCH_NOISE).add_noise(to_tf.noise_floor, ORT_NOISE)

    def torch_program(self) -> Optional[TorchProgram]:
        if self.framework != Framework.TORCH.value:
            return None
        return TorchProgram(self.net, self.spec.inputs, self.native_inputs, [self.spec.outputs[0].name])

    def describe(self) -> dict[str, Any]:
        meta = self.checkpoint.meta
        return {"kind": self.kind.value, "framework": self.framework, "checkpoint": str(self.root / "checkpoint"),
                "profile": meta.get("profile"), "epochs": meta.get("epochs")}
