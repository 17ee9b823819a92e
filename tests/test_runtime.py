"""The edge runtime on real bundles: sha-checked loading, raw inputs for every task, outputs equal to
the main environment within each bundle's budget (also in the tflite-runtime-only env), bad input."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from edgeproof import get_spec, model_names
from edgeproof.runtime import BundleError, InputError, Model, ModelFileError

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def pi_bundles(fast_verified, tmp_path_factory):
    from edgeproof.deploy import deploy

    artifacts, _ = fast_verified
    out = tmp_path_factory.mktemp("pi")
    result = deploy("pi", artifacts=artifacts, out=out, progress=False)
    assert result.bundles, result.refused
    return artifacts, out, result


def _bundles(out, model=None):
    return sorted(p.parent for p in out.glob("*/manifest.json") if model is None or p.parent.name.startswith(model + "-"))


def _reference(artifacts, manifest):
    from edgeproof.train import load_checkpoint, model_dir, predictor_for

    ckpt = load_checkpoint(model_dir(artifacts, manifest["model"], manifest["framework"]) / "checkpoint")
    return predictor_for(ckpt)


@pytest.mark.parametrize("name", model_names())
def test_every_pi_bundle_matches_its_reference_within_budget(pi_bundles, name):
    artifacts, out, _ = pi_bundles
    spec = get_spec(name)
    probes = spec.probe_inputs()
    bundles = _bundles(out, name)
    assert bundles, f"no passing TFLite bundle for {name}"
    for bundle in bundles:
        model = Model.load(bundle)
        budget = model.manifest["verdict"]["budget"]
        got = model.predict(probes)
        ref = _reference(artifacts, model.manifest)(probes)
        assert np.abs(got - ref).max() <= budget["max_abs_error"], bundle.name
        assert model.interpreter == "ai_edge_litert"


def test_raw_inputs_for_every_task(pi_bundles, tmp_path):
    from edgeproof.train._data import load_mnist

    _, out, _ = pi_bundles
    digits = load_mnist()
    cnn = Model.load(_bundles(out, "mnist_cnn")[0])
    result = cnn(digits["x_test"][:50])
    assert np.mean(result["class"] == digits["y_test"][:50]) >= 0.8  # fast profile, raw uint8 pixels
    assert result["probabilities"].shape == (50, 10)

    lstm = Model.load(_bundles(out, "imdb_lstm")[0])
    r = lstm(["a wonderful, moving film", "the worst movie i have ever seen"])
    assert r["positive"].shape == (2,) and set(r["label"]) <= {"positive", "negative"}

    gan = Model.load(_bundles(out, "mnist_gan")[0])
    images = gan(7)["images"]
    assert images.shape == (16, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, gan(7)["images"]) and not np.array_equal(images, gan(8)["images"])

    translator = Model.load(_bundles(out, "translator")[0])
    (english,) = translator("Ein Mann fährt Fahrrad.")["translation"]
    assert isinstance(english, str) and english.strip()

    linreg = Model.load(_bundles(out, "linreg")[0])
    y = linreg([0.0, 1.0])["y"]
    assert 1.0 < y[1] - y[0] < 4.0  # the slope is about 2.5


def test_run_and_bench_commands(pi_bundles, tmp_path):
    from edgeproof.runtime._images import write_png
    from edgeproof.train._data import load_mnist

    _, out, _ = pi_bundles
    digits = load_mnist()
    png = write_png(tmp_path / "digit.png", digits["x_test"][0])
    cnn = _bundles(out, "mnist_cnn")[0]
    run = subprocess.run([sys.executable, "-m", "edgeproof", "run", str(cnn), "--input", str(png)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    assert payload["interpreter"] == "ai_edge_litert" and payload["label"] == [str(digits["y_test"][0])]

    gan = _bundles(out, "mnist_gan")[0]
    grid_png = tmp_path / "grid.png"
    run = subprocess.run([sys.executable, "-m", "edgeproof", "run", str(gan), "--input", "3", "--output", str(grid_png)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    from edgeproof.runtime._images import read_png

    assert read_png(grid_png).shape == (4 * 30 + 2, 4 * 30 + 2)

    bench = subprocess.run([sys.executable, "-m", "edgeproof", "bench", str(cnn), "--runs", "20", "--threads", "2"],
                           capture_output=True, text=True, timeout=120)
    assert bench.returncode == 0, bench.stderr
    stats = json.loads(bench.stdout)
    assert 0 < stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] and stats["peak_rss_mib"] > 0
    assert stats["threads"] == 2 and stats["load_ms"] > 0


@pytest.mark.edge
def test_the_pi_tarball_runs_in_the_runtime_only_environment(pi_bundles, edge_python, tmp_path):
    """Unpack the tarball, run every bundle with tflite-runtime (numpy<2, no TensorFlow) and compare
    with the main environment's outputs within each bundle's budget."""
    artifacts, out, result = pi_bundles
    with tarfile.open(result.package) as tar:
        tar.extractall(tmp_path / "pi", filter="data")
    assert "pip install \"edgeproof[litert]\"" in (tmp_path / "pi" / "README.md").read_text()
    bundles = sorted((tmp_path / "pi" / "bundles").iterdir())
    assert [b.name for b in bundles] == [b.name for b in _bundles(out)]
    expected = {}
    for bundle in bundles:
        spec = get_spec(json.loads((bundle / "manifest.json").read_text())["model"])
        probes = spec.probe_inputs()
        np.savez(tmp_path / f"{bundle.name}.npz", **probes)
        expected[bundle.name] = Model.load(bundle).predict(probes)
    code = (
        "import json, sys, numpy as np\n"
        "from edgeproof.runtime import Model, ModelFileError\n"
        "out, refused = {}, {}\n"
        f"for name in {[b.name for b in bundles]!r}:\n"
        "    try:\n"
        f"        m = Model.load({str(tmp_path / 'pi' / 'bundles')!r} + '/' + name)\n"
        "    except ModelFileError as err:\n"
        "        refused[name] = str(err)\n"
        "        continue\n"
        f"    probes = dict(np.load({str(tmp_path)!r} + '/' + name + '.npz'))\n"
        "    np.save(" + repr(str(tmp_path)) + " + '/edge-' + name + '.npy', m.predict(probes))\n"
        "    out[name] = m.interpreter\n"
        "print(json.dumps({'interpreters': out, 'refused': refused, 'tf': 'tensorflow' in sys.modules,"
        " 'numpy': np.__version__}))\n")
    run = subprocess.run([str(edge_python), "-c", code], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert not report["tf"] and report["numpy"].startswith("1.")
    assert set(report["interpreters"].values()) == {"tflite_runtime"}
    for bundle in bundles:
        manifest = json.loads((bundle / "manifest.json").read_text())
        if not manifest["runtime_requirements"]["tflite_runtime_2_14"]:
            # predicted by the manifest (op versions): refused with the fix, never run wrongly
            assert "install ai-edge-litert" in report["refused"][bundle.name], bundle.name
            continue
        assert bundle.name in report["interpreters"], report["refused"].get(bundle.name)
        edge = np.load(tmp_path / f"edge-{bundle.name}.npy")
        assert np.abs(edge - expected[bundle.name]).max() <= manifest["verdict"]["budget"]["max_abs_error"], bundle.name
    assert len(report["interpreters"]) >= len(bundles) // 2


def test_android_readme_matches_the_manifests(fast_verified, tmp_path):
    from edgeproof.deploy import deploy

    artifacts, _ = fast_verified
    result = deploy("android", artifacts=artifacts, out=tmp_path / "android", models=["translator", "mnist_cnn"],
                    progress=False)
    readme = result.package.read_text()
    for bundle in result.bundles:
        m = json.loads((bundle / "manifest.json").read_text())
        assert f"## {bundle.name}" in readme
        for t in m["inputs"] + m["outputs"]:
            assert f"\"{t['tensor']}\"" in readme
        assert f"{bundle.name}/model.tflite" in readme
    assert "runSignature(mapOf(\"source_ids\" to source_ids, \"target_ids\" to target_ids)" in readme


# -- bad input -----------------------------------------------------------------------------------

@pytest.fixture
def cnn_bundle(pi_bundles, tmp_path):
    _, out, _ = pi_bundles
    dest = tmp_path / "bundle"
    shutil.copytree(_bundles(out, "mnist_cnn")[0], dest)
    return dest


def _edit_manifest(bundle, change):
    m = json.loads((bundle / "manifest.json").read_text())
    change(m)
    (bundle / "manifest.json").write_text(json.dumps(m))


def test_a_tampered_file_is_refused(cnn_bundle):
    with open(cnn_bundle / "model.tflite", "r+b") as f:
        f.seek(2000)
        byte = f.read(1)
        f.seek(2000)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(BundleError, match="model.tflite has sha256 .* modified or damaged"):
        Model.load(cnn_bundle)


def test_a_truncated_model_with_a_matching_sha_is_a_clear_error(cnn_bundle):
    from edgeproof.runtime._manifest import sha256_of

    path = cnn_bundle / "model.tflite"
    path.write_bytes(path.read_bytes()[:64])
    _edit_manifest(cnn_bundle, lambda m: m["files"]["model.tflite"].update(sha256=sha256_of(path)))
    with pytest.raises(ModelFileError, match="not a valid TFLite model"):
        Model.load(cnn_bundle)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("inputs"), "field 'inputs' is missing"),
    (lambda m: m.update(format_version=99), "format version 99 is not supported"),
    (lambda m: m.update(format="something"), "not an edgeproof bundle manifest"),
    (lambda m: m.update(task="dance"), "unknown task 'dance'"),
    (lambda m: m["inputs"][0].update(shape="28x28"), "field 'shape' must be list"),
    (lambda m: m.update(model_file="../../etc/passwd", files={**m["files"], "../../etc/passwd": m["files"]["model.tflite"]}),
     "points outside the bundle"),
    (lambda m: m.update(model_file="/etc/passwd", files={**m["files"], "/etc/passwd": m["files"]["model.tflite"]}),
     "points outside the bundle"),
    (lambda m: m.update(model_file="other.tflite"), "is not listed in 'files'"),
])
def test_a_broken_manifest_is_a_clear_error(cnn_bundle, change, message):
    _edit_manifest(cnn_bundle, change)
    with pytest.raises(BundleError, match=message):
        Model.load(cnn_bundle)


def test_garbled_json_and_missing_manifest(cnn_bundle, tmp_path):
    (cnn_bundle / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        Model.load(cnn_bundle)
    with pytest.raises(BundleError, match="no manifest.json"):
        Model.load(tmp_path)


def test_wrong_shapes_dtypes_and_empty_text_name_the_signature(pi_bundles):
    _, out, _ = pi_bundles
    cnn = Model.load(_bundles(out, "mnist_cnn")[0])
    with pytest.raises(InputError, match="28x28 grey image"):
        cnn(np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError, match="image"):
        cnn.predict({"image": np.zeros((1, 28, 28), np.float32)})
    lstm = Model.load(_bundles(out, "imdb_lstm")[0])
    with pytest.raises(InputError, match="empty"):
        lstm("   ")
    with pytest.raises(InputError, match="integer ids"):
        lstm.predict({"tokens": np.zeros((1, 200), np.float32)})
    translator = Model.load(_bundles(out, "translator")[0])
    with pytest.raises(InputError, match="empty"):
        translator("")


def test_cli_errors_exit_non_zero_with_one_clear_line(cnn_bundle, tmp_path):
    (cnn_bundle / "preprocessing.json").write_text("{}")  # sha mismatch
    run = subprocess.run([sys.executable, "-m", "edgeproof", "run", str(cnn_bundle), "--input", "x.png"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "preprocessing.json has sha256" in run.stderr
    assert "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "edgeproof", "bench", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "is not a bundle folder" in run.stderr
