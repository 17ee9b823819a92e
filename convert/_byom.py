"""Bring your own model: `convert_user_model()` takes a Keras, ONNX or PyTorch model plus sample data
through the same machinery as the reference models: SavedModel -> every TFLite / TF.js precision
(worker process, conversion.json), every artifact verified against the source model (parity.json),
a report; `edgeproof deploy --model NAME` then bundles the passing artifacts.

Everything is checked before anything is written, and the output folder
artifacts/<name>/<keras|onnx|torch>/ is built in a temporary sibling and renamed into place at the
end: a failure leaves no partial folder (and an earlier good one untouched)."""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from edgeproof._atomic import replacing_dir, write_bytes_atomic
from edgeproof._quant import QuantMode, Target
from edgeproof._spec import ModelSpec, ParityBudget
from edgeproof.errors import SampleDataError, UserConversionError, UserModelError

from ._artifact import ArtifactRecord
from ._byom_sample import SampleSource, load_sample_data, sanitize
from ._byom_spec import (NO_LABELS, PROBE_COUNT, SOURCES, UserModelInfo, choose_metric, chunked, info_for, make_spec,
                         output_specs, parse_input_shapes, parse_layouts, resolve_inputs, static_batch, write_info)
from ._onnx_backends import OnnxBackend

REPORT_MD = "report.md"


def _one_line(err: BaseException, limit: int = 400) -> str:
    text = " ".join(str(err).split())
    return (f"{type(err).__name__}: {text}" if text else type(err).__name__)[:limit]


@dataclass
class UserModelResult:
    name: str
    source: str  # keras | onnx | torch
    root: Path  # artifacts/<name>/<source>
    spec: ModelSpec
    records: list[ArtifactRecord]
    verification: Any  # edgeproof.verify.ModelVerification
    info: UserModelInfo
    report: Path  # root/report.md
    artifacts_report: dict[str, Path] = field(default_factory=dict)  # parity_report.{md,html,json} of the folder

    @property
    def verdicts(self):
        return self.verification.verdicts

    @property
    def onnx_backend(self) -> Optional[str]:
        return (self.info.onnx_backend or {}).get("used")


def detect_kind(model: Any, kind: Optional[str]) -> str:
    if kind is not None:
        kind = str(kind).lower()
        if kind not in SOURCES:
            raise UserModelError(f"unknown model kind {kind!r}; choose one of {list(SOURCES)}")
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
    module = type(model).__module__.split(".")[0]
    if module == "torch" or any(c.__module__.startswith("torch.") for c in type(model).__mro__):
        return "torch"
    if module in ("tf_keras", "keras") or any(c.__module__.startswith(("tf_keras.", "keras.")) for c in type(model).__mro__):
        return "keras"
    if callable(model):
        return "torch"  # a factory
    raise UserModelError(f"cannot tell what kind of model a {type(model).__name__} is: pass kind=")


def _default_name(model: Any, kind: str) -> str:
    if isinstance(model, (str, Path)):
        text = str(model)
        stem = text.split(":")[-1] if kind == "torch" else Path(text.rstrip("/")).stem
    else:
        stem = getattr(model, "name", None) or getattr(model, "__name__", None) or type(model).__name__
    return sanitize(str(stem)).lower()


def _check_name(name: str) -> str:
    from edgeproof._registry import model_names

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise UserModelError(f"model name {name!r}: use letters, digits, '_', '-' or '.' (it names the output folder)")
    if name in model_names():
        raise UserModelError(f"{name!r} is a reference model's name: pass another --name for your model")
    return name


def _open_source(kind: str, model: Any, weights, custom_objects):
    if kind == "keras":
        from ._byom_keras import KerasSource

        return KerasSource(model, custom_objects)
    if kind == "onnx":
        from ._byom_onnx import OnnxSource

        if not isinstance(model, (str, Path)):
            raise UserModelError("an ONNX model is given as a path to a .onnx file")
        return OnnxSource(model)
    from ._byom_torch import TorchSource

    return TorchSource(model, weights)


def _backends(kind: str, onnx_backend: Optional[str]) -> list[OnnxBackend]:
    if kind == "keras":
        return []
    if onnx_backend in (None, "auto"):
        return [OnnxBackend.ONNX2TF, OnnxBackend.ONNX_TF]
    return [OnnxBackend(onnx_backend)]


def _created_parents(root: Path) -> list[Path]:
    """The folders above `root` that do not exist yet (removed again if the conversion fails)."""
    out, p = [], root.parent
    while not p.exists():
        out.append(p)
        p = p.parent
    return out


