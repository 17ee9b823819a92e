"""Conversion matrix on fast-trained checkpoints: every produced artifact loads and runs in its
runtime, every cell that is not produced says why. Generated from the registry."""
import json
import shutil

import numpy as np
import pytest

from edgeproof import Framework, Target, get_spec, model_names, training_order
from edgeproof.convert import OnnxBackend, convert, load_records
from edgeproof.convert._tfjs import check_tfjs_model
from edgeproof.runtime import load_interpreter
from edgeproof.train import model_dir

pytestmark = pytest.mark.stack
FRAMEWORKS = [f.value for f in Framework]


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


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_every_cell_is_produced_or_explained(converted, name, framework):
    artifacts, records = converted
    cells = records[name, framework]
    assert [r.key for r in cells] == ["tflite/fp32", "tflite/fp16", "tflite/dynamic", "tflite/int8",
                                      "tfjs/fp32", "tfjs/fp16", "tfjs/uint8"]
    on_disk = load_records(model_dir(artifacts, name, framework))
    assert [r.to_dict() for r in on_disk] == [r.to_dict() for r in cells]
    for r in cells:
        if r.status != "ok":
            assert r.reason and r.path is None, r
            continue
        assert (model_dir(artifacts, name, framework) / r.path).exists()
        assert r.size_bytes > 0 and r.inputs and r.outputs


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_every_tflite_artifact_runs_in_the_interpreter(converted, name, framework):
    artifacts, records = converted
    spec = get_spec(name)
    probes = spec.probe_inputs(n=4)
    root = model_dir(artifacts, name, framework)
    for r in records[name, framework]:
        if r.status != "ok" or r.target != Target.TFLITE.value:
            continue
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
    for r in records[name, framework]:
        if r.status == "ok" and r.target == Target.TFJS.value:
            info = check_tfjs_model((root / r.path).parent)
            spec = get_spec(name)
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
    first = next(r for r in records[name, "torch"] if r.status == "ok")
    assert "onnx(" in first.route and "onnx2tf" in first.route
    if get_spec(name).torch_layout is not None:
        assert first.layout_changes == ["image: NCHW (PyTorch/ONNX) -> NHWC (onnx2tf)"]
        assert first.inputs[0].shape == [-1, 28, 28, 1] and first.inputs[0].layout == "NHWC"


def test_int8_records_quantization_parameters(converted):
    _, records = converted
    int8 = next(r for r in records["mnist_cnn", "keras"] if r.key == "tflite/int8")
    assert int8.status == "ok"
    weights_are_int8 = int8.ops["ops"].get("QUANTIZE", 0) >= 1
    assert weights_are_int8


def test_int8_io_makes_the_edges_int8_with_their_scale(converted, tmp_path):
    artifacts = own_copy(converted[0], tmp_path, "mnist_cnn", "keras")
    (record,) = convert("mnist_cnn", "keras", modes=["int8"], targets=["tflite"], int8_io=True,
                        artifacts=artifacts, representative_samples=32, progress=False)
    assert record.inputs[0].dtype == "int8" and record.outputs[0].dtype == "int8"
    assert record.inputs[0].quantization["scale"][0] > 0
    # the artifact agrees with its float twin on probe images
    spec = get_spec("mnist_cnn")
    probes = spec.probe_inputs(n=8)
    q = record.outputs[0].quantization
    out = run_tflite(model_dir(artifacts, "mnist_cnn", "keras") / record.path, probes).astype(np.float32)
    probs = (out - q["zero_point"][0]) * q["scale"][0]
    assert np.allclose(probs.sum(-1), 1.0, atol=0.1)


def test_onnx_tf_backend_converts_the_cnn_and_keeps_nchw(converted, tmp_path):
    artifacts = own_copy(converted[0], tmp_path, "mnist_cnn", "torch")
    records = convert("mnist_cnn", "torch", targets=["tflite"], modes=["fp32"], onnx_backend=OnnxBackend.ONNX_TF,
                      artifacts=artifacts, progress=False)
    (r,) = records
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
