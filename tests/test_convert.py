"""Conversion matrix on fast-trained checkpoints: every cell the registry defines is produced (or refused with its
pinned reason, tests/fast_matrix.py), every produced artifact loads and runs in its runtime, and what conversion.json
records (tensors, quantization parameters) is what the files hold. Generated from the registry."""
import json
import shutil

import numpy as np
import pytest

from edgeproof import get_spec, model_names
from edgeproof.convert import OnnxBackend, convert, load_records
from edgeproof.convert._tfjs import check_tfjs_model
from edgeproof.runtime import load_interpreter
from edgeproof.train import model_dir

from . import fast_matrix
from .conftest import skip_self_comparison

pytestmark = pytest.mark.stack
FRAMEWORKS = list(fast_matrix.FRAMEWORKS)


@pytest.fixture(scope="module")
def converted(fast_converted):
    return fast_converted


def own_copy(artifacts, tmp_path, name: str, framework: str):
    """An artifacts folder holding a private copy of one model's folder: tests that convert again must
    not change the shared fixture's artifacts under the verdicts other modules rely on."""
    mine = tmp_path / "artifacts"
    shutil.copytree(model_dir(artifacts, name, framework), model_dir(mine, name, framework))
    return mine


def run_tflite(path, inputs: dict, layout_nchw: bool = False) -> np.ndarray:
    """Run a .tflite on a batch; a model exported with a static batch of 1 runs example by example."""
    _, interp = load_interpreter(str(path))
    runner = interp.get_signature_runner()
    details = runner.get_input_details()
    static_batch = next(iter(details.values()))["shape_signature"][0]
    n = len(next(iter(inputs.values())))
    if static_batch == 1 and n > 1:
        return np.concatenate([run_tflite(path, {k: v[i:i + 1] for k, v in inputs.items()}, layout_nchw)
                               for i in range(n)])
    feed = {}
    for name, array in inputs.items():
        if layout_nchw and array.ndim == 4:
            array = array.transpose(0, 3, 1, 2)
        d = details[name]
        if d["dtype"] == np.int8:
            scale, zero = d["quantization_parameters"]["scales"][0], d["quantization_parameters"]["zero_points"][0]
            array = np.clip(np.round(array / scale + zero), -128, 127)
        feed[name] = np.ascontiguousarray(array.astype(d["dtype"]))
    return next(iter(runner(**feed).values()))


def records_by_key(records, name: str, framework: str) -> dict:
    return {r.key: r for r in records[name, framework]}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_the_fast_conversion_matrix_is_the_pinned_one(converted, name, framework):
    """Every cell of the model's modes, in order, with the pinned status: a cell that silently becomes unsupported
    (or a refused one that starts converting) fails here. Produced cells have their file; refused ones their reason."""
    artifacts, records = converted
    cells = records[name, framework]
    assert [r.key for r in cells] == fast_matrix.cells(name, framework)  # second routes; no repairs (not run here)
    assert {r.key: r.status for r in cells} == fast_matrix.conversion(name, framework)
    for r in cells:
        if r.status == "ok":
            path = model_dir(artifacts, name, framework) / r.path
            files = [path] if r.target == "tflite" else [p for p in path.parent.iterdir() if p.is_file()]  # + shards
            assert path.is_file() and sum(p.stat().st_size for p in files) == r.size_bytes > 0, r.key
            assert r.inputs and r.outputs and r.reason is None, r.key
        else:
            assert r.status == "unsupported" and r.path is None, r
            assert r.reason and fast_matrix.UNCONVERTIBLE[name, framework, r.key] in r.reason, r.reason


def test_the_pinned_exceptions_name_real_cells():
    assert fast_matrix.stale_exceptions() == []


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_conversion_json_holds_the_records_convert_returned(converted, name, framework):
    skip_self_comparison("converted", "comparing conversion.json with the records")
    artifacts, records = converted
    on_disk = load_records(model_dir(artifacts, name, framework))
    assert [r.to_dict() for r in on_disk] == [r.to_dict() for r in records[name, framework]]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_every_tflite_artifact_runs_in_the_interpreter(converted, name, framework):
    artifacts, records = converted
    spec = get_spec(name)
    probes = spec.probe_inputs(n=4)
    root = model_dir(artifacts, name, framework)
    by_key = records_by_key(records, name, framework)
    for key in fast_matrix.converted(name, framework, "tflite"):
        r = by_key[key]
        assert r.status == "ok", r
        assert r.ops["builtin_only"], f"{r.key} needs non-builtin ops {r.ops['non_builtin_ops']}"
        nchw = any(t.layout == "NCHW" for t in r.inputs)
        out = run_tflite(root / r.path, probes, layout_nchw=nchw)
        assert out.shape == (4,) + tuple(spec.outputs[0].shape[1:]), (r.key, out.shape)
        assert np.isfinite(out.astype(np.float32)).all()


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_every_tfjs_artifact_is_complete(converted, name, framework):
    artifacts, records = converted
    root = model_dir(artifacts, name, framework)
    spec = get_spec(name)
    by_key = records_by_key(records, name, framework)
    for key in fast_matrix.converted(name, framework, "tfjs"):
        r = by_key[key]
        assert r.status == "ok", r
        info = check_tfjs_model((root / r.path).parent)
        assert {k.split(":")[0] for k in info["inputs"]} == {t.name for t in spec.inputs}
        assert [t.name for t in r.inputs] == sorted(info["inputs"])  # the record holds the real names
        assert all(t.shape[1:] == list(s.shape[1:]) for t, s in
                   zip(r.inputs, sorted(spec.inputs, key=lambda s: s.name)) if t.layout == s.layout.value)