def convert_user_model(model: Any, *, sample_data: SampleSource, kind: Optional[str] = None,
                       name: Optional[str] = None, weights: Optional[Path | str] = None,
                       metric: Optional[str] = None, input_shapes=None, layouts=None,
                       custom_objects: Optional[Mapping[str, Any]] = None,
                       targets: Iterable[str] = ("tflite", "tfjs"), modes: Optional[Iterable[str]] = None,
                       onnx_backend: Optional[str] = None, artifacts: Path | str = "artifacts",
                       representative_samples: int = 256, int8_io: bool = False,
                       budgets: Optional[Mapping[Any, ParityBudget]] = None, tfjs_backend: str = "wasm",
                       progress: bool = True) -> UserModelResult:
    """Convert, verify and report a user's own model; returns where everything went.

    model: a .keras/.h5 file or SavedModel folder (kind "keras"), a .onnx file ("onnx"), or
    "module.path:factory" / a factory / a torch.nn.Module ("torch", with optional `weights`: a
    state dict file); a tf-keras Model object also works. sample_data: a .npz (or a dict of arrays)
    with one array per input, named like the inputs, and optionally `labels`. metric: accuracy, mse
    or none (default: from the labels; none without labels = numeric parity only). input_shapes:
    {"name": (None, 3, 64, 64)} or ["name=N,3,64,64"]; layouts: "NCHW" or {"name": "NHWC"}.
    custom_objects: Keras custom layers {"Name": Class}. onnx_backend: None/"auto" tries onnx2tf,
    then onnx-tf; a backend name forces it."""
    say = print if progress else (lambda *a, **k: None)
    kind = detect_kind(model, kind)
    name = _check_name(name or _default_name(model, kind))
    configs_probe = [Target(t) for t in targets]  # bad targets fail before any work
    shapes, layout_overrides = parse_input_shapes(input_shapes), parse_layouts(layouts)
    if weights is not None and kind != "torch":
        raise UserModelError("--weights goes with --torch (a state dict for the module the factory builds)")
    sample = load_sample_data(sample_data)  # cheap checks first: no framework is imported for a bad file
    if kind == "onnx" or (kind == "keras" and isinstance(model, (str, Path))):
        from ._byom_files import require_exists

        require_exists(model, "ONNX model" if kind == "onnx" else "Keras model")
    source = _open_source(kind, model, weights, custom_objects)
    declared = source.declared_inputs(sample)
    input_tensors, sample_inputs, fixed = resolve_inputs(declared, sample, kind, shapes, layout_overrides)

    # A model with a fixed batch (an ONNX file exported with batch 1, say) runs in steps of it.
    step = static_batch(input_tensors)
    usable = sample.count - sample.count % (step or 1)
    if usable == 0:
        raise SampleDataError(f"the model takes a fixed batch of {step}; {sample.where} has only {sample.count} examples")
    sample_inputs = {k: v[:usable] for k, v in sample_inputs.items()}
    sample_labels = None if sample.labels is None else sample.labels[:usable]
    reference = chunked(source.reference, step or 256)

    # The source model on the sample data: output names and shapes, and the metric.
    probe_count = min(PROBE_COUNT, usable) // (step or 1) * (step or 1)
    probes = {k: v[:probe_count] for k, v in sample_inputs.items()}
    try:
        reference_probe = reference(probes)
    except UserModelError:
        raise
    except Exception as err:  # e.g. onnxruntime refusing the sample's shapes
        raise UserModelError(f"the {kind} model fails on the sample data ({_one_line(err)}); its inputs: "
                             + ", ".join(f"{t.name} {list(t.shape)} {t.dtype}" for t in input_tensors)) from None
    out_names = list(source.output_names)
    outputs = output_specs(out_names, reference_probe, kind)
    metric_name, threshold = choose_metric(metric, sample_labels, reference_probe[out_names[0]])
    labels = None if metric_name == "none" else sample_labels
    where = (str(Path(source.path).resolve()) if isinstance(source.path, Path) else source.path) or "<in-memory model>"
    spec = make_spec(name, f"user model ({kind}: {where})", input_tensors, outputs, metric_name, budgets, probes)
    from edgeproof.convert._api import requested_configs

    configs = requested_configs(spec, [t.value for t in configs_probe], modes, representative_samples, int8_io)
    kept = sample.where if isinstance(sample_data, Mapping) else str(Path(sample_data).resolve())
    info = info_for(spec, kind, str(where), fixed, threshold, labels is not None, kept, usable)
    info.weights = None if weights is None else str(Path(weights).resolve())  # `edgeproof verify` rebuilds from these
    say(f"[{name}/{kind}] {len(spec.inputs)} inputs ({', '.join(f'{t.name} {list(t.shape)} {t.dtype} {t.layout.value}' for t in spec.inputs)}), "
        f"{len(spec.outputs)} outputs, metric: {metric_name if labels is not None else NO_LABELS}", flush=True)

    root = Path(artifacts) / name / kind
    created = _created_parents(root)
    try:
        with replacing_dir(root) as tmp:
            result = _build(tmp, source, reference, spec, fixed, probes, reference_probe, configs, sample_inputs, labels,
                            threshold, info, kind, _backends(kind, onnx_backend), tfjs_backend, progress, say)
    except BaseException:
        for folder in created:
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    records, verification = result
    result_ = UserModelResult(name, kind, root, spec, records, verification, info, root / REPORT_MD)
    try:
        from edgeproof.verify._report import write_report

        result_.artifacts_report = write_report(artifacts)
    except Exception as err:  # the model's own report is written; the folder-wide one is a convenience
        say(f"   (the report over {artifacts} was not rewritten: {type(err).__name__}: {err})", flush=True)
    return result_


