"""Signed bundles in the OpenSSF model-signing format (issue 19 "what to build" 2): the signature
covers every file (the manifest with its verdict, budgets, self-test and checksums included); with
a public key configured, an unsigned or altered bundle is refused with one clear line."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from edgeproof.deploy._signing import generate_key_pair, sign_bundle
from edgeproof.runtime import Model, SignatureError, verify_bundle_signature
from edgeproof.runtime._bundle_signing import SIGNATURE_FILE

from .bundle_fixtures import REPO, build_pi_bundles, copy_bundle, rehash

pytestmark = pytest.mark.stack
FILES = ["manifest.json", "model.tflite", "preprocessing.json", "selftest.json"]


@pytest.fixture(scope="session")
def pi_out(tmp_path_factory):
    return build_pi_bundles(tmp_path_factory.getbasetemp() / "h19-bundles")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    return generate_key_pair(folder / "signing.pem", folder / "signing.pub")


@pytest.fixture
def signed(pi_out, keys, tmp_path):
    bundle = copy_bundle(pi_out, "mnist_cnn-keras-int8", tmp_path / "bundle")
    assert sign_bundle(bundle, keys[0]) == bundle / SIGNATURE_FILE
    return bundle


def test_a_signed_bundle_verifies_and_loads(signed, keys):
    assert sorted(p.name for p in signed.iterdir()) == sorted(FILES + [SIGNATURE_FILE])
    assert verify_bundle_signature(signed, keys[1])["signed"] is True
    model = Model.load(signed, public_key=keys[1], self_test=True)
    assert model.signature_check["signed"] and model.self_test_result.passed


@pytest.mark.parametrize("name", FILES)
def test_one_byte_changed_in_any_file_is_refused(signed, keys, name):
    path = signed / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SignatureError, match=rf"changed: .*{name}.* \(the file differs from the signed one\)"):
        verify_bundle_signature(signed, keys[1])
    with pytest.raises(SignatureError, match="was altered after signing"):
        Model.load(signed, public_key=keys[1])


def test_a_swapped_model_with_recomputed_checksums_is_refused(signed, keys, pi_out):
    (signed / "model.tflite").write_bytes((pi_out / "mnist_cnn-keras-fp32" / "model.tflite").read_bytes())
    rehash(signed, "model.tflite")  # the manifest is consistent again: only the signature can tell
    with pytest.raises(SignatureError, match="model.tflite"):
        Model.load(signed, public_key=keys[1])


def test_a_rewritten_verdict_is_refused(signed, keys):
    manifest = json.loads((signed / "manifest.json").read_text())
    manifest["verdict"]["budget"]["max_abs_error"] = 1e9
    (signed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SignatureError, match="manifest.json"):
        verify_bundle_signature(signed, keys[1])


@pytest.mark.parametrize("change, message", [
    (lambda b: (b / "extra.txt").write_text("x"), r"added: extra\.txt\)"),
    (lambda b: (b / ".hidden").write_text("x"), r"added: \.hidden\)"),
    (lambda b: (b / "preprocessing.json").unlink(), r"removed: preprocessing\.json\)"),
    (lambda b: (b / SIGNATURE_FILE).write_text("{not json"), "failed"),
    (lambda b: (b / SIGNATURE_FILE).write_bytes((b / SIGNATURE_FILE).read_bytes()[:200]), "failed"),
])
def test_added_removed_files_and_broken_signatures_are_refused(signed, keys, change, message):
    change(signed)
    with pytest.raises(SignatureError, match=message):
        verify_bundle_signature(signed, keys[1])


def test_another_key_is_refused(signed, tmp_path):
    _, other = generate_key_pair(tmp_path / "other.pem", tmp_path / "other.pub")
    with pytest.raises(SignatureError, match="Key mismatch"):
        verify_bundle_signature(signed, other)


def test_an_unsigned_bundle_is_refused_when_a_key_is_configured(pi_out, keys, tmp_path):
    bundle = copy_bundle(pi_out, "mnist_cnn-keras-int8", tmp_path / "unsigned")
    with pytest.raises(SignatureError, match=r"is not signed \(no model.sig\) and a public key was given"):
        Model.load(bundle, public_key=keys[1])
    Model.load(bundle)  # no key configured: loads (checksums only), as before
    (bundle / SIGNATURE_FILE).symlink_to(keys[1])
    with pytest.raises(SignatureError, match="is not signed"):
        verify_bundle_signature(bundle, keys[1])


def test_signing_errors_are_clear(pi_out, tmp_path):
    bundle = copy_bundle(pi_out, "mnist_cnn-keras-int8", tmp_path / "b")
    with pytest.raises(SignatureError, match="signing key .* not found"):
        sign_bundle(bundle, tmp_path / "nope.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(SignatureError, match="cannot sign"):
        sign_bundle(bundle, tmp_path / "junk.pem")
    assert not (bundle / SIGNATURE_FILE).exists()


def test_without_the_signing_extra_the_error_says_how_to_install_it(signed, keys):
    """.venv-edge is the runtime-only install (numpy + tflite-runtime): model-signing is absent."""
    python = REPO / ".venv-edge" / "bin" / "python"
    code = textwrap.dedent(f"""
        from edgeproof.runtime import Model, SignatureError
        try:
            Model.load({str(signed)!r}, public_key={str(keys[1])!r})
        except SignatureError as err:
            print(err)
    """)
    run = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert 'install it with: pip install "edgeproof[signing]"' in run.stdout


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeproof", *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO)


def test_verify_bundle_and_run_commands(signed, keys, tmp_path):
    run = _cli("verify-bundle", str(signed), "--public-key", str(keys[1]))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["bundles"][0]["signed"] is True
    np.save(tmp_path / "digit.npy", np.zeros((28, 28), np.uint8))
    run = _cli("run", str(signed), "--input", str(tmp_path / "digit.npy"), "--public-key", str(keys[1]))
    assert run.returncode == 0 and json.loads(run.stdout)["signature"] == "verified", run.stderr
    (signed / "preprocessing.json").write_text("{}")
    for args in (("verify-bundle", str(signed), "--public-key", str(keys[1])),
                 ("run", str(signed), "--input", str(tmp_path / "digit.npy"), "--public-key", str(keys[1]))):
        run = _cli(*args)
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "preprocessing.json" in run.stderr
