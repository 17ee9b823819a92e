"""`convert()`: the Python API behind `edgeproof convert` — one trained checkpoint to every
requested TFLite and TF.js precision, each cell recorded (ok / unsupported: reason) in conversion.json."""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable, Optional

from edgeproof._atomic import replacing_dir, write_bytes_atomic
from edgeproof._quant import QuantConfig, QuantMode, Target, TARGET_MODES, all_configs
from edgeproof._spec import Framework, Layout, ModelSpec

from ._artifact import ArtifactRecord, TensorInfo
from ._onnx_backends import OnnxBackend

CONVERSION_JSON = "conversion.json"


def artifact_path(target: Target, mode: QuantMode) -> str:
    return f"tflite/{mode.value}.tflite" if target is Target.TFLITE else f"tfjs/{mode.value}/model.json"


def requested_configs(spec: ModelSpec, targets: Iterable[str], modes: Optional[Iterable[str]],
                      representative_samples: int = 256, int8_io: bool = False) -> list[QuantConfig]:
    targets = [Target(t) for t in targets]
    wanted = None if modes is None else {QuantMode(m) for m in modes}
    configs = []
    for target in targets:
        for mode in TARGET_MODES[target]:
            if wanted is not None and mode not in wanted:
                continue
            configs.append(QuantConfig(target, mode, representative_samples=representative_samples,
                                       int8_io=int8_io and mode is QuantMode.INT8))
    if not configs:
        raise ValueError(f"no (target, mode) pair matches targets {[t.value for t in targets]} and modes {modes}")
    return configs


def _layout_of(spec_tensor, shape: list[int]) -> str:
    if spec_tensor.layout is not Layout.NHWC or len(shape) != 4:
        return spec_tensor.layout.value
    nchw = spec_tensor.to_layout(Layout.NCHW).shape
    return Layout.NCHW.value if shape[1:] == list(nchw[1:]) else Layout.NHWC.value


def _tensor_infos(spec: ModelSpec, described: list[dict], spec_tensors) -> list[TensorInfo]:
    by_name = {t.name: t for t in spec_tensors}
    infos = []
    for i, d in enumerate(described):
        ref = by_name.get(d["name"], spec_tensors[min(i, len(spec_tensors) - 1)])
        infos.append(TensorInfo(d["name"], d["shape"], d["dtype"], _layout_of(ref, d["shape"]), d["quantization"]))
    return infos


def calibration_inputs(spec: ModelSpec, checkpoint_meta: dict, data_dir: Optional[str], samples: int) -> dict:
    """int8 calibration inputs: the training split when it feeds the deployed model directly, else
    the model's own input distribution (the GAN generator's N(0, 1) latent vectors)."""
    from edgeproof.train._data import load_dataset

    names = {t.name for t in spec.inputs}
    data = spec.prepare_data(load_dataset(spec.dataset, data_dir=data_dir), spec.profile("fast"), 0)
    if set(data.x_train) == names:
        return data.x_train
    return spec.probe_inputs(seed=12345, n=max(samples, 1))


class ConverterRefused(RuntimeError):
    """A converter call that failed in the worker; its message is already the converter's reason."""


def _first_line(err: BaseException) -> str:
    """The converter's reason in one readable line (MLIR errors carry pages of call-site noise)."""
    import re

    text = " ".join(str(err).split())
    messages = []
    for m in re.findall(r"error: ((?:(?!error: |loc\().)+)", text):
        m = m.strip().rstrip(".\\n ")
        if m and m not in messages and not m.startswith("loc("):
            messages.append(m)
    text = "; ".join(messages) if messages else text
    if isinstance(err, ConverterRefused):
        return text[:500]
    return f"{type(err).__name__}: {text[:500]}" if text else type(err).__name__


def _export_source(spec, framework, backend, checkpoint, root, saved_model, say, **batch):
    """The checkpoint as a SavedModel; returns (route prefix, notes). `batch` may hold batch_size=None."""
    suffix = " (dynamic batch)" if batch else ""
    if framework is Framework.KERAS:
        from ._saved_model import export_keras_saved_model

        say(f"[{spec.name}/{framework.value}] exporting the SavedModel{suffix}", flush=True)
        with replacing_dir(saved_model) as tmp:
            export_keras_saved_model(spec, checkpoint.model, tmp, **batch)
        return ["keras", "saved_model"], []
    from ._onnx import export_onnx
    from ._onnx_backends import onnx_to_saved_model

    onnx_path = root / ("model.onnx" if not batch else "model_dynamic_batch.onnx")
    say(f"[{spec.name}/{framework.value}] exporting ONNX{suffix} (dynamo) and checking it with onnxruntime", flush=True)
    onnx_export = export_onnx(spec, checkpoint.model, onnx_path, spec.probe_inputs(), **batch)
    notes = list(onnx_export.notes)
    say(f"[{spec.name}/{framework.value}] ONNX -> TensorFlow with {backend.value}{suffix}", flush=True)
    with replacing_dir(saved_model) as tmp:
        notes += onnx_to_saved_model(onnx_path, tmp, backend).notes
    return ["torch", f"onnx({onnx_export.exporter}, opset {onnx_export.opset})", backend.value], notes


