"""The golden self-test a bundle carries (issue 19 "what to build" 1): probes + the gate's outputs of
THAT artifact + a tolerance, re-run on the device.

The defect it closes: a bundle whose model.tflite was replaced by another valid model, with its
sha256 recomputed in the manifest, loaded and ran everywhere and reported its old "pass" verdict.
A swapped model must now fail its self-test on x86 in .venv (ai-edge-litert) and in .venv-edge
(tflite-runtime 2.14); tests/test_aarch64.py does the same on emulated aarch64."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest
from edgeproof.deploy._selftest import (
    SelfTestWriteError,
    default_tolerance,
    write_self_test,
)
from edgeproof.runtime import BundleError, Model, SelfTestError, self_test
from edgeproof.runtime._selftest import load_self_test

from .bundle_fixtures import REPO, build_pi_bundles, copy_bundle, rehash

pytestmark = pytest.mark.stack
NETWORKS = {"mnist_cnn": ["fp32", "fp16", "dynamic", "int8"], "mnist_gan": ["fp32", "fp16", "dynamic", "int8"]}
SWAPS = [(f"{net}-keras-{a}", f"{net}-keras-{b}") for net, modes in NETWORKS.items() for a, b in permutations(modes, 2)]


@pytest.fixture(scope="session")
def pi_out(tmp_path_factory):
    return build_pi_bundles(tmp_path_factory.getbasetemp() / "h19-bundles")


def _swapped(out: Path, bundle: str, donor: str, dest: Path) -> Path:
    """`bundle` with `donor`'s model.tflite (same network, other precision: a valid model with the same
    signature) and the manifest's checksum recomputed, as an attacker or a careless copy would."""
    swapped = copy_bundle(out, bundle, dest)
    (swapped / "model.tflite").write_bytes((out / donor / "model.tflite").read_bytes())
    rehash(swapped, "model.tflite")
    return swapped


def test_every_intact_bundle_passes_its_self_test(pi_out):
    bundles = sorted(p.parent for p in pi_out.glob("*/manifest.json"))
    assert len(bundles) == 8
    for bundle in bundles:
        result = self_test(Model.load(bundle, interpreter="ai_edge_litert"))
        assert result.passed and result.probes == 16, result.summary()


@pytest.mark.parametrize("bundle, donor", SWAPS, ids=[f"{a}<-{b.rsplit('-', 1)[1]}" for a, b in SWAPS])
def test_a_swapped_model_fails_its_self_test(pi_out, tmp_path, bundle, donor):
    swapped = _swapped(pi_out, bundle, donor, tmp_path / "swapped")
    model = Model.load(swapped)  # the old behaviour: the checksum matches, the verdict says pass
    assert model.manifest["verdict"]["status"] == "pass"
    result = self_test(model)
    assert not result.passed and result.ratio > 1, result.summary()
    with pytest.raises(SelfTestError, match="self-test FAILED .* not the one the deploy gate proved"):
        Model.load(swapped, self_test=True)


EDGE_CHILD = textwrap.dedent("""
    import json, sys
    from edgeproof.runtime import Model, ModelFileError, self_test
    out = {}
    for bundle in sys.argv[1:]:
        try:
            r = self_test(Model.load(bundle, interpreter="tflite_runtime"))
            out[bundle] = {"passed": r.passed, "max_abs_error": r.max_abs_error, "interpreter": r.interpreter}
        except ModelFileError as err:
            out[bundle] = {"refused": str(err)}
    print(json.dumps(out))
""")


def test_self_tests_in_the_tflite_runtime_env(pi_out, tmp_path):
    """.venv-edge (numpy<2 + tflite-runtime 2.14): intact bundles pass, swapped ones fail. Dynamic-
    range bundles need FULLY_CONNECTED v12, which 2.14 lacks: they are refused with that reason (the
    manifest's runtime_requirements says so too)."""
    python = REPO / ".venv-edge" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `scripts/setup.sh edge`")
    intact = sorted(p.parent for p in pi_out.glob("*/manifest.json"))
    swapped = [_swapped(pi_out, "mnist_cnn-keras-int8", "mnist_cnn-keras-fp32", tmp_path / "s1"),
               _swapped(pi_out, "mnist_cnn-keras-fp32", "mnist_cnn-keras-fp16", tmp_path / "s2"),
               _swapped(pi_out, "mnist_gan-keras-fp16", "mnist_gan-keras-fp32", tmp_path / "s3")]
    run = subprocess.run([str(python), "-c", EDGE_CHILD, *map(str, intact + swapped)], capture_output=True,
                         text=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout)
    for bundle in intact:
        r = results[str(bundle)]
        if bundle.name.endswith("-dynamic"):
            assert "needs a newer TFLite runtime" in r.get("refused", ""), r
        else:
            assert r["passed"] and r["interpreter"] == "tflite_runtime", (bundle.name, r)
    for bundle in swapped:
        assert results[str(bundle)]["passed"] is False, results[str(bundle)]


