"""Property-based tests (hypothesis) of manifest parsing and input validation: whatever the input,
the runtime answers with a result or a clear BundleError / InputError, never another exception."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeproof.runtime._manifest import BundleError, parse_manifest, safe_member
from edgeproof.runtime._signature import InputError, TensorBinding, from_artifact, to_artifact

VALID = {
    "format": "edgeproof-bundle", "format_version": 1, "model": "mnist_cnn", "framework": "keras",
    "task": "classification", "mode": "int8", "model_file": "model.tflite", "preprocessing_file": "preprocessing.json",
    "inputs": [{"name": "image", "tensor": "image", "shape": [-1, 28, 28, 1], "dtype": "float32", "layout": "NHWC",
                "canonical_layout": "NHWC", "quantization": None}],
    "outputs": [{"name": "probabilities", "tensor": "probabilities", "shape": [-1, 10], "dtype": "float32",
                 "layout": "NF", "canonical_layout": "NF", "quantization": None}],
    "files": {"model.tflite": {"sha256": "a" * 64, "bytes": 10}, "preprocessing.json": {"sha256": "b" * 64, "bytes": 2}},
    "verdict": {"status": "pass"},
}

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=10)


def test_the_valid_manifest_parses():
    assert parse_manifest(copy.deepcopy(VALID))["model"] == "mnist_cnn"


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_is_refused_with_a_bundle_error(data):
    with pytest.raises(BundleError):
        parse_manifest(data)


def _paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


ALL_PATHS = list(_paths(VALID))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ALL_PATHS), json_values, st.booleans())
def test_a_mutated_manifest_parses_or_fails_cleanly(path, value, delete):
    data = copy.deepcopy(VALID)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        parsed = parse_manifest(data)
    except BundleError as err:
        assert str(err)
    else:
        assert parsed["format"] == "edgeproof-bundle"


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_safe_member_never_leaves_the_bundle(tmp_path_factory, name):
    bundle = tmp_path_factory.getbasetemp() / "bundle"
    bundle.mkdir(exist_ok=True)
    try:
        path = safe_member(bundle, name)
    except BundleError:
        return
    assert bundle.resolve() in path.parents


BINDINGS = [
    TensorBinding("image", "image", (-1, 28, 28, 1), "float32", "NHWC", "NHWC"),
    TensorBinding("image", "input.1", (-1, 1, 28, 28), "float32", "NCHW", "NHWC"),
    TensorBinding("image", "image", (-1, 28, 28, 1), "int8", "NHWC", "NHWC", {"scale": [1 / 255], "zero_point": [-128]}),
    TensorBinding("tokens", "tokens", (1, 200), "int32", "NT", "NT"),
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(BINDINGS), st.lists(st.integers(1, 30), min_size=1, max_size=5),
       st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_]))
def test_input_validation_accepts_the_signature_and_names_it_otherwise(binding, shape, dtype):
    array = np.zeros(shape, dtype=dtype)
    try:
        fed = to_artifact(binding, array)
    except InputError as err:
        assert binding.canonical in str(err)
        return
    assert fed.dtype == np.dtype(binding.dtype)
    assert all(e in (-1, g) for e, g in zip(binding.shape[1:], fed.shape[1:])) and fed.ndim == len(binding.shape)


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1, width=32), st.integers(1, 4))
def test_int8_quantization_round_trips_within_half_a_step(value, n):
    binding = BINDINGS[2]
    x = np.full((n, 28, 28, 1), value, np.float32)
    q = to_artifact(binding, x)
    back = from_artifact(binding, q)
    assert np.abs(back - x).max() <= binding.quantization["scale"][0] / 2 + 1e-6


def test_nchw_artifacts_get_transposed_inputs():
    x = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28, 1)
    fed = to_artifact(BINDINGS[1], x)
    assert fed.shape == (2, 1, 28, 28) and np.array_equal(fed[:, 0], x[..., 0])


def test_outputs_come_back_element_for_element_by_hand():
    """from_artifact keeps every output value where the artifact put it: float outputs as they are, int8 outputs
    dequantized one by one as (q - zero_point) * scale, NCHW feature maps moved to NHWC, values checked by hand."""
    probs = TensorBinding("probabilities", "Identity", (-1, 3), "float32", "NF", "NF")
    assert from_artifact(probs, np.array([[0.1, 0.7, 0.2]], np.float32)).tolist() == [
        [np.float32(0.1), np.float32(0.7), np.float32(0.2)]]
    q = TensorBinding("probabilities", "Identity", (-1, 4), "int8", "NF", "NF", {"scale": [0.5], "zero_point": [-2]})
    # (q - (-2)) * 0.5: -2 -> 0.0, 0 -> 1.0, 3 -> 2.5, 127 -> 64.5
    assert from_artifact(q, np.array([[-2, 0, 3, 127]], np.int8)).tolist() == [[0.0, 1.0, 2.5, 64.5]]
    maps = TensorBinding("maps", "out", (-1, 2, 1, 3), "float32", "NCHW", "NHWC")
    nchw = np.array([[[[1, 2, 3]], [[4, 5, 6]]]], np.float32)  # channel 0: 1 2 3, channel 1: 4 5 6 along W
    assert from_artifact(maps, nchw).tolist() == [[[[1, 4], [2, 5], [3, 6]]]]