@pytest.mark.parametrize("name", model_names())
def test_torch_route_keeps_a_checked_onnx_file_and_records_the_layout(converted, name):
    import onnx

    artifacts, records = converted
    path = model_dir(artifacts, name, "torch") / "model.onnx"
    onnx.checker.check_model(onnx.load(str(path)))
    first = records_by_key(records, name, "torch")[fast_matrix.converted(name, "torch")[0]]
    assert "onnx(" in first.route and "onnx2tf" in first.route
    if get_spec(name).torch_layout is not None:
        assert first.layout_changes == ["image: NCHW (PyTorch/ONNX) -> NHWC (onnx2tf)"]
        assert first.inputs[0].shape == [-1, 28, 28, 1] and first.inputs[0].layout == "NHWC"


def _quantization(details: dict):
    """An interpreter tensor's quantization as conversion.json records it (None for a float tensor)."""
    q = details["quantization_parameters"]
    if not len(q["scales"]):
        return None
    return {"scale": [float(s) for s in q["scales"]], "zero_point": [int(z) for z in q["zero_points"]],
            "axis": int(q["quantized_dimension"])}


def _io_as_recorded(interp) -> tuple[dict, dict]:
    """{tensor name: (dtype, quantization)} of a .tflite's inputs and outputs, read from the file with the
    interpreter's tensor API (not the signature runner conversion used)."""
    def table(details):
        return {d["name"]: (np.dtype(d["dtype"]).name, _quantization(d)) for d in details}
    return table(interp.get_input_details()), table(interp.get_output_details())


@pytest.mark.parametrize("name, framework", [p for p in fast_matrix.PAIRS if "tflite/int8" in fast_matrix.converted(*p)])
def test_int8_records_quantization_parameters(converted, name, framework):
    """For every full-int8 .tflite the fast profile produces (the pinned matrix): the dtypes and scale / zero-point
    conversion.json records for each input and output are the ones the file holds, and inside the graph the
    weights and activations are int8 with a positive scale."""
    artifacts, records = converted
    record = records_by_key(records, name, framework)["tflite/int8"]
    _, interp = load_interpreter(str(model_dir(artifacts, name, framework) / record.path))
    inputs, outputs = _io_as_recorded(interp)
    recorded = [(t.dtype, t.quantization) for t in record.inputs], [(t.dtype, t.quantization) for t in record.outputs]
    # the record names tensors by signature; the interpreter by graph tensor: match them by dtype/quantization
    # multiset and count (names differ: 'serving_default_x:0' vs 'x')
    assert sorted(map(repr, recorded[0])) == sorted(map(repr, inputs.values()))
    assert sorted(map(repr, recorded[1])) == sorted(map(repr, outputs.values()))
    # graph tensors only: kernels add unnamed / "*_scratch_buffer" int8 work buffers (LSTM, BatchMatMul) that have
    # no quantization of their own
    inside = [d for d in interp.get_tensor_details()
              if d["dtype"] == np.int8 and d["name"] and not d["name"].endswith("scratch_buffer")]
    assert inside and all(len(d["quantization_parameters"]["scales"]) and
                          (np.asarray(d["quantization_parameters"]["scales"]) > 0).all() for d in inside)