# -- a hostile selftest.json or self_test entry ----------------------------------------------------

@pytest.fixture
def cnn(pi_out, tmp_path):
    return copy_bundle(pi_out, "mnist_cnn-keras-fp32", tmp_path / "cnn")


def _edit_selftest(bundle: Path, change) -> None:
    path = bundle / "selftest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    rehash(bundle, "selftest.json")


def _edit_manifest(bundle: Path, change) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _nan_output(d):
    wire = d["outputs"]["ai_edge_litert"]["probabilities"]
    values = np.frombuffer(base64.b64decode(wire["data"]), "<f4").copy()
    values[5] = np.nan
    wire["data"] = base64.b64encode(values.tobytes()).decode()


@pytest.mark.parametrize("change, message", [
    (_nan_output, "holds NaN or infinite values"),
    (lambda d: d["outputs"]["ai_edge_litert"]["probabilities"].update(shape=[16, 11]), "data bytes for shape"),
    (lambda d: d["outputs"]["tflite_runtime"]["probabilities"].update(data="!!not base64!!"), "not valid base64"),
    (lambda d: d["inputs"].update(other=d["inputs"]["image"]), "are not the model's"),
    (lambda d: d.update(format="pickle"), "not an edgeproof-selftest v1 file"),
    (lambda d: d["outputs"]["ai_edge_litert"]["probabilities"].update(dtype="object"), "dtype 'object' is not one of"),
    (lambda d: d["outputs"].pop("ai_edge_litert"), "with 'ai_edge_litert'"),
    (lambda d: d["inputs"]["image"].update(shape=[4, 28, 28, 1], data=base64.b64encode(bytes(4 * 784 * 4)).decode()),
     "the same number"),
])
def test_a_broken_selftest_file_is_a_bundle_error(cnn, change, message):
    _edit_selftest(cnn, change)
    with pytest.raises(BundleError, match=message):
        Model.load(cnn, self_test=True)


@pytest.mark.parametrize("change, message", [
    (lambda m: m["self_test"].update(tolerance={"atol": -1, "rtol": 0}), "finite numbers >= 0"),
    (lambda m: m["self_test"].update(tolerance={"atol": "lots", "rtol": 0}), "finite numbers >= 0"),
    (lambda m: m["self_test"].update(tolerance={"atol": 0, "rtol": 0, "outlier_fraction": 2}), "a fraction <= 1"),
    (lambda m: m["self_test"].update(tolerance={"atol": 0, "rtol": 0, "trust_me": 1}), "finite numbers >= 0"),
    (lambda m: m["self_test"].update(file="../../etc/passwd"), "is not listed in 'files'"),
    (lambda m: m.pop("self_test"), "carries no self-test"),
])
def test_a_broken_self_test_entry_is_a_bundle_error(cnn, change, message):
    _edit_manifest(cnn, change)
    with pytest.raises(BundleError, match=message):
        Model.load(cnn, self_test=True)


def test_a_selftest_file_changed_without_rehashing_is_caught_by_the_checksum(cnn):
    path = cnn / "selftest.json"
    path.write_text(path.read_text().replace('"float32"', '"float16"', 1))
    with pytest.raises(BundleError, match="selftest.json has sha256"):
        Model.load(cnn)


# -- writing --------------------------------------------------------------------------------------

def test_write_self_test_round_trips_and_refuses_bad_probes(tmp_path, pi_out):
    bundle = copy_bundle(pi_out, "mnist_cnn-keras-int8", tmp_path / "b")
    model = Model.load(bundle)
    inputs, expected, tol = load_self_test(model)
    entry = write_self_test(tmp_path, inputs, expected["ai_edge_litert"], tol,
                            {"tflite_runtime": expected["tflite_runtime"]})
    assert entry == {"file": "selftest.json", "probes": 16, "inputs": ["image"], "outputs": ["probabilities"],
                     "interpreters": ["ai_edge_litert", "tflite_runtime"], "tolerance": tol}
    assert (tmp_path / "selftest.json").read_bytes() == (bundle / "selftest.json").read_bytes()
    bad = {"probabilities": np.full((16, 10), np.nan, np.float32)}
    with pytest.raises(SelfTestWriteError, match="NaN"):
        write_self_test(tmp_path / "x", inputs, bad, tol)
    with pytest.raises(SelfTestWriteError, match="different numbers of probes"):
        write_self_test(tmp_path / "x", inputs, {"probabilities": expected["ai_edge_litert"]["probabilities"][:3]}, tol)
    with pytest.raises(SelfTestWriteError, match="tolerance must be"):
        write_self_test(tmp_path / "x", inputs, expected["ai_edge_litert"], {"atol": float("inf"), "rtol": 0})
    assert not (tmp_path / "x").exists()