def _build(tmp: Path, source, reference, spec, fixed, probes, reference_probe, configs, sample_inputs, labels,
           threshold, info, kind, backends, tfjs_backend, progress, say):
    from edgeproof.verify._byom import verify_user_model

    from ._api import convert_cells
    from ._byom_savedmodel import layout_changes, tensor_infos

    t0 = time.perf_counter()
    notes = source.save_source(tmp)
    try:
        exported = source.export_saved_model(spec, fixed, tmp, probes, reference_probe, backends, say)
    except UserModelError:
        raise
    except Exception as err:  # the Keras route has one converter: its failure ends the conversion
        raise UserConversionError(f"{kind} -> TensorFlow SavedModel failed: {_one_line(err)}") from None
    if kind == "keras":
        bound, route, prefer, converter = exported, ["keras", "saved_model"], None, "Keras SavedModel"
    else:
        bound, prefer, converter = exported.bound, exported.prefer_layout, exported.backend.value
        route = ([kind] if kind == "onnx" else ["torch", exported.exporter]) + [exported.backend.value]
        notes += exported.notes
        info.onnx_backend = exported.record()
    if info.casts:
        notes.append("int64 inputs take int32 in the artifacts (cast to int64 inside): " + "; ".join(info.casts))
    source_seconds = time.perf_counter() - t0
    calibration = None
    if any(c.mode is QuantMode.INT8 for c in configs):
        calibration = bound.feed(sample_inputs)

    def describe(target: Target, described):
        if target is Target.TFLITE:
            ins, outs = described
        else:
            ins, outs = (_tfjs_described(described["inputs"]), _tfjs_described(described["outputs"]))
        inputs, outputs = tensor_infos(ins, spec.inputs, prefer), tensor_infos(outs, spec.outputs, prefer)
        return inputs, outputs, layout_changes(spec, inputs, converter)

    records = convert_cells(spec.name, kind, tmp, configs, bound.path, calibration, route, notes, source_seconds,
                            describe, say)
    conversion = {"artifacts": [r.to_dict() for r in records], "source": {"kind": kind, "path": info.source_path},
                  "onnx_backend": info.onnx_backend, "notes": notes}
    write_bytes_atomic(tmp / "conversion.json", json.dumps(conversion, indent=2).encode())
    info.notes = notes
    write_info(tmp, info)
    verification = verify_user_model(spec, kind, tmp, records, reference, sample_inputs, labels, threshold,
                                     tfjs_backend=tfjs_backend, progress=progress)
    _write_model_report(tmp, spec, info, records, verification)
    return records, verification


_TF_DTYPES = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_INT64": "int64", "DT_HALF": "float16", "DT_BOOL": "bool"}


def _tfjs_described(signature: dict) -> list[dict]:
    return [{"name": key, "shape": [int(d.get("size", -1)) for d in t.get("tensorShape", {}).get("dim", [])],
             "dtype": _TF_DTYPES.get(t.get("dtype"), t.get("dtype", "?"))}
            for key, t in sorted(signature.items())]


def _write_model_report(root: Path, spec: ModelSpec, info: UserModelInfo, records, verification) -> None:
    """report.md beside parity.json, plus the outputs / errors plots."""
    from edgeproof.verify._plots import error_distribution, outputs_scatter
    from edgeproof.verify._report import markdown

    ref = verification.reference
    lines = [f"# {spec.name} ({info.source}): conversion and parity report", "",
             f"Source: {info.source} model `{info.source_path}`; sample data `{info.sample_data}` "
             f"({info.examples} examples).", ""]
    if not info.labels:
        lines += [f"**Verdict basis: {NO_LABELS}.** The sample data has no `labels` array, so every artifact is "
                  f"judged by its outputs against the source model's (max abs error, cosine) only.", ""]
    else:
        lines += [f"Metric: {ref.metric} of the first output on the sample data; the source model scores "
                  f"{ref.value:.4g}.", ""]
    lines += ["Inputs: " + ", ".join(f"`{t['name']}` {t['shape']} {t['dtype']} {t['layout']}" for t in info.inputs),
              "", "Outputs: " + ", ".join(f"`{t['name']}` {t['shape']} {t['dtype']}" for t in info.outputs), ""]
    if info.onnx_backend:
        lines.append(f"ONNX -> TensorFlow: **{info.onnx_backend['used']}** worked. Attempts: " + "; ".join(
            f"{a['backend']}: " + ("ok" if a["ok"] else f"failed ({a['error']})") for a in info.onnx_backend["attempts"]))
        lines.append("")
    for note in info.casts:
        lines.append(f"- {note}")
    lines += ["", markdown([(vars(ref), verification.verdicts)]).split("\n\nKeras vs PyTorch")[0], ""]
    write_bytes_atomic(root / REPORT_MD, "\n".join(lines).encode())
    if verification.probe_outputs:
        folder = root / "verification"
        folder.mkdir(exist_ok=True)
        title = f"{spec.name} ({info.source})"
        outputs_scatter(title, verification.probe_outputs, folder / "outputs.png")
        error_distribution(title, verification.probe_outputs, folder / "errors.png")