def test_int8_io_makes_the_edges_int8_with_their_scale(converted, tmp_path):
    """int8 inputs and outputs: conversion.json records the scale and zero-point the file's edge tensors hold, and
    the model fed and read through them agrees with the fp32 artifact within mnist_cnn's int8 budget on the
    verification probes, judged by the verifier's own measures and budget code."""
    from edgeproof.verify import check_budget
    from edgeproof.verify._budgets import effective, output_budget
    from edgeproof.verify._measures import compare

    artifacts = own_copy(converted[0], tmp_path, "mnist_cnn", "keras")
    root = model_dir(artifacts, "mnist_cnn", "keras")
    (record,) = convert("mnist_cnn", "keras", modes=["int8"], targets=["tflite"], int8_io=True,
                        artifacts=artifacts, representative_samples=32, progress=False)
    assert record.inputs[0].dtype == "int8" and record.outputs[0].dtype == "int8"
    _, interp = load_interpreter(str(root / record.path))
    inputs, outputs = _io_as_recorded(interp)
    assert list(inputs.values()) == [("int8", record.inputs[0].quantization)]
    assert list(outputs.values()) == [("int8", record.outputs[0].quantization)]
    assert record.inputs[0].quantization["scale"][0] > 0 and record.outputs[0].quantization["scale"][0] > 0

    spec = get_spec("mnist_cnn")
    probes = spec.probe_inputs()  # the 16 probes every verdict is measured on
    q = record.outputs[0].quantization
    int8_io = (run_tflite(root / record.path, probes).astype(np.float32) - q["zero_point"][0]) * q["scale"][0]
    fp32 = run_tflite(root / "tflite" / "fp32.tflite", probes)
    budget = spec.budget("int8")
    measured = compare(spec.decision_rule, fp32, int8_io)
    errors = check_budget("mnist_cnn/keras/tflite/int8 (int8 io)", "probabilities",
                          effective(budget, output_budget(budget, fp32, None)), measured, None, None)
    assert errors == [], [str(e) for e in errors]


def test_onnx_tf_backend_converts_the_cnn_and_keeps_nchw(converted, tmp_path):
    artifacts = own_copy(converted[0], tmp_path, "mnist_cnn", "torch")
    records = convert("mnist_cnn", "torch", targets=["tflite"], modes=["fp32"], onnx_backend=OnnxBackend.ONNX_TF,
                      artifacts=artifacts, progress=False)
    (r,) = [r for r in records if not r.variant]  # (the litert-torch route's cell beside it does not use ONNX)
    assert r.status == "ok" and "onnx-tf" in r.route
    assert r.inputs[0].layout == "NCHW" and r.inputs[0].shape[1:] == [1, 28, 28]
    out = run_tflite(model_dir(artifacts, "mnist_cnn", "torch") / r.path, get_spec("mnist_cnn").probe_inputs(n=2),
                     layout_nchw=True)
    assert out.shape == (2, 10)


def test_an_op_without_a_builtin_kernel_is_reported_unsupported(tmp_path):
    """A graph that needs a Flex (SELECT_TF_OPS) kernel is refused with the converter's reason."""
    from edgeproof._frameworks import import_tensorflow
    from edgeproof._quant import QuantConfig
    from edgeproof.convert._tflite import convert_saved_model

    tf = import_tensorflow()

    class NeedsFlex(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 3, 3), tf.float32)])
        def __call__(self, x):
            return tf.linalg.svd(x, compute_uv=False)

    tf.saved_model.save(NeedsFlex(), str(tmp_path / "sm"))
    with pytest.raises(Exception, match="(?i)svd"):
        convert_saved_model(tmp_path / "sm", QuantConfig("tflite", "fp32"))


def test_convert_records_an_unsupported_cell_and_goes_on(converted, monkeypatch, tmp_path):
    """A converter refusal becomes `unsupported: <converter's reason>` for that cell only, and a
    stale artifact of that cell from an earlier run is removed. The refusal is real: full-int8
    calibration fed data of the wrong shape."""
    from edgeproof.convert import _source_zoo as _api

    artifacts = own_copy(converted[0], tmp_path, "linreg", "keras")
    stale = model_dir(artifacts, "linreg", "keras") / "tflite" / "int8.tflite"
    assert stale.exists()  # from the fixture's conversion
    monkeypatch.setattr(_api, "calibration_inputs", lambda *a, **k: {"x": np.ones((8, 3, 3), np.float32)})
    records = convert("linreg", "keras", targets=["tflite"], artifacts=artifacts, progress=False)
    by_key = {r.key: r for r in records}
    assert by_key["tflite/int8"].status == "unsupported"
    assert "calibration data does not match the model's inputs" in by_key["tflite/int8"].reason
    assert "(3, 3)" in by_key["tflite/int8"].reason
    assert all(by_key[k].status == "ok" for k in ("tflite/fp32", "tflite/fp16", "tflite/dynamic"))
    assert not stale.exists()
    saved = json.loads((model_dir(artifacts, "linreg", "keras") / "conversion.json").read_text())
    assert {r["mode"]: r["status"] for r in saved["artifacts"] if r["target"] == "tflite"}["int8"] == "unsupported"
    assert {r["mode"]: r["status"] for r in saved["artifacts"] if r["target"] == "tfjs"}["fp32"] == "ok"  # kept


