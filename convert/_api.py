"""`convert_source()`: any Source (a zoo checkpoint, a user's Keras / ONNX / PyTorch model) to every
requested TFLite and TF.js precision, each cell recorded (ok / unsupported: reason) in conversion.json.
`convert()` is the same for a reference model named by the registry."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Optional

from edgeproof._quant import QuantMode, Target
from edgeproof._spec import Framework

from ._artifact import ArtifactRecord, TensorInfo
from ._cells import convert_cells
from ._onnx_route import OnnxBackend, backends_for
from ._records import conversion_table, requested_configs, write_records
from ._source import Exported, Source
from ._tensors import layout_changes, tensor_infos, tfjs_described

DYNAMIC_BATCH_NAMES = ("model_dynamic_batch.onnx", "saved_model_dynamic_batch")


def _describer(source: Source, exported: Exported):
    """describe(target, what the artifact says about its tensors) -> (inputs, outputs, layout changes)."""
    contract = source.contract

    def describe(target: Target, described) -> tuple[list[TensorInfo], list[TensorInfo], list[str]]:
        if target is Target.TFLITE:
            ins, outs = described
        else:
            ins, outs = tfjs_described(described["inputs"]), tfjs_described(described["outputs"])
        inputs = tensor_infos(ins, contract.inputs, exported.prefer_layout)
        outputs = tensor_infos(outs, contract.outputs, exported.prefer_layout)
        return inputs, outputs, layout_changes(source.native_inputs, inputs, exported.converter, source.layout_label)

    return describe


def convert_source(source: Source, root: Path, *, targets: Iterable[str] = ("tflite", "tfjs"),
                   modes: Optional[Iterable[str]] = None, onnx_backend: Optional[str] = None,
                   representative_samples: int = 256, int8_io: bool = False,
                   progress: bool = True) -> list[ArtifactRecord]:
    """Convert `source` into `root` (its model folder): the SavedModel (and the ONNX file on the way), then
    every requested (target, mode) cell; conversion.json records them all. `onnx_backend`: None or "auto"
    tries onnx2tf, then onnx-tf; a backend's name forces it."""
    say = print if progress else (lambda *a, **k: None)
    contract = source.contract
    configs = requested_configs(contract, targets, modes, representative_samples, int8_io)
    backends = backends_for(onnx_backend)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    notes = source.save_source(root)
    exported = source.export(root, backends, say)
    notes += exported.notes
    tfjs_saved_model = exported.bound.path
    # A contract with a static export batch (the LSTM, for TFLite's fused kernel) gets a second,
    # dynamic-batch SavedModel for TF.js, which would otherwise run one example per call.
    if contract.export_batch_size is not None and any(c.target is Target.TFJS for c in configs):
        dynamic = source.export(root, backends, say, batch_size=None, names=DYNAMIC_BATCH_NAMES)
        tfjs_saved_model = dynamic.bound.path
        notes += dynamic.notes + [f"TF.js artifacts come from a dynamic-batch export; TFLite keeps batch "
                                  f"{contract.export_batch_size}"]
    source_seconds = time.perf_counter() - start
    calibration = None
    if any(c.mode is QuantMode.INT8 for c in configs):
        calibration = source.calibration(representative_samples)
        try:
            calibration = exported.bound.feed(calibration)
        except ValueError:  # inputs that do not fit the graph: the int8 cells say so, with the converter's check
            pass
    records = convert_cells(contract.name, source.framework, root, configs, exported.bound.path, calibration,
                            exported.route, notes, source_seconds, _describer(source, exported), say,
                            tfjs_saved_model=tfjs_saved_model)
    write_records(root, records, {"source": source.describe(), "onnx_backend": exported.onnx_backend,
                                  "noise_floor": exported.noise_floor, "noise_methods": exported.noise_methods,
                                  "notes": notes})
    say(conversion_table(records))
    return records


def convert(model: str, framework: Framework | str, *, targets: Iterable[str] = ("tflite", "tfjs"),
            modes: Optional[Iterable[str]] = None, onnx_backend: OnnxBackend | str | None = None,
            artifacts: Path | str = "artifacts", representative_samples: int = 256, int8_io: bool = False,
            data_dir: Optional[str] = None, progress: bool = True) -> list[ArtifactRecord]:
    """A trained reference model (its checkpoint under artifacts/<model>/<framework>/) in every requested
    precision; see convert_source."""
    from ._source_zoo import ZooSource

    source = ZooSource(model, framework, artifacts, data_dir)
    backend = None if onnx_backend is None else getattr(onnx_backend, "value", onnx_backend)
    return convert_source(source, source.root, targets=targets, modes=modes, onnx_backend=backend,
                          representative_samples=representative_samples, int8_io=int8_io, progress=progress)
