"""`deploy --target pi --prove-aarch64` (deploy/_aarch64.py): every bundle's self-test runs on emulated aarch64
with both Pi interpreters; the runs go into each manifest ("proven_on", covered by the signature) and the Pi
README; a bundle that loads but fails there is refused and removed. Here the emulated runs are replaced by
reports shaped as the arm64 child prints them, so the recording, the refusal and the README are checked in the
default tier; tests/test_aarch64.py (tier `aarch64`) runs the real thing."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from edgeproof.deploy import _aarch64

pytestmark = [pytest.mark.stack]

MODEL = "mnist_cnn"


def _fake_userland(tmp_path) -> _aarch64.Userland:
    return _aarch64.Userland(tmp_path / "root", "qemu-aarch64-static", "cortex-a72", {i: "" for i in _aarch64.INTERPRETERS})


def _reports(bundles, failing: str) -> dict:
    """What the two arm64 runs print: every bundle passes except `failing` with ai-edge-litert; tflite-runtime
    cannot load the dynamic-range bundles (newer op versions), as measured on the real userland."""
    def run(interpreter, version):
        out = {"machine": "aarch64", "python": "3.11.2", "numpy": "1.26.4", "interpreter": f"{interpreter} {version}",
               "bundles": {}}
        for b in bundles:
            if interpreter == "tflite_runtime" and b.name.endswith("-dynamic"):
                out["bundles"][str(b)] = {"status": "not loadable", "summary": f"{b}/model.tflite needs a newer runtime"}
            elif interpreter == "ai_edge_litert" and b.name == failing:
                out["bundles"][str(b)] = {"status": "fail", "max_abs_error": 0.25, "summary": "max |error| 0.25"}
            else:
                out["bundles"][str(b)] = {"status": "pass", "max_abs_error": 1.2e-7, "summary": "passed"}
        return out
    return {"tflite_runtime": run("tflite_runtime", "2.14.0"), "ai_edge_litert": run("ai_edge_litert", "2.3.0")}


def test_runs_are_recorded_a_failing_bundle_is_refused_and_the_readme_lists_them(fast_verified, tmp_path, monkeypatch):
    from edgeproof.deploy import deploy
    from edgeproof.deploy._device_packages import PI_TARBALL

    artifacts, _ = fast_verified
    failing = f"{MODEL}-keras-fp16"
    seen = {}

    def fake_runs(bundles, userland):
        seen["bundles"] = list(bundles)
        return _reports(bundles, failing)

    monkeypatch.setattr(_aarch64, "find_userland", lambda cache=None: _fake_userland(tmp_path))
    monkeypatch.setattr(_aarch64, "run_self_tests", fake_runs)
    out = tmp_path / "pi"
    result = deploy("pi", artifacts=artifacts, out=out, models=[MODEL], progress=False, prove_aarch64=True)
    assert failing in {b.name for b in seen["bundles"]} and not (out / failing).exists()
    assert failing not in {b.name for b in result.bundles}
    (refusal,) = [r for r in result.refused if r.artifact == f"{MODEL}/keras/tflite/fp16"]
    assert "fails its self-test on aarch64 (emulated" in refusal.reason and "ai_edge_litert 2.3.0" in refusal.reason
    for bundle in result.bundles:
        runs = json.loads((bundle / "manifest.json").read_text())["proven_on"]
        assert [r["interpreter"] for r in runs] == ["tflite_runtime 2.14.0", "ai_edge_litert 2.3.0"]
        assert all(r["arch"] == "aarch64" and "cortex-a72" in r["machine"] for r in runs)
        assert str(tmp_path) not in json.dumps(runs)  # paths cut to the bundle's own names
    readme = (out / "README.md").read_text()
    assert "## Proven on aarch64" in readme and "| tflite_runtime 2.14.0 | ai_edge_litert 2.3.0 |" in readme
    assert f"| {MODEL}-keras-fp32 | pass (max \\|Δ\\| 1.2e-07) | pass (max \\|Δ\\| 1.2e-07) |" in readme
    assert f"| {MODEL}-keras-dynamic | not loadable: model.tflite needs a newer runtime |" in readme
    assert failing not in readme
    assert refusal.artifact in json.dumps(json.loads((out / "index.json").read_text())["refused"])
    with tarfile.open(out / PI_TARBALL) as tar:  # the tarball carries the recorded manifests
        packed = json.loads(tar.extractfile(f"bundles/{MODEL}-keras-fp32/manifest.json").read())
    assert packed["proven_on"][1]["status"] == "pass"


def test_without_the_flag_the_readme_says_how_to_prove_them(fast_verified, tmp_path):
    from edgeproof.deploy import deploy

    artifacts, _ = fast_verified
    result = deploy("pi", artifacts=artifacts, out=tmp_path / "pi", models=[MODEL], progress=False)
    assert all("proven_on" not in json.loads((b / "manifest.json").read_text()) for b in result.bundles)
    assert "`edgeproof deploy --target pi --prove-aarch64`" in (tmp_path / "pi" / "README.md").read_text()


def test_prove_aarch64_is_for_the_pi_target(tmp_path):
    from edgeproof.deploy import deploy

    with pytest.raises(ValueError, match="--prove-aarch64 is for --target pi"):
        deploy("web", artifacts=tmp_path, out=tmp_path / "web", prove_aarch64=True)


def test_a_missing_userland_script_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(_aarch64, "_USERLAND_SCRIPT", Path(tmp_path / "absent.sh"))
    with pytest.raises(_aarch64.Aarch64Error, match="needs scripts/pi_userland.sh from an edgeproof checkout"):
        _aarch64.find_userland(tmp_path)
