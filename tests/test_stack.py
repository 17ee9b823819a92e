"""The heavy stack really works on this pin set: each check takes seconds, on tiny models."""
import json
from pathlib import Path

import numpy as np
import pytest

from edgeproof._frameworks import import_tensorflow, import_tensorflowjs, import_tf_keras
from edgeproof.runtime import load_interpreter

pytestmark = pytest.mark.stack


def run_tflite(path: Path, x: np.ndarray) -> tuple[str, np.ndarray]:
    name, interp = load_interpreter(str(path))
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    interp.resize_tensor_input(inp["index"], x.shape)
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return name, interp.get_tensor(out["index"])


@pytest.fixture(scope="module")
def tiny_keras():
    keras = import_tf_keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", bias_initializer="random_normal"),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax", bias_initializer="random_normal"),
    ])
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    return model, x, model(x).numpy()


@pytest.fixture(scope="module")
def tiny_torch_onnx(tmp_path_factory):
    import onnx
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)).eval()
    x = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    program = torch.onnx.export(model, (torch.from_numpy(x),), str(path), dynamo=True, input_names=["image"], output_names=["logits"])
    assert program is not None  # the dynamo exporter returns an ONNXProgram; the legacy one returns None
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    reference = model(torch.from_numpy(x)).detach().numpy()
    ort_out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    # float32 all the way, outputs of O(1) from 144-term dot products: reassociation in another runtime moves them by
    # ~sqrt(144) * 1.2e-7 ~ 1.4e-6; 1e-5 is 7x that (a wrong weight or layout is off by O(0.1))
    np.testing.assert_allclose(ort_out, reference, atol=1e-5)
    return path, x, reference


def test_tensorflowjs_imports():
    tensorflowjs = import_tensorflowjs()
    assert tensorflowjs.__version__ == "4.22.0"


def test_tf_keras_is_keras_2():
    tf = import_tensorflow()
    keras = import_tf_keras()
    assert tf.__version__.startswith("2.19") and keras.__version__.startswith("2.19")


def test_keras_to_tflite_runs_in_ai_edge_litert(tiny_keras, tmp_path):
    tf = import_tensorflow()
    model, x, reference = tiny_keras
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    interpreter, out = run_tflite(path, x)
    assert interpreter == "ai_edge_litert"
    np.testing.assert_allclose(out, reference, atol=1e-5)


def test_keras_to_tfjs_graph_model_is_complete(tiny_keras, tmp_path):
    tf, tfjs = import_tensorflow(), import_tensorflowjs()
    model, _, _ = tiny_keras
    tf.saved_model.save(model, str(tmp_path / "saved"))
    tfjs.converters.convert_tf_saved_model(str(tmp_path / "saved"), str(tmp_path / "tfjs"))
    manifest = json.loads((tmp_path / "tfjs" / "model.json").read_text())
    assert manifest["format"] == "graph-model"
    weights = [w for group in manifest["weightsManifest"] for w in group["weights"]]
    expected = sum(int(np.prod(w["shape"])) * np.dtype(w["dtype"]).itemsize for w in weights)
    actual = sum((tmp_path / "tfjs" / p).stat().st_size for g in manifest["weightsManifest"] for p in g["paths"])
    assert actual == expected  # every shard is complete
    float_values = sum(int(np.prod(w["shape"])) for w in weights if w["dtype"] == "float32")
    assert float_values == model.count_params() == 3 * 3 * 1 * 4 + 4 + 6 * 6 * 4 * 3 + 3


def test_torch_onnx_to_tflite_through_onnx2tf(tiny_torch_onnx, tmp_path):
    import onnx2tf

    path, x, reference = tiny_torch_onnx
    onnx2tf.convert(input_onnx_file_path=str(path), output_folder_path=str(tmp_path / "tf"), non_verbose=True)
    tflite = tmp_path / "tf" / "tiny_float32.tflite"
    assert tflite.exists(), sorted(p.name for p in (tmp_path / "tf").iterdir())
    # onnx2tf turns the NCHW input into NHWC: feed the transposed probe.
    _, out = run_tflite(tflite, np.transpose(x, (0, 2, 3, 1)))
    # 1e-4: onnx2tf / onnx-tf rewrite the graph (NCHW -> NHWC transposes, fused bias) on top of the 1e-5 float32
    # reassociation bound above; a transposed or wrong weight moves the logits by O(0.1)
    np.testing.assert_allclose(out, reference, atol=1e-4)


def test_torch_onnx_to_tensorflow_through_onnx_tf_compat(tiny_torch_onnx, tmp_path):
    import onnx

    from edgeproof.convert._onnx_tf_compat import export_saved_model, prepare

    tf = import_tensorflow()
    path, x, reference = tiny_torch_onnx
    rep = prepare(onnx.load(str(path)))
    # 1e-4: see test_torch_onnx_to_tflite_through_onnx2tf
    np.testing.assert_allclose(rep.run({"image": x})["logits"], reference, atol=1e-4)
    export_saved_model(rep, str(tmp_path / "saved"))
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"))
    (tmp_path / "m.tflite").write_bytes(converter.convert())
    _, out = run_tflite(tmp_path / "m.tflite", x)  # onnx-tf keeps NCHW at the model's edge
    # 1e-4: onnx2tf / onnx-tf rewrite the graph (NCHW -> NHWC transposes, fused bias) on top of the 1e-5 float32
    # reassociation bound above; a transposed or wrong weight moves the logits by O(0.1)
    np.testing.assert_allclose(out, reference, atol=1e-4)
