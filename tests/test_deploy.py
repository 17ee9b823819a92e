"""The deploy gate: bundles only from passing artifacts, complete manifests with a sha256 per file,
refusals with their reason, and nothing half-written."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from edgeproof.errors import DeployRefusedError
from edgeproof.train import model_dir
from edgeproof.verify import Status, load_verdicts
from edgeproof.deploy import DeployTarget, bundle_name, deploy

pytestmark = pytest.mark.stack


@pytest.fixture
def private(fast_verified, tmp_path):
    """A private copy of the verified fast artifacts (mnist_cnn and linreg), safe to change."""
    artifacts, _ = fast_verified
    dest = tmp_path / "artifacts"
    for name in ("mnist_cnn", "linreg", "translator", "imdb_lstm"):
        for fw in ("keras", "torch"):
            shutil.copytree(model_dir(artifacts, name, fw), model_dir(dest, name, fw))
    return dest


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("target", list(DeployTarget))
def test_bundles_hold_every_passing_artifact_and_nothing_else(private, target):
    result = deploy(target, artifacts=private, models=["mnist_cnn", "linreg"], progress=False)
    expected = set()
    for name in ("mnist_cnn", "linreg"):
        for fw in ("keras", "torch"):
            _, verdicts = load_verdicts(model_dir(private, name, fw))
            # variants (the litert-torch route's tflite/fp32-litert-torch) are bundles of their own too
            expected |= {bundle_name(name, fw, v.mode, v.variant) for v in verdicts
                         if v.target == target.artifact_target.value and v.status is Status.PASS and not v.browser}
            if target is DeployTarget.WEB:  # and each .tflite whose row in LiteRT.js (Chromium) passed
                expected |= {bundle_name(name, fw, f"tflite-{v.mode}", v.variant) for v in verdicts
                             if v.browser == "litertjs-wasm" and v.status is Status.PASS}
    assert expected and {p.name for p in result.bundles} == expected
    if target is not DeployTarget.ANDROID:  # the second route's passing .tflite is deployed (pi; web via LiteRT.js)
        assert "linreg-torch-" + ("tflite-" if target is DeployTarget.WEB else "") + "fp32-litert-torch" in expected
    index = json.loads((result.out / "index.json").read_text())
    assert {b["bundle"] for b in index["bundles"]} == expected
    for bundle in result.bundles:
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert manifest["verdict"]["status"] == "pass" and manifest["override"] is None
        on_disk = {p.name for p in bundle.iterdir()} - {"manifest.json"}
        assert set(manifest["files"]) == on_disk
        for name, entry in manifest["files"].items():
            assert entry["sha256"] == _sha(bundle / name) and entry["bytes"] == (bundle / name).stat().st_size
        assert (bundle / manifest["model_file"]).exists()
        for t in manifest["inputs"] + manifest["outputs"]:
            assert {"name", "tensor", "shape", "dtype", "layout", "quantization"} <= set(t)
        pre = json.loads((bundle / manifest["preprocessing_file"]).read_text())
        assert pre["kind"] in ("image", "features")
        if manifest["model"] == "mnist_cnn":
            assert len(manifest["labels"]) == 10
    assert not [p for p in result.out.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_text_bundles_carry_their_vocabularies(private):
    result = deploy("pi", artifacts=private, models=["translator", "imdb_lstm"], modes=["fp32", "dynamic"],
                    progress=False)
    kinds = {}
    for bundle in result.bundles:
        manifest = json.loads((bundle / "manifest.json").read_text())
        pre = json.loads((bundle / "preprocessing.json").read_text())
        kinds[manifest["model"]] = pre
    assert len(kinds["translator"]["source_tokenizer"]["tokens"]) > 100
    assert len(kinds["translator"]["target_tokenizer"]["tokens"]) > 100
    assert len(kinds["imdb_lstm"]["tokenizer"]["vocab"]) == 9996


def _fail(root, key: str) -> None:
    """Mark one verdict as failed, as verify would after a budget break."""
    path = root / "parity.json"
    payload = json.loads(path.read_text())
    for row in payload["artifacts"]:
        if f"{row['target']}/{row['mode']}" == key:
            row["status"] = "fail"
            row["failures"] = [{"output": "probabilities", "measure": "task metric drop on the test split",
                                "measured": 3.5, "limit": 1.0}]
    path.write_text(json.dumps(payload))


def test_a_failed_artifact_is_refused_with_its_budget_and_its_old_bundle_removed(private):
    out = private / "deploy" / "pi"
    deploy("pi", artifacts=private, models=["mnist_cnn"], frameworks=["keras"], modes=["fp16"], progress=False)
    assert (out / "mnist_cnn-keras-fp16").exists()
    _fail(model_dir(private, "mnist_cnn", "keras"), "tflite/fp16")
    with pytest.raises(DeployRefusedError) as info:
        deploy("pi", artifacts=private, models=["mnist_cnn"], frameworks=["keras"], modes=["fp16"], progress=False)
    message = str(info.value)
    assert "mnist_cnn/keras/tflite/fp16" in message and "task metric drop" in message
    assert "3.5" in message and "budget 1" in message
    assert not (out / "mnist_cnn-keras-fp16").exists()
    index = json.loads((out / "index.json").read_text())
    assert "mnist_cnn-keras-fp16" not in {b["bundle"] for b in index["bundles"]}


def test_an_explicit_override_ships_a_failed_artifact_and_says_so(private):
    _fail(model_dir(private, "mnist_cnn", "keras"), "tflite/fp16")
    result = deploy("pi", artifacts=private, models=["mnist_cnn"], frameworks=["keras"], modes=["fp16"],
                    allow_failed="field test on 200 photos, ticket 42", progress=False)
    (bundle,) = result.bundles
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["verdict"]["status"] == "fail"
    assert manifest["override"]["reason"] == "field test on 200 photos, ticket 42"
    assert "task metric drop" in manifest["override"]["verdict_overridden"]
    with pytest.raises(ValueError, match="needs a reason"):
        deploy("pi", artifacts=private, models=["mnist_cnn"], allow_failed="  ", progress=False)


def test_an_artifact_changed_after_verification_is_refused(private):
    path = model_dir(private, "linreg", "keras") / "tflite" / "fp32.tflite"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(DeployRefusedError, match="changed since it was verified"):
        deploy("android", artifacts=private, models=["linreg"], frameworks=["keras"], modes=["fp32"], progress=False)


def test_an_unverified_model_is_refused_with_the_command_to_run(private):
    (model_dir(private, "linreg", "torch") / "parity.json").unlink()
    with pytest.raises(DeployRefusedError, match="never verified: run `edgeproof verify`"):
        deploy("web", artifacts=private, models=["linreg"], frameworks=["torch"], progress=False)


def test_a_crash_while_writing_leaves_nothing_half_written(private, monkeypatch):
    from edgeproof.deploy import _bundle as _deploy

    out = private / "deploy" / "web"
    calls = {"n": 0}
    real = _deploy.build_manifest

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(_deploy, "build_manifest", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        deploy("web", artifacts=private, models=["linreg"], frameworks=["keras"], progress=False)
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 1 and names[0].startswith("linreg-keras-"), names  # the first bundle; no temp folder
    manifest = json.loads((out / names[0] / "manifest.json").read_text())
    assert set(manifest["files"]) == {p.name for p in (out / names[0]).iterdir()} - {"manifest.json"}


def test_android_refuses_models_that_need_flex_ops(private):
    root = model_dir(private, "linreg", "keras")
    records = json.loads((root / "conversion.json").read_text())
    for r in records["artifacts"]:
        if r["target"] == "tflite" and r["mode"] == "fp32":
            r["ops"].update(builtin_only=False, non_builtin_ops=["FlexSvd"])
    (root / "conversion.json").write_text(json.dumps(records))
    with pytest.raises(DeployRefusedError, match="FlexSvd.*builtin ops only"):
        deploy("android", artifacts=private, models=["linreg"], frameworks=["keras"], modes=["fp32"], progress=False)
    (bundle,) = deploy("pi", artifacts=private, models=["linreg"], frameworks=["keras"], modes=["fp32"],
                       progress=False).bundles  # a Pi can take the same artifact
    assert bundle.name == "linreg-keras-fp32"
