"""TF.js weight paths are confined to the artifact folder (issue 19 item 2), in Python before Node
sees a model (check_model_json, called by TfjsNodeRunner.load) and in the Node runner itself.

The defect: a model.json whose weightsManifest path was `../../../../etc/passwd` was read by the
Node runner, and parity.json recorded `shape 1953460082,...` (the bytes `root:x:0`)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from edgeproof.verify._tfjs_node import (
    MAX_MODEL_JSON_BYTES,
    TfjsModelError,
    TfjsNodeRunner,
    TfjsRuntimeError,
    check_model_json,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

W = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)


def _graph(folder: Path, paths=("w.bin",), weights=None, shard: bytes = W.tobytes()) -> Path:
    """A hand-written TF.js graph model: y = x @ w with w a weight read from the shard(s)."""
    folder.mkdir(parents=True, exist_ok=True)
    topology = {"node": [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"},
                                                    "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "2"}]}}}},
        {"name": "w", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}, "value": {"tensor": {
            "dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}, {"size": "2"}]}}}}},
        {"name": "y", "op": "MatMul", "input": ["x", "w"],
         "attr": {"T": {"type": "DT_FLOAT"}, "transpose_a": {"b": False}, "transpose_b": {"b": False}}}],
        "library": {}, "versions": {}}
    if "w.bin" in paths:
        (folder / "w.bin").write_bytes(shard)
    weights = weights if weights is not None else [{"name": "w", "shape": [2, 2], "dtype": "float32"}]
    model = {"format": "graph-model", "modelTopology": topology,
             "weightsManifest": [{"paths": list(paths), "weights": weights}]}
    (folder / "model.json").write_text(json.dumps(model))
    return folder / "model.json"


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A secret outside every model folder, exactly the size of the declared weights (16 bytes), so
    that only the path check can stop it."""
    path = tmp_path_factory.mktemp("secret") / "passwd"
    path.write_bytes(b"root:x:0:0:root:")
    return path


def _escapes(tmp_path: Path, outside: Path) -> dict[str, Path]:
    """One model folder per way out of it."""
    cases = {}
    depth = len(tmp_path.parts) + 2
    cases["dotdot"] = _graph(tmp_path / "dotdot", paths=["../" * depth + str(outside)[1:]])
    cases["absolute"] = _graph(tmp_path / "absolute", paths=[str(outside)])
    link = tmp_path / "symlink"
    link.mkdir()
    (link / "w.bin").symlink_to(outside)
    cases["symlink"] = _graph(link, paths=["w.bin"], shard=b"")
    linked_dir = tmp_path / "symlinked-dir"
    linked_dir.mkdir()
    (linked_dir / "sub").symlink_to(outside.parent, target_is_directory=True)
    cases["symlinked folder"] = _graph(linked_dir, paths=["sub/passwd"], shard=b"")
    cases["backslash"] = _graph(tmp_path / "backslash", paths=["..\\..\\passwd"])
    cases["url"] = _graph(tmp_path / "url", paths=["file:///etc/passwd"])
    return cases


MESSAGES = {"dotdot": "points outside the model folder", "absolute": "points outside the model folder",
            "symlink": "outside the model folder", "symlinked folder": "outside the model folder",
            "backslash": "not a plain relative file name", "url": "not a plain relative file name"}


def test_python_refuses_every_way_out_of_the_folder(tmp_path, outside):
    for case, model_json in _escapes(tmp_path, outside).items():
        with pytest.raises(TfjsModelError, match=MESSAGES[case]):
            check_model_json(model_json)


def test_python_checks_shard_sizes_against_the_declared_shapes(tmp_path):
    assert check_model_json(_graph(tmp_path / "ok"))["format"] == "graph-model"
    with pytest.raises(TfjsModelError, match="hold 12 bytes but the declared weight shapes need 16"):
        check_model_json(_graph(tmp_path / "short", shard=W.tobytes()[:12]))
    with pytest.raises(TfjsModelError, match="hold 20 bytes but the declared weight shapes need 16"):
        check_model_json(_graph(tmp_path / "long", shard=W.tobytes() + b"evil"))
    huge = [{"name": "w", "shape": [2**30, 2**30], "dtype": "float32"}]
    with pytest.raises(TfjsModelError, match="declare over 2 GiB"):
        check_model_json(_graph(tmp_path / "huge", weights=huge))
    with pytest.raises(TfjsModelError, match="weight shard 'gone.bin' is missing"):
        check_model_json(_graph(tmp_path / "missing", paths=["gone.bin"]))
    uint8 = [{"name": "w", "shape": [2, 2], "dtype": "float32", "quantization": {"dtype": "uint8", "min": 0, "scale": 1}}]
    assert check_model_json(_graph(tmp_path / "q", weights=uint8, shard=bytes(4)))  # quantized: 1 byte each


