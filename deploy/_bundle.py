"""A bundle: everything a runtime or a browser needs to use a model with no other knowledge: the model
file(s), the tensor signature (names, shapes, dtypes, layouts, int8 scale/zero-point), the preprocessing
with its vocabularies and labels, where the model came from, the verdict, and a sha256 for every file.
Written atomically (a temporary sibling folder, then swapped in)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Optional

from edgeproof._atomic import replacing_dir, write_bytes_atomic
from edgeproof._quant import Target
from edgeproof._spec import ModelContract
from edgeproof.runtime._manifest import sha256_of
from edgeproof.verify import ArtifactVerdict

from ._targets import DeployTarget

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "edgeproof-bundle"
BUNDLE_FORMAT_VERSION = 1


def bundle_name(model: str, framework: str, mode: str, variant: Optional[str] = None) -> str:
    return f"{model}-{framework}-{mode}" + (f"-{variant}" if variant else "")


def _tensors(bindings) -> list[dict[str, Any]]:
    return [{"name": b.canonical, "tensor": b.name, "shape": list(b.shape), "dtype": b.dtype, "layout": b.layout,
             "canonical_layout": b.canonical_layout, "quantization": b.quantization} for b in bindings]


def build_manifest(spec: ModelContract, record, verdict: ArtifactVerdict, checkpoint_meta: dict,
                   target: DeployTarget, files: dict[str, str], sizes: dict[str, int], model_file: str,
                   override: Optional[str] = None, runtime: Optional[dict] = None) -> dict[str, Any]:
    from edgeproof import __version__
    from edgeproof.runtime._signature import bind

    from edgeproof.verify._runners import canonical

    ins, outs = canonical(spec)
    pre = checkpoint_meta.get("preprocessing", {})
    manifest = {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, "edgeproof_version": __version__,
        "model": spec.name, "framework": record.framework, "task": spec.task.value, "description": spec.description,
        "deploy_target": target.value, "artifact_target": record.target, "mode": record.mode, "route": record.route,
        "variant": record.variant, "recipe": record.recipe,
        "model_file": model_file,
        "inputs": _tensors(bind(ins, [vars(t) for t in record.inputs])),
        "outputs": _tensors(bind(outs, [vars(t) for t in record.outputs])),
        "layout_changes": record.layout_changes,
        "preprocessing_file": "preprocessing.json",
        "labels": pre.get("labels"),
        "ops": record.ops,
        "runtime_requirements": runtime,
        "metric": {"name": verdict.metric, "reference": verdict.reference_metric, "artifact": verdict.artifact_metric,
                   "drop": verdict.metric_drop, "test_examples": verdict.test_examples,
                   "higher_is_better": spec.metric.higher_is_better},
        "verdict": {"status": verdict.status.value, "summary": verdict.summary(), "runtime": verdict.runtime,
                    "probe": verdict.probe, "test_agreement": verdict.test_agreement, "budget": verdict.budget,
                    "failures": [vars(f) for f in verdict.failures], "latency_ms": verdict.latency_ms},
        "override": None if override is None else {"reason": override, "verdict_overridden": verdict.summary()},
        "training": {k: checkpoint_meta.get(k) for k in ("profile", "epochs", "seed")},
        "source": checkpoint_meta.get("source"),
        "files": {name: {"sha256": files[name], "bytes": sizes[name]} for name in sorted(files)},
    }
    for entry, t in zip(manifest["inputs"], spec.inputs):
        if t.dtype != entry["dtype"] and not entry.get("quantization"):
            entry["source_dtype"] = t.dtype  # e.g. int64 ids: the runtime casts them (range-checked)
    manifest["verdict"]["basis"] = verdict.details.get("parity") or (
        f"{verdict.metric} on {verdict.test_examples} examples" if verdict.test_examples else verdict.metric)
    return manifest


def copy_artifact(root: Path, record, dest: Path) -> str:
    """Copy the artifact's files into the bundle; return the model file's name there."""
    src = root / record.path
    if record.target == Target.TFLITE.value:
        shutil.copyfile(src, dest / "model.tflite")
        return "model.tflite"
    for p in sorted(src.parent.iterdir()):
        if p.is_file():
            shutil.copyfile(p, dest / p.name)
    return src.name


def write_bundle(spec: ModelContract, root: Path, meta: dict, record, verdict, target: DeployTarget, out: Path,
                 override: Optional[str], name: Optional[str] = None, browser: Optional[dict] = None) -> Path:
    """One bundle folder under `out` (named `name`, default model-framework-mode[-variant]) for the artifact
    `record` of the model in `root`; `browser`: its verdicts in browser runtimes, for the demo."""
    _json = json
    dest = out / (name or bundle_name(spec.name, record.framework, record.mode, record.variant))
    with replacing_dir(dest) as tmp:
        model_file = copy_artifact(root, record, tmp)
        (tmp / "preprocessing.json").write_text(_json.dumps(meta.get("preprocessing", {})))
        files = {p.name: sha256_of(p) for p in sorted(tmp.iterdir())}
        sizes = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
        runtime = None
        if record.target == Target.TFLITE.value:
            from ._device_packages import runtime_requirements

            runtime = runtime_requirements(tmp / model_file)
        manifest = build_manifest(spec, record, verdict, meta, target, files, sizes, model_file, override, runtime)
        manifest["browser_verdicts"] = browser or {}
        (tmp / MANIFEST).write_text(_json.dumps(manifest, indent=2))
    return dest


def write_index(out: Path, result) -> None:
    """index.json: every bundle in `out` (including earlier deploys of other models) and this run's refusals."""
    out.mkdir(parents=True, exist_ok=True)
    bundles = []
    for manifest_path in bundle_manifests(out):
        m = json.loads(manifest_path.read_text())
        bundles.append({"bundle": manifest_path.parent.name, "model": m["model"], "framework": m["framework"],
                        "mode": m["mode"], "variant": m.get("variant"), "task": m["task"],
                        "artifact_target": m.get("artifact_target"), "verdict": m["verdict"]["status"],
                        "override": m["override"] is not None,
                        "bytes": sum(f["bytes"] for f in m["files"].values())})
    index = {"target": result.target.value, "bundles": bundles,
             "refused": [{"artifact": r.artifact, "reason": r.reason} for r in result.refused]}
    write_bytes_atomic(out / "index.json", json.dumps(index, indent=2).encode())


def bundle_manifests(out: Path) -> list[Path]:
    """manifest.json of every bundle in `out`: hidden folders (temporary, set aside) never count."""
    return sorted(p for p in Path(out).glob(f"*/{MANIFEST}") if not p.parent.name.startswith("."))
