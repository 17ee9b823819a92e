"""`convert_source()`: any Source (a zoo checkpoint, a user's Keras / ONNX / PyTorch model) to every
requested TFLite and TF.js precision, each cell recorded (ok / unsupported: reason) in conversion.json.
`convert()` is the same for a reference model named by the registry."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Optional

from edgeproof import _log
from edgeproof._quant import QuantMode, Target
from edgeproof._spec import Framework
from edgeproof.errors import EdgeproofError

from ._artifact import ArtifactRecord, TensorInfo
from ._cells import convert_cells
from ._litert_torch import litert_cell
from ._onnx_backends import OnnxBackend, backends_for
from ._records import artifact_path, cell_order, conversion_table, requested_configs, write_records
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
    say = _log.detail if progress else (lambda *a, **k: None)
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
    records = _static_batch_retry(source, root, configs, records, calibration, notes, backends, say)
    records += litert_cell(source, root, configs, notes, _describer(source, replace(exported, prefer_layout=None,
                                                                                    converter="litert-torch")), say)
    records.sort(key=lambda r: cell_order(r.cell))  # conversion.json's order: each variant after its cell
    write_records(root, records, {"source": source.describe(), "onnx_backend": exported.onnx_backend,
                                  "noise_floor": exported.noise_floor, "noise_methods": exported.noise_methods,
                                  "notes": notes})
    say(conversion_table(records))
    return records


STATIC_NAMES = ("model_batch1.onnx", "saved_model_batch1")


def _static_batch_retry(source: Source, root: Path, configs, records: list[ArtifactRecord], calibration,
                        notes: list[str], backends, say) -> list[ArtifactRecord]:
    """TFLite cells the dynamic-batch graph could not give (a reshape with two unknown dimensions, tensor lists
    that need Flex ops or that full-integer quantization cannot lower...) tried again from a batch-1 export, as TFLite deploys anyway; TF.js keeps the dynamic
    batch. When that export gives none of them and onnx2tf made it, once more from onnx-tf's batch-1 export (a
    graph onnx2tf converts can still hold ops TFLite has only as Select ops: its GELU's Erf). The retry is
    recorded in the cells' notes."""
    failed = [(c, r) for c, r in zip(configs, records) if r.status != "ok" and c.target is Target.TFLITE]
    if not failed or source.static_batch is not None:
        return records
    say(f"[{source.name}/{source.framework}] {len(failed)} TFLite cells failed on the dynamic-batch graph: "
        f"trying a batch-1 export", flush=True)
    by_key, tried = {}, list(backends)
    while tried and not by_key:
        fixed = _batch1_export(source, root, tried, say)
        if fixed is None:
            return records
        by_key = _retry_cells(source, root, failed, fixed, calibration, notes, say)
        used = (fixed.onnx_backend or {}).get("used")
        rest = [b for b in tried if b.value != used] if used == OnnxBackend.ONNX2TF.value else []
        if not by_key and rest:
            say(f"   no TFLite cell from {used}'s batch-1 graph: trying {rest[0].value}", flush=True)
        tried = rest[:1]
    return [by_key.get(r.key, r) for r in records]


def _batch1_export(source: Source, root: Path, backends, say) -> Optional[Exported]:
    """The batch-1 graph; recurrent layers unrolled first (a WHILE loop's tensor lists are what full-integer
    TFLite cannot lower: `gru_stream_state`'s int8 in the corpus)."""
    try:
        return source.export(root, backends, say, batch_size=1, names=STATIC_NAMES, unrolled_first=True)
    except Exception as err:  # the retry is a bonus: the cells keep their first reason
        say(f"   batch-1 export failed: {type(err).__name__}: {str(err)[:200]}", flush=True)
        return None


def _retry_cells(source: Source, root: Path, failed, fixed: Exported, calibration, notes: list[str],
                 say) -> dict[str, ArtifactRecord]:
    """The failed cells converted from `fixed`: {key: record} of those that now convert."""
    why = {c.key: r.reason for c, r in failed}
    try:
        feed = None if calibration is None else fixed.bound.feed(source.calibration(max(c.representative_samples
                                                                                        for c, _ in failed)))
    except (ValueError, EdgeproofError) as err:  # calibration data the graph cannot take: the first reasons stand
        say(f"   batch-1 retry skipped: its calibration data does not fit ({str(err)[:200]})", flush=True)
        return {}
    retried = convert_cells(source.name, source.framework, root, [c for c, _ in failed], fixed.bound.path, feed,
                            fixed.route, notes, 0.0, _describer(source, fixed), say)
    by_key = {r.key: r for r in retried if r.status == "ok"}
    for r in by_key.values():
        r.notes.append(f"TFLite from a batch-1 export: the dynamic-batch graph gave: {why[r.key]}")
    return by_key


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