def convert(model: str, framework: Framework | str, *, targets: Iterable[str] = ("tflite", "tfjs"),
            modes: Optional[Iterable[str]] = None, onnx_backend: OnnxBackend | str = OnnxBackend.ONNX2TF,
            artifacts: Path | str = "artifacts", representative_samples: int = 256, int8_io: bool = False,
            data_dir: Optional[str] = None, progress: bool = True) -> list[ArtifactRecord]:
    from edgeproof._registry import get_spec
    from edgeproof.train import load_checkpoint, model_dir

    spec = get_spec(model)
    framework = Framework(framework)
    backend = OnnxBackend(onnx_backend)
    root = model_dir(artifacts, spec.name, framework)
    checkpoint = load_checkpoint(root / "checkpoint")
    configs = requested_configs(spec, targets, modes, representative_samples, int8_io)
    say = print if progress else (lambda *a, **k: None)

    # 1. The source model as a TensorFlow SavedModel (and, for PyTorch, the ONNX file on the way).
    #    A spec with a static export batch (the LSTM, for TFLite's fused kernel) gets a second,
    #    dynamic-batch SavedModel for TF.js, which would otherwise run one example per call.
    saved_model = root / "saved_model"
    tfjs_saved_model = saved_model
    dynamic_tfjs = spec.export_batch_size is not None and any(c.target is Target.TFJS for c in configs)
    t0 = time.perf_counter()
    route_prefix, notes = _export_source(spec, framework, backend, checkpoint, root, saved_model, say)
    if dynamic_tfjs:
        tfjs_saved_model = root / "saved_model_dynamic_batch"
        _, more = _export_source(spec, framework, backend, checkpoint, root, tfjs_saved_model, say, batch_size=None)
        notes += more + [f"TF.js artifacts come from a dynamic-batch export; TFLite keeps batch {spec.export_batch_size}"]
    source_seconds = time.perf_counter() - t0

    calibration = None
    if any(c.mode is QuantMode.INT8 for c in configs):
        calibration = calibration_inputs(spec, checkpoint.meta, data_dir, representative_samples)
        if framework is Framework.TORCH and backend is OnnxBackend.ONNX_TF:
            from edgeproof.train._torch_trainer import to_framework_layout

            calibration = to_framework_layout(spec, calibration)

    # 2. The converter calls, in a worker process, and 3. one record per cell (see convert_cells).
    def describe(target: Target, described) -> tuple[list[TensorInfo], list[TensorInfo], list[str]]:
        if target is Target.TFLITE:
            ins, outs = described
            inputs, outputs = _tensor_infos(spec, ins, spec.inputs), _tensor_infos(spec, outs, spec.outputs)
        else:
            inputs = _tfjs_tensors(described["inputs"], spec.inputs)
            outputs = _tfjs_tensors(described["outputs"], spec.outputs)
        return inputs, outputs, _layout_changes(spec, framework, backend, inputs)

    records = convert_cells(spec.name, framework.value, root, configs, saved_model, calibration, route_prefix, notes,
                            source_seconds, describe, say, tfjs_saved_model=tfjs_saved_model)

    _write_records(root, records)
    say(conversion_table(records))
    return records