def test_python_bounds_model_json_size_and_nesting(tmp_path):
    big = tmp_path / "big" / "model.json"
    big.parent.mkdir()
    with open(big, "wb") as f:  # sparse: the check must refuse it from its size, without reading it
        f.truncate(MAX_MODEL_JSON_BYTES + 1)
    with pytest.raises(TfjsModelError, match="over the 64 MiB limit"):
        check_model_json(big)
    deep = tmp_path / "deep" / "model.json"
    deep.parent.mkdir()
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(TfjsModelError, match="nested too deeply"):
        check_model_json(deep)


@pytest.fixture(scope="module")
def runner():
    try:
        r = TfjsNodeRunner(backend="cpu", timeout_s=120)
    except TfjsRuntimeError as err:
        pytest.fail(f"the Node TF.js runner cannot start: {err}")
    yield r
    r.close()


def test_the_node_runner_itself_refuses_paths_outside_the_folder(runner, tmp_path, outside):
    """Bypass the Python check (a raw load request, as any other client could send): Node refuses too,
    and the runner keeps serving."""
    for case, model_json in _escapes(tmp_path, outside).items():
        with pytest.raises(TfjsRuntimeError, match=MESSAGES[case].split(" (")[0]) as err:
            runner._request("load", model=str(model_json), backend="cpu", fallback=None)
        assert "root:x" not in str(err.value) and "1953460082" not in str(err.value)
    short = _graph(tmp_path / "short", shard=W.tobytes()[:12])
    with pytest.raises(TfjsRuntimeError, match="hold 12 bytes but the declared weight shapes need 16"):
        runner._request("load", model=str(short), backend="cpu", fallback=None)
    ok = _graph(tmp_path / "ok")
    runner.load(ok)
    x = np.array([[1.0, 1.0]], np.float32)
    np.testing.assert_allclose(runner.predict({"x": x})["y"], x @ W)


def test_runner_load_checks_in_python_first(runner, tmp_path, outside):
    with pytest.raises(TfjsModelError, match="points outside the model folder"):
        runner.load(_graph(tmp_path / "abs", paths=[str(outside)]))


# -- property-based: arbitrary weight paths and manifests ------------------------------------------

segments = st.sampled_from(["..", ".", "w.bin", "sub", "", "a..b", "...", "link", "/", "\\", "%2e%2e", "~"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(segments, min_size=1, max_size=6), absolute=st.booleans())
def test_any_weight_path_is_confined_or_refused(tmp_path_factory, outside, parts, absolute):
    folder = tmp_path_factory.mktemp("m")
    (folder / "sub").mkdir()
    (folder / "sub" / "w.bin").write_bytes(W.tobytes())
    (folder / "link").symlink_to(outside.parent, target_is_directory=True)
    entry = ("/" if absolute else "") + "/".join(parts)
    model_json = _graph(folder, paths=[entry])
    try:
        check_model_json(model_json)
    except TfjsModelError:
        return
    resolved = (folder / entry).resolve()
    assert folder.resolve() in resolved.parents and resolved.is_file(), entry


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**33, 2**33) | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=3), max_leaves=8)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["weightsManifest", "paths", "weights", "shape", "dtype", "quantization", "modelTopology"]),
       value=json_values)
def test_a_mutated_model_json_passes_or_is_refused_cleanly(tmp_path_factory, key, value):
    folder = tmp_path_factory.mktemp("j")
    model_json = _graph(folder)
    data = json.loads(model_json.read_text())
    group, weight = data["weightsManifest"][0], data["weightsManifest"][0]["weights"][0]
    target = data if key in ("weightsManifest", "modelTopology") else group if key in ("paths", "weights") else weight
    target[key] = value
    model_json.write_text(json.dumps(data))
    try:
        check_model_json(model_json)
    except TfjsModelError:
        pass
    assert os.path.getsize(folder / "w.bin") == 16  # nothing was written or moved


def test_deep_nesting_is_refused_even_after_a_library_lifted_the_recursion_limit(tmp_path):
    """onnx2tf sets the interpreter's recursion limit to 2**31 - 1 when imported; json's C decoder then overflowed
    the C stack on 100 000 nested '[' (a segmentation fault in the test run after the ONNX tests), instead of the
    RecursionError read_json turns into a one-line refusal."""
    from .conftest import run_python

    deep = tmp_path / "deep" / "model.json"
    deep.parent.mkdir()
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code = ("import sys; sys.setrecursionlimit(2**31 - 1)\n"
            "from edgeproof.verify._tfjs_node import TfjsModelError, check_model_json\n"
            f"try:\n    check_model_json({str(deep)!r})\nexcept TfjsModelError as err:\n    print('refused:', err)\n"
            "print('limit', sys.getrecursionlimit())")
    run = run_python(code)
    assert run.returncode == 0, run.stderr[-2000:]  # -11 was the segmentation fault
    assert "refused:" in run.stdout and "nested too deeply" in run.stdout
    assert f"limit {2**31 - 1}" in run.stdout  # the caller's limit is given back