def test_a_converter_crash_is_a_reported_cell_not_a_dead_pipeline(tmp_path):
    """The worker dies mid-way (SIGSEGV-like): that job gets the crash reason, the others still run."""
    from edgeproof.convert._worker import Job, run_jobs

    tf_saved = tmp_path / "sm"
    from edgeproof._frameworks import import_tensorflow

    tf = import_tensorflow()

    class Double(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 2), tf.float32)])
        def __call__(self, x):
            return {"y": 2.0 * x}

    tf.saved_model.save(Double(), str(tf_saved))
    jobs = [Job("tflite", "fp32", str(tmp_path / "a.tflite")), Job("crash", "fp32", str(tmp_path / "b")),
            Job("tflite", "fp16", str(tmp_path / "c.tflite"))]
    results = run_jobs(tf_saved, jobs)
    assert results[0].error is None and results[2].error is None
    assert "crashed (SIGSEGV)" in results[1].error
    assert results[0].seconds > 0 and results[2].seconds > 0 and results[1].seconds is None  # each job timed alone
    assert (tmp_path / "a.tflite").stat().st_size > 0 and (tmp_path / "c.tflite").stat().st_size > 0


# -- the int8 calibration check (convert/_tflite.py::_check_calibration) ------------------------------------------

@pytest.fixture(scope="module")
def two_input_saved_model(tmp_path_factory):
    """A SavedModel taking int32 ids [N, 5] and float32 features [N, 3], like the zoo's token and image inputs."""
    from edgeproof._frameworks import import_tensorflow

    tf = import_tensorflow()

    class TwoInputs(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 5), tf.int32, name="ids"),
                                      tf.TensorSpec((None, 3), tf.float32, name="features")])
        def __call__(self, ids, features):
            return {"y": tf.reduce_sum(tf.cast(ids, tf.float32), -1, keepdims=True) + 2.0 * features}

    module = TwoInputs()
    path = tmp_path_factory.mktemp("calibration") / "sm"
    tf.saved_model.save(module, str(path), signatures=module.__call__)
    return path


def _calibration(n=8, **changes):
    rng = np.random.default_rng(0)
    data = {"ids": rng.integers(0, 50, (n, 5)).astype(np.int32), "features": rng.uniform(0, 1, (n, 3)).astype(np.float32)}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_matching_calibration_passes_the_check(two_input_saved_model):
    from edgeproof.convert._tflite import _check_calibration

    assert _check_calibration(two_input_saved_model, _calibration()) is None


@pytest.mark.parametrize("changes, shown", [
    (dict(features=None), "'ids'"),  # an input missing
    (dict(extra=np.zeros((8, 3), np.float32)), "'extra'"),  # an input the model does not take
    (dict(features=np.zeros((8, 4), np.float32)), "(4,)"),  # per-example shape 4 instead of 3
    (dict(ids=np.zeros((8, 5, 1), np.int32)), "(5, 1)"),  # an extra axis
])
def test_calibration_with_other_names_or_shapes_is_refused_before_converting(two_input_saved_model, changes, shown):
    from edgeproof.convert._tflite import _check_calibration

    with pytest.raises(ValueError, match="int8 calibration data does not match the model's inputs") as info:
        _check_calibration(two_input_saved_model, _calibration(**changes))
    assert shown in str(info.value)


@pytest.mark.parametrize("changes", [
    dict(features=np.zeros((8, 3), np.float64)),  # numpy's default float
    dict(ids=np.zeros((8, 5), np.int64)),  # numpy's default int (tokenizers that forget the cast)
])
def test_calibration_of_the_wrong_dtype_never_becomes_an_artifact(two_input_saved_model, changes):
    """Whatever catches it, a calibration set of another dtype is an error naming the dtype, not a .tflite."""
    from edgeproof._quant import QuantConfig
    from edgeproof.convert._tflite import convert_saved_model

    with pytest.raises(ValueError, match="(?i)float64|int64"):
        convert_saved_model(two_input_saved_model, QuantConfig("tflite", "int8", representative_samples=8),
                            _calibration(**changes))


@pytest.mark.parametrize("changes", [dict(features=np.zeros((8, 3), np.float64)), dict(ids=np.zeros((8, 5), np.int64))])
def test_the_calibration_check_itself_refuses_the_wrong_dtype(two_input_saved_model, changes):
    """The check names the dtype before the converter runs (it compared names and shapes only: a float64 set
    failed later inside the converter, 'Cannot set tensor: Got value of type FLOAT64')."""
    from edgeproof.convert._tflite import _check_calibration

    with pytest.raises(ValueError, match="int8 calibration data does not match the model's inputs"):
        _check_calibration(two_input_saved_model, _calibration(**changes))