def convert_cells(model: str, framework: str, root: Path, configs: list[QuantConfig], saved_model: Path,
                  calibration: Optional[dict], route_prefix: list[str], notes: list[str], source_seconds: float,
                  describe, say, tfjs_saved_model: Optional[Path] = None) -> list[ArtifactRecord]:
    """Steps 2 and 3 of a conversion, shared by the reference models and users' own models: the converter
    calls in a worker process (see _worker), then one record per cell, written under `root` (ok, or
    unsupported: the converter's reason). `describe(target, described)` turns what the artifact says
    about its tensors (TFLite: (inputs, outputs) dicts; TF.js: its signature) into
    (inputs, outputs, layout_changes)."""
    from ._ops import op_report
    from ._tfjs import check_tfjs_model
    from ._tflite import describe_tensors
    from ._worker import Job, run_jobs

    tfjs_saved_model = saved_model if tfjs_saved_model is None else tfjs_saved_model
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    jobs = [Job(c.target.value, c.mode.value, str(staging / f"{c.target.value}-{c.mode.value}"),
                c.representative_samples, c.int8_io) for c in configs]
    say(f"[{model}/{framework}] converting {', '.join(c.key for c in configs)}", flush=True)
    start = time.perf_counter()
    if tfjs_saved_model == saved_model:
        outcomes = run_jobs(saved_model, jobs, calibration)
    else:
        tfjs_jobs = {id(j) for j, c in zip(jobs, configs) if c.target is Target.TFJS}
        lite = [j for j in jobs if id(j) not in tfjs_jobs]
        first = run_jobs(saved_model, lite, calibration) if lite else []
        second = run_jobs(tfjs_saved_model, [j for j in jobs if id(j) in tfjs_jobs], calibration)
        outcomes = [(second if id(j) in tfjs_jobs else first).pop(0) for j in jobs]
    worker_seconds = time.perf_counter() - start  # includes the workers' start-up (TensorFlow import)

    records = []
    cells_seconds = sum(o.seconds or 0.0 for o in outcomes)
    say(f"   converter calls: {cells_seconds:.1f} s, worker start-up and TensorFlow import: "
        f"{max(worker_seconds - cells_seconds, 0.0):.1f} s", flush=True)
    for config, job, outcome in zip(configs, jobs, outcomes):
        error = outcome.error
        rel = artifact_path(config.target, config.mode)
        route = ">".join(route_prefix + [config.target.value])
        record = ArtifactRecord(model, framework, config.target.value, config.mode.value, route,
                                status="ok", path=rel, notes=list(notes),
                                convert_seconds=None if outcome.seconds is None else round(outcome.seconds, 2),
                                source_export_seconds=round(source_seconds, 2))
        try:
            if error:
                raise ConverterRefused(error)
            if config.target is Target.TFLITE:
                content = Path(job.out).read_bytes()
                record.inputs, record.outputs, record.layout_changes = describe(config.target, describe_tensors(content))
                record.ops = op_report(content)
                record.size_bytes = len(content)
                write_bytes_atomic(root / rel, content)
            else:
                folder = (root / rel).parent
                signature = check_tfjs_model(Path(job.out))
                with replacing_dir(folder) as tmp:
                    shutil.copytree(job.out, tmp, dirs_exist_ok=True)
                record.size_bytes = sum(p.stat().st_size for p in folder.iterdir())
                record.inputs, record.outputs, record.layout_changes = describe(config.target, signature)
            say(f"   {config.key}: ok ({record.size_bytes / 1024:.0f} KiB)", flush=True)
        except Exception as err:  # the converter's reason is the product here: report it, go on
            record.status, record.path, record.reason = "unsupported", None, _first_line(err)
            record.convert_seconds = None
            record.layout_changes = []
            stale = root / rel if config.target is Target.TFLITE else (root / rel).parent
            if stale.is_dir():  # an artifact from an earlier run must not outlive this verdict
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
            say(f"   {config.key}: unsupported: {record.reason}", flush=True)
        records.append(record)
    shutil.rmtree(staging, ignore_errors=True)
    return records


_TF_DTYPES = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_INT64": "int64", "DT_HALF": "float16"}


def _tfjs_tensors(signature: dict, spec_tensors) -> list[TensorInfo]:
    """A TF.js graph model's signature tensors as they really are (names, shapes, dtypes)."""
    infos = []
    by_name = {s.name: s for s in spec_tensors}
    for i, (key, t) in enumerate(sorted(signature.items(), key=lambda kv: kv[0])):
        shape = [int(d.get("size", -1)) for d in t.get("tensorShape", {}).get("dim", [])]
        ref = by_name.get(key.split(":")[0], spec_tensors[min(i, len(spec_tensors) - 1)])
        infos.append(TensorInfo(key, shape, _TF_DTYPES.get(t.get("dtype"), t.get("dtype", "?")),
                                _layout_of(ref, shape)))
    return infos


def _layout_changes(spec, framework, backend, inputs: list[TensorInfo]) -> list[str]:
    changes = []
    for t in spec.inputs:
        if framework is Framework.TORCH and t.layout is Layout.NHWC and spec.torch_layout is Layout.NCHW:
            actual = next((i.layout for i in inputs if i.name == t.name), None) or "?"
            changes.append(f"{t.name}: NCHW (PyTorch/ONNX) -> {actual} ({backend.value})")
    return changes


def _write_records(root: Path, records: list[ArtifactRecord]) -> None:
    path = root / CONVERSION_JSON
    existing = {}
    if path.exists():
        existing = {(r["target"], r["mode"]): r for r in json.loads(path.read_text())["artifacts"]}
    for r in records:
        existing[(r.target, r.mode)] = r.to_dict()
    order = [(c.target.value, c.mode.value) for c in all_configs()]
    rows = [existing[k] for k in order if k in existing]
    write_bytes_atomic(path, json.dumps({"artifacts": rows}, indent=2).encode())


def load_records(root: Path) -> list[ArtifactRecord]:
    path = Path(root) / CONVERSION_JSON
    if not path.exists():
        return []
    return [ArtifactRecord.from_dict(r) for r in json.loads(path.read_text())["artifacts"]]


def conversion_table(records: list[ArtifactRecord]) -> str:
    lines = ["| model | framework | artifact | route | size | convert (s) | ops |", "|---|---|---|---|---|---|---|"]
    for r in records:
        if r.status != "ok":
            lines.append(f"| {r.model} | {r.framework} | {r.key} | {r.route} | - | - | unsupported: {r.reason} |")
            continue
        if r.ops is None:
            ops = "TF.js graph model"
        else:
            ops = f"{r.ops['op_count']} ops, " + ("builtin only" if r.ops["builtin_only"] else
                                                   f"**needs {', '.join(r.ops['non_builtin_ops'])}**")
        lines.append(f"| {r.model} | {r.framework} | {r.key} | {r.route} | {r.size_bytes / 1024:.0f} KiB | "
                     f"{r.convert_seconds:.1f} | {ops} |")
    return "\n".join(lines)
