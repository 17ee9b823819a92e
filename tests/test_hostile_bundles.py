"""Hostile bundles and inputs through the edge runtime and `edgeproof run` / `edgeproof bench`
(issue 19 item 5, and the weaker spots): every case gives one clear line and exit code 2, never a
traceback, and nothing half-written. Each case was a traceback (or invalid JSON, or a file written
from an input path) before the fix."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from edgeproof.runtime import BundleError, InputError, Model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeproof.errors import EdgeproofError

from .bundle_fixtures import REPO, build_pi_bundles, copy_bundle, rehash

pytestmark = pytest.mark.stack
CNN, GAN = "mnist_cnn-keras-int8", "mnist_gan-keras-fp32"


@pytest.fixture(scope="session")
def pi_out(tmp_path_factory):
    return build_pi_bundles(tmp_path_factory.getbasetemp() / "h19-bundles")


@pytest.fixture
def cnn(pi_out, tmp_path):
    return copy_bundle(pi_out, CNN, tmp_path / "cnn")


def _edit(bundle: Path, change) -> None:
    path = bundle / "manifest.json"
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(m))


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeproof", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def _one_clear_line(run: subprocess.CompletedProcess, message: str) -> None:
    assert run.returncode == 2, (run.returncode, run.stdout[-500:], run.stderr[-2000:])
    lines = [line for line in run.stderr.splitlines() if line.startswith("edgeproof ")]
    assert len(lines) == 1 and message in lines[0], run.stderr[-2000:]
    assert "Traceback" not in run.stderr


def _dup_input(m):
    m["inputs"].append(copy.deepcopy(m["inputs"][0]))


MANIFEST_CASES = [
    ("labels too short", lambda m: m.update(labels=["0", "1", "2"]), "'labels' has 3 names but the model has 10 classes"),
    ("labels an int", lambda m: m.update(labels=7), "'labels' must be a list of strings"),
    ("unknown dtype", lambda m: m["inputs"][0].update(dtype="notadtype"), "unknown dtype 'notadtype'"),
    ("empty verdict", lambda m: m.update(verdict={}), "verdict.status must be one of pass, fail, unsupported"),
    ("duplicate input", _dup_input, "lists the name 'image' more than once"),
    ("negative quantization scale", lambda m: m["outputs"][0].update(quantization={"scale": [-1.0], "zero_point": [0]}),
     "invalid quantization parameters"),
    ("shape of rank 40", lambda m: m["inputs"][0].update(shape=[1] * 40), "invalid shape"),
    ("sha256 not hex", lambda m: m["files"]["model.tflite"].update(sha256="z" * 64), "64-character hex sha256"),
]


@pytest.mark.parametrize("case, change, message", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_a_bad_manifest_is_one_line_and_exit_2(cnn, tmp_path, case, change, message):
    _edit(cnn, change)
    with pytest.raises(BundleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Model.load(cnn)
    np.save(tmp_path / "digit.npy", np.zeros((28, 28), np.uint8))
    _one_clear_line(_cli("run", str(cnn), "--input", str(tmp_path / "digit.npy")), message)
    _one_clear_line(_cli("bench", str(cnn), "--runs", "2"), message)


def test_json_nested_100000_deep_is_refused(cnn):
    (cnn / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BundleError, match="nested too deeply"):
        Model.load(cnn)
    _one_clear_line(_cli("bench", str(cnn), "--runs", "2"), "nested too deeply")
    (cnn / "manifest.json").write_text("[" * 100 + "]" * 100)  # parses, but deeper than any bundle file
    with pytest.raises(BundleError, match="nested more than 64 levels"):
        Model.load(cnn)


def test_nan_in_a_manifest_is_not_json(cnn):
    text = (cnn / "manifest.json").read_text().replace('"format_version": 1', '"format_version": NaN')
    (cnn / "manifest.json").write_text(text)
    with pytest.raises(BundleError, match="NaN is not a JSON number"):
        Model.load(cnn)


@pytest.mark.parametrize("content, message", [
    ([1, 2, 3], "preprocessing must be a JSON object, got list"),
    ({"size": "28x28"}, "field 'size' must be [height, width]"),
    ({"scale": "big"}, "field 'scale' must be a finite number"),
    ({"size": [10**12, 28]}, "field 'size' must be [height, width]"),
])
def test_a_bad_preprocessing_json_is_one_line_and_exit_2(cnn, tmp_path, content, message):
    (cnn / "preprocessing.json").write_text(json.dumps(content))
    rehash(cnn, "preprocessing.json")
    with pytest.raises(BundleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Model.load(cnn)
    _one_clear_line(_cli("bench", str(cnn), "--runs", "2"), message)


def test_an_empty_batch_on_the_int8_cnn_is_an_input_error(cnn, tmp_path):
    model = Model.load(cnn, interpreter="ai_edge_litert")
    with pytest.raises(InputError, match="the batch is empty"):
        model(np.zeros((0, 28, 28), np.uint8))
    np.save(tmp_path / "empty.npy", np.zeros((0, 28, 28), np.uint8))
    _one_clear_line(_cli("run", str(cnn), "--input", str(tmp_path / "empty.npy"), "--interpreter", "ai_edge_litert"),
                    "the batch is empty")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_input_errors(cnn, tmp_path, bad):
    image = np.zeros((28, 28), np.float32)
    image[3, 4] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        Model.load(cnn)(image)
    np.save(tmp_path / "bad.npy", image)
    _one_clear_line(_cli("run", str(cnn), "--input", str(tmp_path / "bad.npy")), "NaN or infinite")


def test_run_output_is_strict_json(cnn, tmp_path):
    np.save(tmp_path / "digit.npy", np.zeros((28, 28), np.uint8))
    run = _cli("run", str(cnn), "--input", str(tmp_path / "digit.npy"))
    assert run.returncode == 0, run.stderr
    json.loads(run.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c} in {run.stdout}"))


def test_strict_json_turns_non_finite_numbers_into_null_with_a_warning(capsys):
    from edgeproof.runtime._commands import print_json

    print_json({"y": [1.0, float("nan")], "z": {"w": float("inf")}})
    out = json.loads(capsys.readouterr().out)
    assert out["y"] == [1.0, None] and out["z"]["w"] is None
    assert out["warnings"] == ["y[1] is nan (not finite): written as null", "z.w is inf (not finite): written as null"]


# -- the GAN's `run` -------------------------------------------------------------------------------

@pytest.fixture
def gan(pi_out, tmp_path):
    return copy_bundle(pi_out, GAN, tmp_path / "gan")


def test_gan_default_output_name_is_not_built_from_the_input_path(gan, tmp_path):
    z = tmp_path / "abs" / "z.npy"
    z.parent.mkdir()
    np.save(z, np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32))
    work = tmp_path / "work"
    work.mkdir()
    run = _cli("run", str(gan), "--input", str(z), cwd=work)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["png"] == "mnist_gan-latent.png"
    assert sorted(p.name for p in work.iterdir()) == ["mnist_gan-latent.png"]
    run = _cli("run", str(gan), "--input", "7", cwd=work)
    assert json.loads(run.stdout)["png"] == "mnist_gan-seed7.png"


@pytest.mark.parametrize("output, message", [
    ("missing/dir/out.png", "the folder missing/dir does not exist"),
    (".", "--output . is a folder"),
])
def test_gan_output_into_a_missing_folder_or_onto_a_folder(gan, tmp_path, output, message):
    run = _cli("run", str(gan), "--input", "3", "--output", output, cwd=tmp_path)
    _one_clear_line(run, message)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("seed", [str(10**4000), str(10**30), "-1"])
def test_gan_seed_out_of_range(gan, tmp_path, seed):
    _one_clear_line(_cli("run", str(gan), "--input", seed, cwd=tmp_path), "the seed must be an integer from 0 to 2**64 - 1")
    assert list(tmp_path.glob("*.png")) == []
    with pytest.raises(InputError, match="the seed must be an integer"):
        Model.load(gan)(int(seed))


# -- property-based: mutated manifests and preprocessing ----------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12), lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=12)


def _paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _mutate(data, path, value, delete):
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


def _use(bundle: Path) -> None:
    """Load and run: only a result or a typed edgeproof error may come out."""
    try:
        model = Model.load(bundle)
        model(np.zeros((2, 28, 28), np.uint8))
    except (EdgeproofError, ValueError):
        pass


@pytest.fixture(scope="module")
def cnn_template(pi_out, tmp_path_factory):
    return copy_bundle(pi_out, CNN, tmp_path_factory.mktemp("tpl") / "cnn")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_manifest_loads_or_fails_with_a_typed_error(cnn_template, tmp_path_factory, data):
    manifest = json.loads((cnn_template / "manifest.json").read_text())
    path = data.draw(st.sampled_from(list(_paths(manifest))))
    _mutate(manifest, path, data.draw(json_values), data.draw(st.booleans()))
    bundle = tmp_path_factory.mktemp("m") / "b"
    copy_bundle(cnn_template.parent, "cnn", bundle)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    _use(bundle)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_preprocessing_json_loads_or_fails_with_a_typed_error(cnn_template, tmp_path_factory, data):
    pre = json.loads((cnn_template / "preprocessing.json").read_text())
    path = data.draw(st.sampled_from(list(_paths(pre))))
    _mutate(pre, path, data.draw(json_values), data.draw(st.booleans()))
    bundle = tmp_path_factory.mktemp("p") / "b"
    copy_bundle(cnn_template.parent, "cnn", bundle)
    (bundle / "preprocessing.json").write_text(json.dumps(pre))
    rehash(bundle, "preprocessing.json")  # an attacker recomputes the checksum
    _use(bundle)