def convert_variants(source: Source, root: Path, cells: list[tuple[str, str, dict]], *,
                     progress: bool = True) -> list[ArtifactRecord]:
    """Variant cells of an already converted model (repair recipes): `cells` holds (target, mode, variant)
    with variant = {"variant": name, "recipe": {...}, "options": {...}}, each converted from the model's
    SavedModel in root/ (bound to the contract again for the calibration feed), recorded in conversion.json."""
    from ._records import load_records, read_about

    say = _log.detail if progress else (lambda *a, **k: None)
    about = read_about(root)
    exported = _exported_again(source, root, cells[0][0])
    bound = exported.bound
    plain = {(r.target, r.mode): r for r in load_records(root) if not r.variant}
    configs = [requested_configs(source.contract, [t], [m])[0] for t, m, _ in cells]
    base = plain.get((cells[0][0], cells[0][1]))
    route = base.route.split(">")[:-1] if base else []
    calibration = None
    if any(c.mode is QuantMode.INT8 for c in configs):
        calibration = bound.feed(source.calibration(max(c.representative_samples for c in configs)))
    dynamic = root / DYNAMIC_BATCH_NAMES[1]
    records = convert_cells(source.contract.name, source.framework, root, configs, bound.path, calibration, route,
                            list(base.notes) if base else [], 0.0, _describer(source, exported), say,
                            tfjs_saved_model=dynamic if dynamic.exists() else None, variants=[v for _, _, v in cells])
    write_records(root, records, about)
    return records


def _exported_again(source: Source, root: Path, target: str = "tflite") -> Exported:
    """The model's SavedModel in root/ (for TFLite, the batch-1 one when TFLite had to use it), bound to its
    contract again (for a calibration feed)."""
    from ._records import read_about
    from ._saved_model import bind_saved_model

    from ._records import load_records

    backend = (read_about(root).get("onnx_backend") or {}).get("used")
    probes = source.contract.probe_inputs()
    folder = root / "saved_model"
    if target == Target.TFLITE.value and (root / STATIC_NAMES[1]).is_dir():
        folder = root / STATIC_NAMES[1]
        routes = [r.route for r in load_records(root) if r.target == target and not r.variant and r.status == "ok"]
        backend = next((b.value for b in OnnxBackend for r in routes if f">{b.value}>" in f">{r}>"), backend)
    prefer = "NHWC" if backend == OnnxBackend.ONNX2TF.value else None
    bound = bind_saved_model(folder, source.contract, probes, source.reference(probes), prefer)
    return Exported(bound, [], backend or "Keras SavedModel", prefer_layout=prefer)


def dynamic_attribution(source: Source, root: Path, samples: int = 8) -> list[dict]:
    """Per hybrid op of the model's dynamic-range .tflite, the output error it adds alone (convert/_dynamic_mixed.py,
    in a worker process: it builds and runs a model per op)."""
    import json
    import tempfile

    from ._worker import Job, run_jobs

    bound = _exported_again(source, root).bound
    calibration = bound.feed(source.calibration(samples))
    files = {mode: str(root / artifact_path(Target.TFLITE, QuantMode(mode))) for mode in ("dynamic", "fp32")}
    with tempfile.TemporaryDirectory(prefix="edgeproof-attribution-") as tmp:
        out = Path(tmp) / "layers.json"
        (outcome,) = run_jobs(bound.path, [Job("dynamic-attribution", "dynamic", str(out), samples, options=files)],
                              calibration)
        if outcome.error:
            raise RuntimeError(f"per-layer attribution of the dynamic-range model failed: {outcome.error[:300]}")
        return json.loads(out.read_text())


def int8_attribution(source: Source, root: Path, samples: int = 256) -> list[dict]:
    """Per-layer error of the model's full-int8 conversion (QuantizationDebugger, in a worker process)."""
    import json
    import tempfile

    from ._worker import Job, run_jobs

    bound = _exported_again(source, root).bound
    calibration = bound.feed(source.calibration(samples))
    with tempfile.TemporaryDirectory(prefix="edgeproof-attribution-") as tmp:
        out = Path(tmp) / "layers.json"
        (outcome,) = run_jobs(bound.path, [Job("attribution", "int8", str(out), samples)], calibration)
        if outcome.error:
            raise RuntimeError(f"per-layer attribution failed: {outcome.error[:300]}")
        return json.loads(out.read_text())
