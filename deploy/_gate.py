"""The deploy gate: bundles (model files + manifest.json) built from artifacts that passed verification.

A bundle is everything a runtime or a browser needs to use a model with no other knowledge: the
model file(s), the tensor signature (names, shapes, dtypes, layouts, int8 scale/zero-point), the
preprocessing with its vocabularies and labels, the verdict, and a sha256 for every file.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Optional

from edgeproof._atomic import replacing_dir, write_bytes_atomic
from edgeproof._quant import QuantMode, Target
from edgeproof._registry import get_spec, training_order
from edgeproof._spec import Framework, ModelSpec, Task
from edgeproof.errors import DeployRefusedError, UnknownModelError

from edgeproof.runtime._manifest import sha256_of

from edgeproof.verify._api import load_verdicts
from edgeproof.verify._files import artifact_files
from edgeproof.verify._verdict import ArtifactVerdict, Status

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "edgeproof-bundle"
BUNDLE_FORMAT_VERSION = 1


class DeployTarget(str, Enum):
    WEB = "web"  # TF.js graph models for the browser demo
    PI = "pi"  # .tflite for tflite-runtime / ai-edge-litert on a Raspberry Pi
    ANDROID = "android"  # .tflite for the LiteRT Interpreter, builtin ops only

    @property
    def artifact_target(self) -> Target:
        return Target.TFJS if self is DeployTarget.WEB else Target.TFLITE


@dataclass
class Refusal:
    artifact: str
    reason: str


@dataclass
class DeployResult:
    target: DeployTarget
    out: Path
    bundles: list[Path] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    package: Optional[Path] = None  # pi: the tarball; android: the README with Kotlin; web: the site


def bundle_name(model: str, framework: str, mode: str) -> str:
    return f"{model}-{framework}-{mode}"


def _refusal(verdict: Optional[ArtifactVerdict], key: str, root: Path, target: DeployTarget) -> Optional[str]:
    """Why an artifact may not ship (None: it may)."""
    if verdict is None:
        return "never verified: run `edgeproof verify` first"
    if verdict.status is Status.UNSUPPORTED:
        return f"unsupported: {verdict.reason}"
    if verdict.status is Status.FAIL:
        return verdict.summary()
    current = artifact_files(root, verdict.path)
    if current != verdict.files:
        changed = sorted(set(current.items()) ^ set(verdict.files.items()))
        return (f"changed since it was verified ({', '.join(sorted({p for p, _ in changed}))}): "
                f"run `edgeproof verify` again")
    return None


def _android_refusal(record) -> Optional[str]:
    ops = record.ops or {}
    if ops and not ops.get("builtin_only", True):
        return (f"needs non-builtin ops {', '.join(ops.get('non_builtin_ops', []))}: the LiteRT Interpreter on Android "
                f"runs builtin ops only (Flex ops would need the select-TF-ops AAR, several MB); not deployed")
    return None


def _tensors(bindings) -> list[dict[str, Any]]:
    return [{"name": b.canonical, "tensor": b.name, "shape": list(b.shape), "dtype": b.dtype, "layout": b.layout,
             "canonical_layout": b.canonical_layout, "quantization": b.quantization} for b in bindings]


def build_manifest(spec: ModelSpec, record, verdict: ArtifactVerdict, checkpoint_meta: dict, target: DeployTarget,
                   files: dict[str, str], sizes: dict[str, int], model_file: str,
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
        "files": {name: {"sha256": files[name], "bytes": sizes[name]} for name in sorted(files)},
    }
    if spec.task is Task.CUSTOM:  # a user's own model: where it came from, casts at the boundary, verdict basis
        manifest["source"] = checkpoint_meta.get("source")
        for entry, t in zip(manifest["inputs"], spec.inputs):
            if t.dtype != entry["dtype"] and not entry.get("quantization"):
                entry["source_dtype"] = t.dtype  # e.g. int64 ids: the runtime casts them (range-checked)
        manifest["verdict"]["basis"] = verdict.details.get("parity") or f"{verdict.metric} on the sample data"
    return manifest


def _copy_artifact(root: Path, record, dest: Path) -> str:
    """Copy the artifact's files into the bundle; return the model file's name there."""
    src = root / record.path
    if record.target == Target.TFLITE.value:
        shutil.copyfile(src, dest / "model.tflite")
        return "model.tflite"
    for p in sorted(src.parent.iterdir()):
        if p.is_file():
            shutil.copyfile(p, dest / p.name)
    return src.name


def deploy(target: DeployTarget | str, *, artifacts: Path | str = "artifacts", out: Optional[Path | str] = None,
           models: Optional[Iterable[str]] = None, frameworks: Optional[Iterable[str]] = None,
           modes: Optional[Iterable[str]] = None, allow_failed: Optional[str] = None,
           progress: bool = True) -> DeployResult:
    """Build one bundle per passing artifact for `target` under `out` (default artifacts/deploy/<target>).

    Artifacts that failed, were never verified or changed since are refused with their reason; when
    the caller named exactly what to deploy and nothing passes, DeployRefusedError says why.
    `allow_failed="reason"` ships failed (never unsupported) artifacts and writes the override into
    their manifest.
    """
    from edgeproof.train import model_dir

    target = DeployTarget(target)
    if allow_failed is not None and not allow_failed.strip():
        raise ValueError("--allow-failed needs a reason, which is written into the manifest")
    say = print if progress else (lambda *a, **k: None)
    out = Path(out) if out else Path(artifacts) / "deploy" / target.value
    wanted_modes = None if modes is None else {QuantMode(m).value for m in modes}
    fws = [Framework(f) for f in (frameworks or [f.value for f in Framework]) if getattr(f, "value", f) not in USER_SOURCES]
    result = DeployResult(target, out)
    explicit = models is not None
    registry, user = _split_models(artifacts, models)
    for name in training_order(registry):
        spec = get_spec(name)
        for framework in fws:
            _deploy_model(spec, framework.value, model_dir(artifacts, name, framework), target, out, wanted_modes,
                          allow_failed, result, say)
    for spec, source, root in user:  # users' own models (bring your own model), by their source
        if frameworks is None or source in {getattr(f, "value", f) for f in frameworks}:
            _deploy_model(spec, source, root, target, out, wanted_modes, allow_failed, result, say)
    _write_index(out, result)
    _write_device_files(out, result)
    if explicit and not result.bundles:
        raise DeployRefusedError("nothing to deploy: " + "; ".join(f"{r.artifact}: {r.reason}" for r in result.refused)
                                 if result.refused else f"no {target.artifact_target.value} artifacts found under "
                                 f"{artifacts} for the requested models: run `edgeproof convert` and `edgeproof verify`")
    return result


USER_SOURCES = ("onnx",)  # sources only users' own models have (keras and torch are Frameworks too)


def _split_models(artifacts, models) -> tuple[Optional[list[str]], list]:
    """Requested names -> (reference model names for training_order, [(spec, source, folder)] of users'
    own models found under `artifacts`). No names: every reference model and every user model. A name
    that is neither is an UnknownModelError listing both kinds."""
    from edgeproof._registry import model_names
    from edgeproof.convert._byom_spec import find_user_models

    if not models:
        return None, find_user_models(artifacts)
    known = set(model_names())
    names = list(models)
    user_names = [n for n in names if n not in known]
    user = find_user_models(artifacts, user_names) if user_names else []
    found = {spec.name for spec, _, _ in user}
    unknown = [n for n in user_names if n not in found]
    if unknown:
        mine = sorted({spec.name for spec, _, _ in find_user_models(artifacts)})
        raise UnknownModelError(unknown[0], sorted(known), user_models=mine, artifacts=str(artifacts))
    return [n for n in names if n in known], user


def _deploy_model(spec, framework: str, root: Path, target, out, wanted_modes, allow_failed, result, say) -> None:
    """Bundle every passing artifact of one (model, framework or source) folder; record the refusals."""
    from edgeproof.convert._api import load_records

    name = spec.name
    records = {r.key: r for r in load_records(root) if r.target == target.artifact_target.value}
    _, verdicts = load_verdicts(root)
    by_key = {f"{v.target}/{v.mode}": v for v in verdicts}
    for key, record in records.items():
        if wanted_modes is not None and record.mode not in wanted_modes:
            continue
        label = f"{name}/{framework}/{key}"
        verdict = by_key.get(key)
        reason = _refusal(verdict, label, root, target)
        if reason is not None and spec.task is Task.CUSTOM:  # a user model is verified by name, from its folder
            reason = reason.replace("run `edgeproof verify`", f"run `edgeproof verify --model {name}`")
        if reason is None and target is DeployTarget.ANDROID:
            reason = _android_refusal(record)
        override = None
        if reason is not None and allow_failed is not None and verdict is not None \
                and verdict.status is Status.FAIL and verdict.failures:  # budgets, not a broken file
            override = allow_failed
            stale = verdict.path and artifact_files(root, verdict.path) != verdict.files
            if stale:
                again = f"edgeproof verify --model {name}" if spec.task is Task.CUSTOM else "edgeproof verify"
                reason, override = f"changed since it was verified: run `{again}` again", None
        if reason is not None and override is None:
            result.refused.append(Refusal(label, reason))
            say(f"   refused {label}: {reason}", flush=True)
            old = out / bundle_name(name, framework, record.mode)
            if old.exists():  # a bundle from an earlier deploy must not outlive this verdict
                shutil.rmtree(old)
            continue
        result.bundles.append(_write_bundle(spec, root, record, verdict, target, out, override))
        say(f"   bundle {result.bundles[-1]}" + (f" (OVERRIDE: {override})" if override else ""), flush=True)


def _write_device_files(out: Path, result: DeployResult) -> None:
    from ._device_packages import write_android_readme, write_pi_package

    bundles = sorted(p.parent for p in out.glob(f"*/{MANIFEST}"))
    if result.target is DeployTarget.PI and bundles:
        result.package = write_pi_package(out, bundles)
    elif result.target is DeployTarget.ANDROID and bundles:
        result.package = write_android_readme(out, bundles)
    elif result.target is DeployTarget.WEB:
        from ._site import build_site

        result.package = build_site(out)  # the static demo: index.html, src/, vendor/ (TF.js from npm)


def _source_meta(root: Path) -> dict:
    """checkpoint.json of a trained reference model; for a user's own model, its preprocessing (none:
    raw tensors, with the sample data's value ranges and the int64 -> int32 casts) from user_model.json."""
    from edgeproof.convert._byom_spec import read_info
    from edgeproof.train._checkpoint import META

    info = read_info(root)
    if info is not None and not (root / "checkpoint" / META).exists():
        return {"preprocessing": info.preprocessing(), "source": {"kind": info.source, "path": info.source_path}}
    return json.loads((root / "checkpoint" / META).read_text())


