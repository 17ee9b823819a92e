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

    tensors_in, tensors_out = manifest_tensors(spec, record)
    pre = checkpoint_meta.get("preprocessing", {})
    manifest = {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, "edgeproof_version": __version__,
        "model": spec.name, "framework": record.framework, "task": spec.task.value, "description": spec.description,
        "deploy_target": target.value, "artifact_target": record.target, "mode": record.mode, "route": record.route,
        "variant": record.variant, "recipe": record.recipe,
        "model_file": model_file,
        "inputs": tensors_in,
        "outputs": tensors_out,
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


def manifest_tensors(spec: ModelContract, record) -> tuple[list[dict], list[dict]]:
    """The manifest's input and output entries: the contract's names bound to the artifact's tensors."""
    from edgeproof.runtime._signature import bind
    from edgeproof.verify._runners import canonical

    ins, outs = canonical(spec)
    return (_tensors(bind(ins, [vars(t) for t in record.inputs])), _tensors(bind(outs, [vars(t) for t in record.outputs])))


def _self_test(spec: ModelContract, record, tmp: Path, model_file: str) -> dict:
    """The golden self-test of a bundle: the contract's probes, this artifact's own outputs on them with
    ai-edge-litert (and tflite-runtime 2.14 where .venv-edge exists) for a .tflite, with TF.js (wasm, in
    Node) for a TF.js bundle, and the tolerance for its precision."""
    from ._selftest import (TFJS_FAMILY, probes_in_edge_env, run_probes, run_tfjs_probes, tfjs_tolerance,
                            tolerance_for, write_self_test)

    probes = spec.probe_inputs()
    if record.target != Target.TFLITE.value:
        outputs = run_tfjs_probes(spec, record, tmp, model_file, probes)
        return write_self_test(tmp, probes, outputs, tfjs_tolerance(), family=TFJS_FAMILY)
    ins, outs = manifest_tensors(spec, record)
    path = tmp / model_file
    outputs = run_probes(path, ins, outs, probes)
    return write_self_test(tmp, probes, outputs, tolerance_for(path, record.mode),
                           probes_in_edge_env(path, ins, outs, probes))


def write_bundle(spec: ModelContract, root: Path, meta: dict, record, verdict, target: DeployTarget, out: Path,
                 override: Optional[str], name: Optional[str] = None, browser: Optional[dict] = None,
                 sign_key: Optional[Path] = None) -> Path:
    """One bundle folder under `out` (named `name`, default model-framework-mode[-variant]) for the artifact
    `record` of the model in `root`; `browser`: its verdicts in browser runtimes, for the demo; `sign_key`: a
    private key signing every file (OpenSSF model-signing), the manifest included."""
    _json = json
    dest = out / (name or bundle_name(spec.name, record.framework, record.mode, record.variant))
    with replacing_dir(dest) as tmp:
        model_file = copy_artifact(root, record, tmp)
        (tmp / "preprocessing.json").write_text(_json.dumps(meta.get("preprocessing", {})))
        self_test = _self_test(spec, record, tmp, model_file)
        files = {p.name: sha256_of(p) for p in sorted(tmp.iterdir())}
        sizes = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
        runtime = None
        if record.target == Target.TFLITE.value:
            from ._device_packages import runtime_requirements

            runtime = runtime_requirements(tmp / model_file)
        manifest = build_manifest(spec, record, verdict, meta, target, files, sizes, model_file, override, runtime)
        manifest["browser_verdicts"] = browser or {}
        if self_test is not None:
            manifest["self_test"] = self_test
        (tmp / MANIFEST).write_text(_json.dumps(manifest, indent=2))
        if sign_key is not None:
            from ._signing import sign_bundle

            sign_bundle(tmp, sign_key)
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
                        "override": m["override"] is not None, "latency_ms": m["verdict"].get("latency_ms"),
                        "bytes": sum(f["bytes"] for f in m["files"].values())})
    index = {"target": result.target.value, "bundles": bundles,
             "preferred": preferred(bundles, getattr(result, "prefer", "size")),
             "refused": [{"artifact": r.artifact, "reason": r.reason} for r in result.refused]}
    write_bytes_atomic(out / "index.json", json.dumps(index, indent=2).encode())


def bundle_manifests(out: Path) -> list[Path]:
    """manifest.json of every bundle in `out`: hidden folders (temporary, set aside) never count."""
    from edgeproof._atomic import visible_children

    return [p / MANIFEST for p in visible_children(out, MANIFEST)]


def preferred(bundles: list[dict], prefer: str = "size") -> dict[str, dict]:
    """Per model, framework and artifact kind: the passing bundle to ship when only one goes (the smallest, or
    the fastest by its verified latency), and why."""
    groups: dict[str, list[dict]] = {}
    for b in bundles:
        if b["verdict"] == "pass" and not b["override"]:
            groups.setdefault(f"{b['model']}/{b['framework']}/{b['artifact_target']}", []).append(b)
    chosen = {}
    for key, group in groups.items():
        if prefer == "latency" and all(b.get("latency_ms") is not None for b in group):
            best = min(group, key=lambda b: (b["latency_ms"], b["bytes"]))
            measure = lambda b: f"{b['latency_ms']:.3g} ms"  # noqa: E731
        else:
            best = min(group, key=lambda b: (b["bytes"], b.get("latency_ms") or 0.0))
            measure = lambda b: f"{b['bytes'] / 1024:.0f} KiB"  # noqa: E731
        others = ", ".join(f"{b['bundle']} {measure(b)}" for b in group if b is not best)
        chosen[key] = {"bundle": best["bundle"], "why": f"{'fastest' if prefer == 'latency' else 'smallest'} passing "
                                                         f"artifact: {measure(best)}" + (f" (others: {others})" if others else "")}
    return chosen