"""TF.js graph models run under Node (verify/_tfjs_runner.mjs) agree with TensorFlow: tiny models are
built, converted with tensorflowjs and run on the cpu and wasm backends through TfjsNodeRunner."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgeproof.verify._tfjs_node import TfjsNodeRunner, TfjsRuntimeError

pytestmark = pytest.mark.stack

BACKENDS = ["cpu", "wasm"]
V, L, D, BOS, EOS = 13, 10, 8, 2, 3  # the tiny translator: vocabulary, length, width, special ids
# TF.js (cpu: JS float32; wasm: XNNPACK) vs TensorFlow on these tiny float32 models (outputs O(1), dot products of
# <= 16 terms): only summation order differs, ~sqrt(16) * 1.2e-7 = 5e-7; 1e-5 is 20x that, and the fp32 budget's
# 1e-4 (edgeproof/_spec.py) 10x above it. A wrong weight, layout or op moves outputs by O(0.1).
ATOL = 1e-5


def _convert(tf, module, signature, tmp: Path, name: str) -> Path:
    """SavedModel with `signature` as serving_default -> TF.js graph model; returns its model.json."""
    from edgeproof._frameworks import import_tensorflowjs

    saved = tmp / f"{name}_saved_model"
    tf.saved_model.save(module, str(saved), signatures={"serving_default": signature})
    out = tmp / f"{name}_tfjs"
    import_tensorflowjs().converters.convert_tf_saved_model(str(saved), str(out), signature_def="serving_default")
    return out / "model.json"


def _dense(tf, keras, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Dense + softmax on [N, 4] float32 -> probabilities [N, 3]."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax", bias_initializer="random_normal")])
    serve = tf.function(lambda x: {"probs": model(x)}, input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    return _convert(tf, model, serve, tmp, "dense"), x, model(x).numpy()


def _greedy_whole_batch(predict, src: np.ndarray) -> np.ndarray:
    """Greedy decoding without compaction: finished rows stay in the batch and get 0."""
    tgt = np.zeros_like(src)
    tgt[:, 0] = BOS
    done = np.zeros(len(src), dtype=bool)
    for t in range(src.shape[1] - 1):
        nxt = predict({"source_ids": src, "target_ids": tgt})[:, t].argmax(-1)
        tgt[:, t + 1] = np.where(done, 0, nxt)
        done |= nxt == EOS
        if done.all():
            break
    return tgt[:, 1:]


def _translator(tf, keras, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """(source ids [N, L], target prefix [N, L]) -> logits [N, L, V]: source context plus a causal
    convolution over the prefix, so the argmax depends on both. Rows stop at different steps."""
    from edgeproof.train._evaluate import greedy_decode

    src = keras.Input((L,), dtype="int32", name="source_ids")
    tgt = keras.Input((L,), dtype="int32", name="target_ids")
    ctx = keras.layers.Dense(D)(keras.layers.Flatten()(keras.layers.Embedding(V, D)(src)))
    tok = keras.layers.Conv1D(D, 2, padding="causal")(keras.layers.Embedding(V, D)(tgt))
    h = keras.layers.Activation("tanh")(keras.layers.Add()([keras.layers.RepeatVector(L)(ctx), tok]))
    model = keras.Model([src, tgt], keras.layers.Dense(V)(h))
    rng = np.random.default_rng(1)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype(np.float32))
    bias = model.layers[-1].bias
    bias.assign(bias.numpy() + 2.0 * np.eye(V, dtype=np.float32)[EOS])  # make EOS likely enough

    spec = [tf.TensorSpec([None, L], tf.int32, name="source_ids"), tf.TensorSpec([None, L], tf.int32, name="target_ids")]

    @tf.function(input_signature=spec)
    def serve(source_ids, target_ids):
        return {"logits": model([source_ids, target_ids])}

    rows = np.random.default_rng(100)
    source = np.zeros((40, L), np.int32)
    for i in range(len(source)):
        n = rows.integers(1, L + 1)
        source[i, :n] = rows.integers(4, V, n)
    predict = lambda d: model([d["source_ids"], d["target_ids"]]).numpy()  # noqa: E731
    expected = greedy_decode(predict, source, BOS, EOS)
    np.testing.assert_array_equal(expected, _greedy_whole_batch(predict, source))
    return _convert(tf, model, serve, tmp, "translator"), source, expected


def _while_loop(tf, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A data-dependent tf.while_loop: TF.js refuses execute() and needs executeAsync()."""
    def body(i, y):
        return i + 1, y * 0.5 + 1.0

    def double_n(x):
        _, y = tf.while_loop(lambda i, y: i < tf.shape(x)[1], body, [tf.constant(0), x])
        return {"y": y}

    serve = tf.function(double_n, input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    x = np.random.default_rng(2).normal(size=(2, 3)).astype(np.float32)
    return _convert(tf, tf.Module(), serve, tmp, "loop"), x, serve(tf.constant(x))["y"].numpy()


def _linear_3d(tf, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """x [N, 5, 4] @ W [4, 3] + b: the broadcasting BatchMatMulV2 onnx2tf emits for a PyTorch Linear."""
    rng = np.random.default_rng(3)
    w, b = tf.constant(rng.normal(size=(4, 3)).astype(np.float32)), tf.constant(rng.normal(size=3).astype(np.float32))
    serve = tf.function(lambda x: {"y": tf.matmul(x, w) + b},
                        input_signature=[tf.TensorSpec([None, 5, 4], tf.float32, name="x")])
    x = rng.normal(size=(2, 5, 4)).astype(np.float32)
    return _convert(tf, tf.Module(), serve, tmp, "linear3d"), x, serve(tf.constant(x))["y"].numpy()


def _conv_rank4_bias(tf, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Conv2D + Add of a [1, 1, 1, C] constant: how onnx2tf writes a conv's bias (the converter fuses it)."""
    rng = np.random.default_rng(4)
    k = tf.constant(rng.normal(size=(3, 3, 2, 4)).astype(np.float32))
    b = tf.constant(rng.normal(size=(1, 1, 1, 4)).astype(np.float32))
    serve = tf.function(lambda x: {"y": tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME") + b)},
                        input_signature=[tf.TensorSpec([None, 6, 6, 2], tf.float32, name="x")])
    x = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    return _convert(tf, tf.Module(), serve, tmp, "conv4"), x, serve(tf.constant(x))["y"].numpy()


def _conv_scalar_bias(tf, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Conv2D + a scalar constant (MobileNetV3 through tf2onnx and onnx2tf): fused with a rank-0 "bias"."""
    rng = np.random.default_rng(8)
    k = tf.constant(rng.normal(size=(3, 3, 2, 4)).astype(np.float32))
    serve = tf.function(lambda x: {"y": tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME") + tf.constant(0.5))},
                        input_signature=[tf.TensorSpec([None, 6, 6, 2], tf.float32, name="x")])
    x = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    return _convert(tf, tf.Module(), serve, tmp, "conv0"), x, serve(tf.constant(x))["y"].numpy()


def _conv_plus_tensor(tf, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """conv(x) + upsample(conv(pool(x))), an FPN's merge: the converter fuses the Add into the conv as a "bias"."""
    rng = np.random.default_rng(5)
    k1, k2 = (tf.constant(rng.normal(size=(3, 3, 2, 4)).astype(np.float32)) for _ in range(2))

    def merge(x):
        coarse = tf.nn.conv2d(tf.nn.avg_pool2d(x, 2, 2, "VALID"), k2, 1, "SAME")
        return {"y": tf.nn.relu(tf.nn.conv2d(x, k1, 1, "SAME") + tf.image.resize(coarse, [6, 6], "nearest"))}

    serve = tf.function(merge, input_signature=[tf.TensorSpec([None, 6, 6, 2], tf.float32, name="x")])
    x = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    return _convert(tf, tf.Module(), serve, tmp, "fpn"), x, serve(tf.constant(x))["y"].numpy()


def _loop_bias_sum(tf, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A while loop whose step adds two captured biases (an RNN cell's input and recurrent bias): grappler sums them
    with `AddN(b1, b2, ^loop_body_control)` (torch's GRU through onnx2tf)."""
    rng = np.random.default_rng(9)
    b1, b2 = (tf.constant(rng.normal(size=4).astype(np.float32)) for _ in range(2))
    w = tf.constant(rng.normal(size=(4, 4)).astype(np.float32) * 0.5)

    def steps(x):
        body = lambda i, y: (i + 1, tf.tanh(tf.matmul(y, w) + b1 + b2))  # noqa: E731
        return {"y": tf.while_loop(lambda i, y: i < tf.shape(x)[1], body, [tf.constant(0), x])[1]}

    serve = tf.function(steps, input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    x = rng.normal(size=(3, 4)).astype(np.float32)
    return _convert(tf, tf.Module(), serve, tmp, "loopsum"), x, serve(tf.constant(x))["y"].numpy()


def _exact_gelu(tf, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """tf.nn.gelu(approximate=False) (onnx2tf's Gelu), which TensorFlow writes with Erfc: through convert_in_process."""
    from edgeproof.convert._tfjs import convert_in_process

    serve = tf.function(lambda x: {"y": tf.nn.gelu(x * 3.0, approximate=False)},
                        input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    tf.saved_model.save(tf.Module(), str(tmp / "gelu_saved_model"), signatures={"serving_default": serve})
    convert_in_process(tmp / "gelu_saved_model", tmp / "gelu_tfjs", "fp32")
    x = np.random.default_rng(6).normal(size=(3, 8)).astype(np.float32)
    return tmp / "gelu_tfjs" / "model.json", x, serve(tf.constant(x))["y"].numpy()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray, np.ndarray]]:
    """name -> (model.json, input, TensorFlow's answer) for the three tiny models."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # keep grappler away from oneDNN-only fused ops
    from edgeproof._frameworks import import_tensorflow, import_tf_keras

    tf, keras = import_tensorflow(), import_tf_keras()
    keras.utils.set_random_seed(0)
    tmp = tmp_path_factory.mktemp("tfjs-node")
    return {"dense": _dense(tf, keras, tmp), "translator": _translator(tf, keras, tmp), "loop": _while_loop(tf, tmp),
            "linear3d": _linear_3d(tf, tmp), "conv4": _conv_rank4_bias(tf, tmp),
            "fpn": _conv_plus_tensor(tf, tmp), "gelu": _exact_gelu(tf, tmp),
            "conv0": _conv_scalar_bias(tf, tmp), "loopsum": _loop_bias_sum(tf, tmp)}


@pytest.fixture(scope="module", params=BACKENDS)
def runner(request):
    with TfjsNodeRunner(request.param) as r:
        yield r


def _names(info: dict, prefix: str) -> str:
    (name,) = [m["name"] for m in info["inputs"] + info["outputs"] if m["name"].startswith(prefix)]
    return name


def test_dense_predict_matches_tensorflow(runner, models):
    path, x, expected = models["dense"]
    info = runner.load(path)
    assert info["backend"] == runner.backend
    assert [(m["shape"], m["dtype"]) for m in info["inputs"]] == [([-1, 4], "float32")]
    (output,) = info["outputs"]
    before = runner.memory()["num_tensors"]
    got = runner.predict({info["inputs"][0]["name"]: x.astype(np.float64)})  # float64 goes as float32
    assert list(got) == [output["name"]] and got[output["name"]].dtype == np.float32
    np.testing.assert_allclose(got[output["name"]], expected, atol=ATOL)
    assert runner.execution == "execute"
    assert runner.memory()["num_tensors"] == before, "predict leaked tensors"


def test_greedy_matches_python_greedy_decode(runner, models):
    path, source, expected = models["translator"]
    finished = (expected == EOS).any(axis=1)
    stops = {int(np.argmax(row == EOS)) for row in expected[finished]}
    assert len(stops) >= 3 and 0 < finished.sum() < len(expected), "the tiny translator no longer exercises compaction"
    info = runner.load(path)
    names = dict(source_name=_names(info, "source_ids"), target_name=_names(info, "target_ids"),
                 output_name=info["outputs"][0]["name"], bos=BOS, eos=EOS)
    before = runner.memory()["num_tensors"]
    for batch_size in (16, 64):  # 16: three chunks, the last one partial
        got = runner.greedy(source.astype(np.int64), batch_size=batch_size, **names)
        assert got.dtype == np.int32 and got.shape == (len(source), L - 1)
        np.testing.assert_array_equal(got, expected)
    # long inputs go as several requests (each under the timeout), with the same result
    requests = []
    send = runner._request
    runner._request = lambda cmd, **kw: (requests.append(cmd), send(cmd, **kw))[1]
    try:
        got = runner.greedy(source, batch_size=8, **names)
    finally:
        del runner._request
    np.testing.assert_array_equal(got, expected)
    chunk = 8 * runner.GREEDY_BATCHES_PER_REQUEST
    assert requests.count("greedy") == -(-len(source) // chunk) > 1
    # every row ends: decoding stops early, before max_len
    np.testing.assert_array_equal(runner.greedy(source[finished], **names), expected[finished])
    assert runner.memory()["num_tensors"] == before, "greedy leaked tensors"


def test_control_flow_model_uses_execute_async(runner, models):
    path, x, expected = models["loop"]
    info = runner.load(path)
    name = info["inputs"][0]["name"]
    for _ in range(2):  # the mode is picked once, then reused
        (got,) = runner.predict({name: x}).values()
        np.testing.assert_allclose(got, expected, atol=ATOL)
        assert runner.execution == "executeAsync"
    timing = runner.time({name: x}, warmup=1, repeats=3)
    assert len(timing["times_ms"]) == 3 and timing["median_ms"] > 0 and timing["first_ms"] > 0


def test_bad_inputs_raise_and_runner_survives(runner, models):
    path, x, expected = models["dense"]
    info = runner.load(path)
    name = info["inputs"][0]["name"]
    with pytest.raises(TfjsRuntimeError, match=rf"unknown input.*wrong_name.*model inputs: {name}"):
        runner.predict({"wrong_name": x})
    with pytest.raises(TfjsRuntimeError, match=r"shape \[5,3\] does not match the model's \[-1,4\]"):
        runner.predict({name: x[:, :3]})
    with pytest.raises(TfjsRuntimeError, match="greedy: source_name"):
        runner.greedy(np.zeros((1, 4), np.int32), source_name="nope", target_name=name, output_name="probs", bos=BOS, eos=EOS)
    (got,) = runner.predict({name: x}).values()
    np.testing.assert_allclose(got, expected, atol=ATOL)


def test_missing_or_corrupt_model_names_the_file(runner, models, tmp_path):
    missing = tmp_path / "absent" / "model.json"
    with pytest.raises(TfjsRuntimeError, match=rf"{missing}.*(ENOENT|no such)"):  # checked in Python first now
        runner.load(missing)
    corrupt = tmp_path / "model.json"
    corrupt.write_text('{"format": "graph-model", "modelTop')
    with pytest.raises(TfjsRuntimeError, match=rf"{corrupt} is not valid JSON .*; convert the model again"):
        runner.load(corrupt)
    with pytest.raises(TfjsRuntimeError, match="no model loaded"):
        runner.predict({"x": np.zeros((1, 4), np.float32)})
    assert runner.load(models["dense"][0])["backend"] == runner.backend


def test_dead_runner_reports_stderr(models):
    runner = TfjsNodeRunner("cpu")
    try:
        runner.load(models["dense"][0])
        runner._proc.kill()
        runner._proc.wait()
        with pytest.raises(TfjsRuntimeError, match=r"(?s)exited with code -9.*stderr tail:.*loaded"):
            runner.predict({"x": np.zeros((1, 4), np.float32)})
    finally:
        runner.close()


def test_missing_node_names_the_fix():
    with pytest.raises(TfjsRuntimeError, match="scripts/setup.sh web"):
        TfjsNodeRunner("cpu", node="no-such-node-binary")


def test_weight_batch_matmuls_become_2d_matmuls_with_the_same_outputs(runner, models):
    """convert/_tfjs.py rewrites BatchMatMulV2(x, W) to Reshape-MatMul-Reshape (8x faster on wasm)."""
    import json
    import shutil

    from edgeproof.convert._tfjs import check_tfjs_model, flatten_weight_batch_matmuls

    path, x, expected = models["linear3d"]
    folder = path.parent.with_name(f"linear3d_flat_{runner.backend}")
    shutil.copytree(path.parent, folder, dirs_exist_ok=True)
    assert flatten_weight_batch_matmuls(folder / "model.json"), "the converter no longer emits the pattern"
    check_tfjs_model(folder)
    ops = [n["op"] for n in json.loads((folder / "model.json").read_text())["modelTopology"]["node"]]
    assert "BatchMatMulV2" not in ops and "MatMul" in ops
    info = runner.load(folder / "model.json")
    name = info["inputs"][0]["name"]
    for batch in (x, np.concatenate([x, x, x])):  # the batch stays dynamic
        (got,) = runner.predict({name: batch}).values()
        np.testing.assert_allclose(got, np.concatenate([expected] * (len(batch) // len(x))), atol=ATOL)


def _refused_then_fixed(runner, models, key: str, fix, refusal: str = "rank-1 bias", backends=("wasm",)) -> Path:
    """The converter's model `key` is refused by TF.js on `backends` with `refusal` (the fused-bias ones: wasm only,
    cpu takes them); a copy mended by `fix` (which must find something to mend) runs with TensorFlow's outputs.
    Returns the mended model.json."""
    import shutil

    from edgeproof.convert._tfjs import check_tfjs_model

    path, x, expected = models[key]
    folder = path.parent.with_name(f"{key}_fixed_{runner.backend}")
    shutil.copytree(path.parent, folder, dirs_exist_ok=True)
    name = runner.load(path)["inputs"][0]["name"]
    if runner.backend in backends:  # the converter still writes the failing form
        with pytest.raises(TfjsRuntimeError, match=refusal):
            runner.predict({name: x})
    assert fix(folder / "model.json"), f"{fix.__name__}: the converter no longer writes the pattern"
    check_tfjs_model(folder)
    runner.load(folder / "model.json")
    (got,) = runner.predict({name: x}).values()
    np.testing.assert_allclose(got, expected, atol=ATOL)
    return folder / "model.json"


def test_a_fused_conv_with_a_rank_4_bias_gets_it_as_rank_1_and_runs(runner, models):
    """TF.js wasm refuses `_FusedConv2D` with a [1, 1, 1, C] bias ("only supports rank-1 bias"); convert/_tfjs.py declares
    that weight as [C] (the same bytes), and the model runs with TensorFlow's outputs."""
    from edgeproof.convert._tfjs import flatten_per_channel_conv_biases

    _refused_then_fixed(runner, models, "conv4", flatten_per_channel_conv_biases)


def test_a_conv_fused_with_a_computed_addend_is_split_and_runs(runner, models):
    """The converter fuses conv(x) + upsample(y) into one `_FusedConv2D` whose "bias" is a [N, H, W, C] tensor; TF.js
    wasm refuses it. convert/_tfjs.py splits it back into Conv2D + AddV2 + the fused activation."""
    import json

    from edgeproof.convert._tfjs import unfuse_tensor_bias_convs

    fixed = _refused_then_fixed(runner, models, "fpn", unfuse_tensor_bias_convs)
    ops = [n["op"] for n in json.loads(fixed.read_text())["modelTopology"]["node"]]
    assert "Conv2D" in ops and "AddV2" in ops


def test_a_conv_fused_with_a_scalar_bias_is_split_and_runs(runner, models):
    """A scalar constant added to a conv is fused as a rank-0 "bias", which TF.js wasm refuses; it is split back."""
    from edgeproof.convert._tfjs import unfuse_tensor_bias_convs

    _refused_then_fixed(runner, models, "conv0", unfuse_tensor_bias_convs)


def test_a_control_input_of_addn_in_a_loop_is_dropped_and_runs(runner, models):
    """TF.js counts `^loop_body_control` as a third addend of the loop step's AddN and refuses the sum ("must have the
    same dtype") on every backend; convert/_tfjs.py drops control inputs of variadic ops."""
    from edgeproof.convert._tfjs import drop_variadic_control_inputs

    _refused_then_fixed(runner, models, "loopsum", drop_variadic_control_inputs, "same dtype", BACKENDS)


def test_exact_gelu_converts_with_erf_in_place_of_erfc_and_runs(runner, models):
    """TF.js has no Erfc; convert/_tfjs.py lets the converter through and writes Erfc(x) as OnesLike(x) - Erf(x)."""
    import json

    path, x, expected = models["gelu"]
    nodes = json.loads(path.read_text())["modelTopology"]["node"]
    assert "Erfc" not in {n["op"] for n in nodes} and "Erf" in {n["op"] for n in nodes}
    name = runner.load(path)["inputs"][0]["name"]
    (got,) = runner.predict({name: x}).values()
    np.testing.assert_allclose(got, expected, atol=ATOL)
