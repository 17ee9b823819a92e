"""The deploy gate: bundles built from artifacts that passed verification, and only those.

Every model under the artifacts folder (reference models and users' own, found by the one locator) goes
through the same gate: an artifact that failed, was never verified, or changed since it was verified is
refused with its reason; the others become bundles (see _bundle), then the target's package (the Pi
tarball, the Android README, the web demo site).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional

from edgeproof import _log
from edgeproof._atomic import folder_lock, remove_dir
from edgeproof._quant import QuantMode, Target
from edgeproof.convert import ModelFolder, find_models, load_records
from edgeproof.errors import DeployRefusedError
from edgeproof.verify import ArtifactVerdict, Status, load_verdicts
from edgeproof.verify._files import artifact_files

from ._bundle import MANIFEST, bundle_manifests, bundle_name, write_bundle, write_index
from ._targets import DeployResult, DeployTarget, Refusal

__all__ = ["MANIFEST", "DeployResult", "DeployTarget", "Refusal", "bundle_name", "deploy"]


def _refusal(verdict: Optional[ArtifactVerdict], root: Path, hint: str) -> Optional[str]:
    """Why an artifact may not ship (None: it may)."""
    if verdict is None:
        return f"never verified: run `edgeproof verify` first (`{hint}`)"
    if verdict.status is Status.UNSUPPORTED:
        return f"unsupported: {verdict.reason}"
    if verdict.status in (Status.FAIL, Status.INCONCLUSIVE):
        return verdict.summary()
    broken = verdict.recheck()
    if broken or verdict.failures:
        return (f"parity.json says pass, but its own measurements break {', '.join(broken) or 'the budgets it lists'}: "
                f"the file was edited or is damaged; run `{hint}` again")
    try:
        current = artifact_files(root, verdict.path)
    except (OSError, ValueError) as err:
        return f"its files cannot be checked ({err}); run `{hint}` again"
    if current != verdict.files:
        changed = sorted(set(current.items()) ^ set(verdict.files.items()))
        return (f"changed since it was verified ({', '.join(sorted({p for p, _ in changed}))}): "
                f"run `{hint}` again")
    return None


def _android_refusal(record) -> Optional[str]:
    ops = record.ops or {}
    if ops and not ops.get("builtin_only", True):
        return (f"needs non-builtin ops {', '.join(ops.get('non_builtin_ops', []))}: the LiteRT Interpreter on Android "
                f"runs builtin ops only (Flex ops would need the select-TF-ops AAR, several MB); not deployed")
    return None


def _override(verdict: Optional[ArtifactVerdict], root: Path, allow_failed: Optional[str],
              accept_inconclusive: bool = False) -> Optional[str]:
    """`--allow-failed REASON` ships an artifact that failed its budgets (never a broken or changed file);
    `--accept-inconclusive` one whose metric drop the test split could not decide."""
    if verdict is not None and verdict.status is Status.INCONCLUSIVE and accept_inconclusive:
        allow_failed = f"accepted as inconclusive: {verdict.reason}"
    elif allow_failed is None or verdict is None or verdict.status is not Status.FAIL or not verdict.failures:
        return None
    try:
        if verdict.path and artifact_files(root, verdict.path) != verdict.files:
            return None
    except (OSError, ValueError):
        return None
    return allow_failed


WEB_TFLITE_RUNTIME = "litertjs-wasm"  # the browser runtime a .tflite in the web demo runs in


def _units(target: DeployTarget, records) -> list[tuple[Any, str, str]]:
    """(record, the verdict row that must pass, bundle name suffix) of every artifact the target takes: the web
    takes the TF.js models and, for LiteRT.js, the .tflite files whose row in LiteRT.js passed."""
    units = []
    for r in records:
        if r.target == target.artifact_target.value:
            units.append((r, r.key, bundle_name("", "", r.mode, r.variant)[2:]))
        elif target is DeployTarget.WEB and r.target == Target.TFLITE.value:
            units.append((r, f"{r.key} in {WEB_TFLITE_RUNTIME}", bundle_name("", "", f"tflite-{r.mode}", r.variant)[2:]))
    return units


def _deploy_model(folder: ModelFolder, target: DeployTarget, out: Path, wanted_modes, allow_failed,
                  result: DeployResult, say, accept_inconclusive: bool = False, sign_key: Optional[Path] = None) -> None:
    """Bundle every passing artifact of one model folder; record the refusals."""
    verdicts = load_verdicts(folder.root)[1]
    by_key = {v.cell: v for v in verdicts}
    contract, meta = None, None
    for record, key, suffix in _units(target, load_records(folder.root)):
        if wanted_modes is not None and record.mode not in wanted_modes:
            continue
        label = f"{folder.label}/{key}"
        verdict = by_key.get(key)
        reason = _refusal(verdict, folder.root, folder.verify_hint())
        if reason is None and target is DeployTarget.ANDROID:
            reason = _android_refusal(record)
        override = _override(verdict, folder.root, allow_failed, accept_inconclusive) if reason is not None else None
        if reason is not None and override is None:
            result.refused.append(Refusal(label, reason))
            say(f"   refused {label}: {reason}", flush=True)
            old = out / f"{folder.name}-{folder.framework}-{suffix}"
            if old.exists():  # a bundle from an earlier deploy must not outlive this verdict
                remove_dir(old)
            continue
        contract = contract or folder.contract()
        meta = meta or folder.source_meta()
        browser = {v.browser: _browser_summary(v) for v in verdicts if v.browser and v.target == record.target
                   and v.mode == record.mode and v.variant == record.variant}
        result.bundles.append(write_bundle(contract, folder.root, meta, record, verdict, target, out, override,
                                           name=f"{folder.name}-{folder.framework}-{suffix}", browser=browser,
                                           sign_key=sign_key))
        say(f"   bundle {result.bundles[-1]}" + (f" (OVERRIDE: {override})" if override else ""), flush=True)


def _browser_summary(v: ArtifactVerdict) -> dict:
    return {"status": v.status.value, "reason": v.reason, "runtime": v.runtime,
            "max_abs_error": v.probe.get("max_abs_error"), "summary": v.summary()}


def _write_package(out: Path, result: DeployResult) -> None:
    from ._device_packages import write_android_readme, write_pi_package

    bundles = [p.parent for p in bundle_manifests(out)]
    if result.target is DeployTarget.PI and bundles:
        result.package = write_pi_package(out, bundles)
    elif result.target is DeployTarget.ANDROID and bundles:
        result.package = write_android_readme(out, bundles)
    elif result.target is DeployTarget.WEB:
        from ._site import build_site

        result.package = build_site(out)  # the static demo: index.html, src/, vendor/ (TF.js from npm)


def _prove_on_aarch64(result: DeployResult, userland, sign_key: Optional[Path], say) -> None:
    """Run this deploy's bundles' self-tests on emulated aarch64 (deploy/_aarch64.py), record the runs in their
    manifests, refuse the bundles that fail there, then sign the rest (the signature covers the record)."""
    import json

    from ._aarch64 import record_proofs, run_self_tests

    say(f"   proving {len(result.bundles)} bundles on {userland.describe()}", flush=True)
    failed = record_proofs(result.bundles, run_self_tests(result.bundles, userland), userland.describe())
    for bundle, reason in failed.items():
        m = json.loads((bundle / MANIFEST).read_text())
        label = f"{m['model']}/{m['framework']}/{m.get('artifact_target', 'tflite')}/{m['mode']}"
        result.refused.append(Refusal(label, reason))
        say(f"   refused {label}: {reason}", flush=True)
        remove_dir(bundle)
    result.bundles = [b for b in result.bundles if b not in failed]
    if sign_key is not None:
        from ._signing import sign_bundle

        for bundle in result.bundles:
            sign_bundle(bundle, sign_key)


def deploy(target: DeployTarget | str, *, artifacts: Path | str = "artifacts", out: Optional[Path | str] = None,
           models: Optional[Iterable[str]] = None, frameworks: Optional[Iterable[str]] = None,
           modes: Optional[Iterable[str]] = None, allow_failed: Optional[str] = None,
           accept_inconclusive: bool = False, prefer: str = "size", sign_key: Optional[Path | str] = None,
           progress: bool = True, prove_aarch64: bool = False, aarch64_cache: Optional[Path | str] = None
           ) -> DeployResult:
    """Build one bundle per passing artifact for `target` under `out` (default artifacts/deploy/<target>).

    Artifacts that failed, were never verified or changed since are refused with their reason; when
    the caller named exactly what to deploy and nothing passes, DeployRefusedError says why.
    `allow_failed="reason"` ships failed (never unsupported) artifacts and writes the override into
    their manifest; `accept_inconclusive` does the same for verdicts the test split was too small to decide.
    index.json names, per model and artifact kind, the preferred passing bundle (`prefer`: size or latency).
    `sign_key`: a private key (PEM) signing every bundle (OpenSSF model-signing, see `edgeproof verify-bundle`).
    `prove_aarch64` (pi only): run every bundle's self-test on emulated aarch64 with both Pi interpreters, record
    the runs in the manifests and the README, refuse a bundle that fails there (`aarch64_cache`: the userland of
    scripts/pi_userland.sh, default $EDGEPROOF_AARCH64_CACHE or ~/.cache/edgeproof/aarch64). Concurrent deploys into the same folder wait for each other (a lock beside it).
    """
    target = DeployTarget(target)
    if allow_failed is not None and not allow_failed.strip():
        raise ValueError("--allow-failed needs a reason, which is written into the manifest")
    say = _log.detail if progress else (lambda *a, **k: None)
    out = Path(out) if out else Path(artifacts) / "deploy" / target.value
    wanted_modes = None if modes is None else {QuantMode(m).value for m in modes}
    if prefer not in ("size", "latency"):
        raise ValueError(f"--prefer {prefer!r}: choose size or latency")
    if sign_key is not None and not Path(sign_key).is_file():
        raise ValueError(f"--sign-key {sign_key}: no such file (make a key pair with `edgeproof keygen`)")
    if prove_aarch64 and target is not DeployTarget.PI:
        raise ValueError("--prove-aarch64 is for --target pi (the bundles a Raspberry Pi runs)")
    if target is DeployTarget.WEB:  # the site and the TF.js bundles' self-tests need Node and the JS packages:
        from edgeproof.verify._tfjs_node import check_installed  # say so before any bundle is written

        check_installed()
    result = DeployResult(target, out, prefer=prefer)
    key = None if sign_key is None else Path(sign_key)
    with folder_lock(out):
        userland = None
        if prove_aarch64:
            from ._aarch64 import find_userland

            userland = find_userland(None if aarch64_cache is None else Path(aarch64_cache))  # before building
        for folder in find_models(artifacts, models, frameworks):
            _deploy_model(folder, target, out, wanted_modes, allow_failed, result, say, accept_inconclusive,
                          None if userland is not None else key)
        if userland is not None and result.bundles:
            _prove_on_aarch64(result, userland, key, say)
        write_index(out, result)
        _write_package(out, result)
    if models is not None and not result.bundles:
        raise DeployRefusedError("nothing to deploy: " + "; ".join(f"{r.artifact}: {r.reason}" for r in result.refused)
                                 if result.refused else f"no {target.artifact_target.value} artifacts found under "
                                 f"{artifacts} for the requested models: run `edgeproof convert` and `edgeproof verify`")
    return result
