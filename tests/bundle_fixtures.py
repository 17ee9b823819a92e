"""Real Pi bundles for the hostile-input, self-test, signing and aarch64 tests (issue 19), built once
per session with the command line: mnist_cnn (keras: fp32, fp16, dynamic, int8) and mnist_gan
(keras: the generator, for `run`'s --output cases), each trained on the fast profile, converted to
TFLite, verified and deployed with `--target pi`.

Bundles that the deploy gate built without a golden self-test get one here (`stamp_bundle`: the
gate's own probes through the artifact, exactly as the gate does once it writes self-tests).

Developer shortcut (never set in CI): EDGEPROOF_TEST_BUNDLES=/path/to/deploy/pi reuses bundles
deployed earlier instead of training (about 2 minutes on 2 cores).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("mnist_cnn", "mnist_gan")
_BUILT: dict[str, Path] = {}


def _cli(*args: str, timeout: int = 1200) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"}
    run = subprocess.run([sys.executable, "-m", "edgeproof", *args], capture_output=True, text=True, cwd=REPO,
                         timeout=timeout, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"edgeproof {' '.join(args)} failed ({run.returncode}):\n{run.stderr[-3000:]}")


def _stamp_missing_self_tests(out: Path) -> None:
    """Give every bundle a golden self-test if the gate did not, then rebuild the Pi tarball (with
    deploy's own writer) so that it carries them too."""
    from edgeproof.deploy._device_packages import write_pi_package
    from edgeproof.deploy._selftest import stamp_bundle

    from edgeproof import get_spec
    from edgeproof._atomic import visible_children

    bundles = visible_children(out, "manifest.json")
    stamped = False
    for bundle_dir in bundles:
        data = json.loads((bundle_dir / "manifest.json").read_text())
        if "self_test" not in data:
            stamp_bundle(bundle_dir, get_spec(data["model"]).probe_inputs())
            stamped = True
    if stamped:
        write_pi_package(out, bundles)


def build_pi_bundles(base: Path) -> Path:
    """The deploy folder (bundles + Pi tarball) for MODELS, built once per base folder."""
    key = str(base)
    if key in _BUILT:
        return _BUILT[key]
    out = base / "deploy-pi"
    reuse = os.environ.get("EDGEPROOF_TEST_BUNDLES")
    if reuse:
        print(f"\nEDGEPROOF_TEST_BUNDLES: reusing the bundles in {reuse}, not training")
        shutil.copytree(reuse, out)
    else:
        artifacts = base / "artifacts"
        for model in MODELS:
            _cli("train", "--model", model, "--framework", "keras", "--profile", "fast", "--artifacts", str(artifacts))
            _cli("convert", "--model", model, "--framework", "keras", "--targets", "tflite", "--artifacts",
                 str(artifacts))
        models = [a for m in MODELS for a in ("--model", m)]
        _cli("verify", *models, "--framework", "keras", "--targets", "tflite", "--jobs", "1", "--artifacts",
             str(artifacts))
        _cli("deploy", "--target", "pi", *models, "--artifacts", str(artifacts), "--out", str(out))
    _stamp_missing_self_tests(out)
    _BUILT[key] = out
    return out


def bundle(out: Path, name: str) -> Path:
    path = out / name
    if not (path / "manifest.json").is_file():
        raise FileNotFoundError(f"no bundle {name} in {out}: {sorted(p.name for p in out.iterdir())}")
    return path


def copy_bundle(out: Path, name: str, dest: Path) -> Path:
    shutil.copytree(bundle(out, name), dest)
    return dest


def rehash(bundle_dir: Path, *names: str) -> None:
    """Recompute the manifest's sha256/bytes of `names` (what an attacker who swaps a file does)."""
    from edgeproof.runtime._manifest import sha256_of

    path = bundle_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    for name in names:
        manifest["files"][name] = {"sha256": sha256_of(bundle_dir / name), "bytes": (bundle_dir / name).stat().st_size}
    path.write_text(json.dumps(manifest, indent=2))