def _write_bundle(spec, root, record, verdict, target, out, override) -> Path:
    import json as _json

    meta = _source_meta(root)
    dest = out / bundle_name(spec.name, record.framework, record.mode)
    with replacing_dir(dest) as tmp:
        model_file = _copy_artifact(root, record, tmp)
        (tmp / "preprocessing.json").write_text(_json.dumps(meta.get("preprocessing", {})))
        files = {p.name: sha256_of(p) for p in sorted(tmp.iterdir())}
        sizes = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
        runtime = None
        if record.target == Target.TFLITE.value:
            from ._device_packages import runtime_requirements

            runtime = runtime_requirements(tmp / model_file)
        manifest = build_manifest(spec, record, verdict, meta, target, files, sizes, model_file, override, runtime)
        (tmp / MANIFEST).write_text(_json.dumps(manifest, indent=2))
    return dest


def _write_index(out: Path, result: DeployResult) -> None:
    """index.json: every bundle in `out` (including earlier deploys of other models) and this run's refusals."""
    out.mkdir(parents=True, exist_ok=True)
    bundles = []
    for manifest_path in sorted(out.glob(f"*/{MANIFEST}")):
        m = json.loads(manifest_path.read_text())
        bundles.append({"bundle": manifest_path.parent.name, "model": m["model"], "framework": m["framework"],
                        "mode": m["mode"], "task": m["task"], "verdict": m["verdict"]["status"],
                        "override": m["override"] is not None,
                        "bytes": sum(f["bytes"] for f in m["files"].values())})
    index = {"target": result.target.value, "bundles": bundles,
             "refused": [{"artifact": r.artifact, "reason": r.reason} for r in result.refused]}
    write_bytes_atomic(out / "index.json", json.dumps(index, indent=2).encode())