def test_default_tolerance_per_mode(pi_out):
    from edgeproof.deploy._selftest import tolerance_for

    assert default_tolerance("fp32") == {"atol": 1e-5, "rtol": 1e-4, "outlier_fraction": 0.0, "outlier_atol": 0.0}
    # the int8 GAN's tanh output is read from a DEQUANTIZE of an int8 tensor with scale 2/256
    assert tolerance_for(pi_out / "mnist_gan-keras-int8" / "model.tflite", "int8") == {
        "atol": 1 / 256, "rtol": 0.0, "outlier_fraction": 0.02, "outlier_atol": 16 / 128}
    assert default_tolerance("dynamic")["atol"] == 1e-3
    with pytest.raises(SelfTestWriteError, match="no self-test tolerance rule"):
        default_tolerance("int4")


def test_tflite_runtime_compares_with_its_own_recorded_outputs(pi_out):
    """int8 kernels of tflite-runtime 2.14 and ai-edge-litert round differently: each interpreter is
    held to the outputs the gate recorded for its own family."""
    model = Model.load(pi_out / "mnist_gan-keras-int8", interpreter="ai_edge_litert")
    _, expected, _ = load_self_test(model)
    a, b = expected["ai_edge_litert"]["image"], expected["tflite_runtime"]["image"]
    assert (np.abs(a - b) > 0.5 / 128).mean() > 0.02  # the families differ beyond the int8 rule...
    assert self_test(model).expected_from == "ai_edge_litert"  # ...so each is compared with its own


# -- the command line -----------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeproof", *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO)


def test_selftest_command(pi_out, tmp_path):
    intact = [str(pi_out / "mnist_cnn-keras-fp32"), str(pi_out / "mnist_gan-keras-int8")]
    run = _cli("selftest", *intact)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["passed"] and [b["passed"] for b in report["bundles"]] == [True, True]
    swapped = _swapped(pi_out, "mnist_cnn-keras-int8", "mnist_cnn-keras-fp32", tmp_path / "swapped")
    run = _cli("selftest", intact[0], str(swapped))
    assert run.returncode == 1 and "self-test FAILED" in run.stderr and "Traceback" not in run.stderr
    assert [b["passed"] for b in json.loads(run.stdout)["bundles"]] == [True, False]
    run = _cli("selftest", str(tmp_path / "nothing-here"))
    assert run.returncode == 2 and "is not a bundle folder" in run.stderr


def test_run_with_self_test(pi_out, tmp_path):
    np.save(tmp_path / "digit.npy", np.zeros((28, 28), np.uint8))
    run = _cli("run", str(pi_out / "mnist_cnn-keras-int8"), "--input", str(tmp_path / "digit.npy"), "--self-test")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["self_test"]["passed"] is True
    swapped = _swapped(pi_out, "mnist_cnn-keras-int8", "mnist_cnn-keras-fp32", tmp_path / "swapped")
    run = _cli("run", str(swapped), "--input", str(tmp_path / "digit.npy"), "--self-test")
    assert run.returncode == 2 and run.stdout == "" and "self-test FAILED" in run.stderr
    assert "Traceback" not in run.stderr


def test_large_outputs_keep_fewer_probes(tmp_path):
    """The translator's logits are 1 MB per probe: the self-test keeps as many probes as fit in 1 MiB
    per interpreter family (at least one), so selftest.json stays small on a Pi."""
    rng = np.random.default_rng(0)
    inputs = {"source_ids": rng.integers(0, 8000, (16, 32)).astype(np.int32)}
    logits = {"logits": rng.standard_normal((16, 32, 8000)).astype(np.float32)}
    entry = write_self_test(tmp_path, inputs, logits, default_tolerance("fp32"), {"tflite_runtime": logits})
    assert entry["probes"] == 1  # 32 * 8000 * 4 bytes = 1 024 000 per probe; 2 probes would exceed 2**20
    assert (tmp_path / "selftest.json").stat().st_size < 3 * 2**20
    small = {"probabilities": rng.random((16, 10)).astype(np.float32)}
    assert write_self_test(tmp_path / "s", {"image": rng.random((16, 28, 28, 1)).astype(np.float32)}, small,
                           default_tolerance("fp32"))["probes"] == 16
