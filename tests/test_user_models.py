"""Bring your own model: third-party-style Keras, ONNX and PyTorch models, built here, go through the
whole path (convert -> verdicts against the source model -> report -> deploy bundles -> the edge
runtime). Bad input (a clear typed error with no partial output) is tests/test_user_models_bad_input.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks._user_models import (encoder_sample, encoder_weights, keras_seeded, lppool_onnx, lppool_sample,
                                     resblock_onnx, resblock_sample, resnet_block, tiny_encoder, two_input_keras,
                                     two_input_sample, wide_keras, wide_sample)
from edgeproof import cli, model_names
from edgeproof.errors import CustomLayerError, UserConversionError

pytestmark = pytest.mark.stack
REFERENCE_MODELS = ["imdb_lstm", "linreg", "mnist_cnn", "mnist_gan", "translator"]


# -- the models a user might bring are built by benchmarks/_user_models.py (shared with `python -m benchmarks.user_models`;
# its torch factories are imported above, so `--torch tests.test_user_models:NAME` finds them); these ones are broken -----

def failing_factory():
    raise RuntimeError("checkpoint server unreachable")


def not_a_module():
    return 42


def _scale_layer():
    from edgeproof._frameworks import import_tf_keras

    keras = import_tf_keras()

    class Scale(keras.layers.Layer):
        def __init__(self, factor: float = 2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    Scale.__module__ = "__main__"  # as when a training script defines it: Keras cannot import it back by itself
    return Scale


_LAZY = {}


def __getattr__(name):  # `--keras-custom tests.test_user_models:Scale` without importing TensorFlow at collection
    if name == "Scale":
        if name not in _LAZY:
            _LAZY[name] = _scale_layer()
        return _LAZY[name]
    raise AttributeError(name)


# -- fixtures: each model converted once -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("byom")


@pytest.fixture(scope="module")
def keras_two(work):
    """Keras functional model, two inputs and two outputs, labels: converted, verified, deployed (pi, web)."""
    from edgeproof.pipeline import convert_user_model
    from edgeproof.deploy import deploy

    model = two_input_keras(work / "two_input.keras")
    sample = two_input_sample(model, 48)
    np.savez(work / "two_input.npz", **sample)
    labels = sample.pop("labels")
    x = sample
    artifacts = work / "artifacts"
    result = convert_user_model(work / "two_input.keras", sample_data=work / "two_input.npz", artifacts=artifacts,
                                modes=["fp32", "int8"], representative_samples=32, progress=False)
    pi = deploy("pi", artifacts=artifacts, models=["two_input"], progress=False)
    web = deploy("web", artifacts=artifacts, models=["two_input"], progress=False)
    return model, x, labels, result, pi, web


@pytest.fixture(scope="module")
def encoder_cli(work):
    """The torch encoder through the command line: --torch module:factory --weights, int64 ids + mask, no labels."""
    x = encoder_sample(32)
    np.savez(work / "encoder.npz", **x)
    module = encoder_weights(work / "encoder.pt")  # "trained" weights, different from the factory's initialisation
    artifacts = work / "artifacts"
    code = cli.main(["convert", "--torch", "tests.test_user_models:tiny_encoder", "--weights", str(work / "encoder.pt"),
                     "--sample-data", str(work / "encoder.npz"), "--name", "encoder", "--targets", "tflite,tfjs",
                     "--modes", "fp32,int8", "--representative-samples", "32", "--artifacts", str(artifacts)])
    deployed = cli.main(["deploy", "--target", "pi", "--model", "encoder", "--artifacts", str(artifacts)])
    return module, x, artifacts, code, deployed


@pytest.fixture(scope="module")
def resnet_onnx(work):
    """The ResNet-style block exported to ONNX by the user (legacy exporter, dynamic batch), NCHW, labels."""
    from edgeproof.pipeline import convert_user_model

    block = resblock_onnx(work / "resblock.onnx")
    sample = resblock_sample(block, 40)
    np.savez(work / "resblock.npz", **sample)
    x = sample["x"]
    result = convert_user_model(work / "resblock.onnx", sample_data=work / "resblock.npz", artifacts=work / "artifacts",
                                targets=["tflite"], modes=["fp32", "dynamic"], progress=False)
    return block, x, result


# -- the whole path ---------------------------------------------------------------------------------------------

def test_keras_two_inputs_two_outputs_all_the_way_to_the_runtime(keras_two):
    from edgeproof.runtime import Model

    model, x, labels, result, pi, _ = keras_two
    assert result.root.name == "keras" and result.root.parent.name == "two_input"
    assert [t.name for t in result.spec.inputs] == ["image", "features"]
    assert [t.name for t in result.spec.outputs] == ["probs", "aux"]
    assert result.spec.metric.name == "accuracy" and result.spec.task.value == "custom"
    verdicts = {v.key.split("/", 2)[2]: v for v in result.verdicts}
    # every .tflite is proven in LiteRT.js (Chromium) too: its own verdict row beside the native one
    assert set(verdicts) == {"tflite/fp32", "tflite/int8", "tfjs/fp32", "tflite/fp32 in litertjs-wasm",
                             "tflite/int8 in litertjs-wasm"}
    for key in ("tflite/fp32", "tfjs/fp32"):
        assert verdicts[key].status.value == "pass", verdicts[key].summary()
        assert verdicts[key].artifact_metric == 100.0 and verdicts[key].test_agreement == 1.0
        assert set(verdicts[key].details["per_output"]) == {"probs", "aux"}
    assert verdicts["tflite/int8"].status.value in ("pass", "fail")  # a verdict, whatever the precision does
    for name in ("conversion.json", "parity.json", "report.md", "user_model.json", "saved_model",
                 "source_model.keras", "tflite/fp32.tflite", "tfjs/fp32/model.json"):
        assert (result.root / name).exists(), name
    assert "accuracy" in result.report.read_text()
    assert "two_input" in (result.root.parents[1] / "parity_report.md").read_text()

    bundle = pi.out / "two_input-keras-fp32"
    assert bundle in pi.bundles
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["task"] == "custom" and [t["name"] for t in manifest["outputs"]] == ["probs", "aux"]
    runtime = Model.load(bundle)
    got = runtime({"image": x["image"][:10], "features": x["features"][:10]})
    want = model.predict([x["image"][:10], x["features"][:10]], verbose=0)
    for name, ref in zip(["probs", "aux"], want):
        assert np.abs(got[name] - ref).max() <= manifest["verdict"]["budget"]["max_abs_error"]
    assert model_names() == REFERENCE_MODELS  # user models stay out of the registry


def test_keras_web_bundle_and_edgeproof_run_on_an_npz(keras_two, work):
    from edgeproof.runtime._commands import run_bundle

    _, x, _, _, pi, web = keras_two
    assert any(b.name == "two_input-keras-fp32" for b in web.bundles)
    assert (web.out / "two_input-keras-fp32" / "model.json").exists()
    np.savez(work / "one.npz", image=x["image"][:2], features=x["features"][:2])
    summary = run_bundle(str(pi.out / "two_input-keras-fp32"), str(work / "one.npz"))
    assert summary["outputs"]["probs"]["shape"] == [2, 3] and summary["outputs"]["aux"]["shape"] == [2, 2]


def test_torch_encoder_int64_ids_and_mask_through_the_cli(encoder_cli):
    from edgeproof.runtime import Model

    import torch

    module, x, artifacts, code, deployed = encoder_cli
    assert code == 0 and deployed == 0
    root = artifacts / "encoder" / "torch"
    info = json.loads((root / "user_model.json").read_text())
    assert [(t["name"], t["dtype"], t["layout"]) for t in info["inputs"]] == [
        ("input_ids", "int64", "NT"), ("attention_mask", "int64", "NT")]
    assert info["metric"] == "none" and info["onnx_backend"]["used"] == "onnx2tf"
    assert "numeric parity only: no labels" in (root / "report.md").read_text()
    parity = json.loads((root / "parity.json").read_text())
    fp32 = next(v for v in parity["artifacts"] if v["target"] == "tflite" and v["mode"] == "fp32")
    assert fp32["status"] == "pass" and fp32["details"]["parity"] == "numeric parity only: no labels"
    assert "numeric parity only: no labels" in (artifacts / "parity_report.md").read_text()
    record = next(r for r in json.loads((root / "conversion.json").read_text())["artifacts"] if r["mode"] == "fp32")
    assert record["route"].startswith("torch>onnx(dynamo, opset ") and record["route"].endswith(">onnx2tf>tflite")
    assert {t["dtype"] for t in record["inputs"]} == {"int32"}
    assert any("int64 (source model) -> int32" in c for c in record["layout_changes"])

    bundle = artifacts / "deploy" / "pi" / "encoder-torch-fp32"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {t["source_dtype"] for t in manifest["inputs"]} == {"int64"}
    assert manifest["verdict"]["basis"] == "numeric parity only: no labels"
    got = Model.load(bundle)(x)  # int64 arrays straight from the user: cast at the boundary
    with torch.no_grad():
        want = module(torch.from_numpy(x["input_ids"]), torch.from_numpy(x["attention_mask"]))
    for name in ("logits", "pooled"):
        assert np.abs(got[name] - want[name].numpy()).max() <= manifest["verdict"]["budget"]["max_abs_error"]


def test_resnet_block_nchw_onnx_becomes_nhwc_and_the_runtime_takes_nchw(resnet_onnx, work):
    import torch

    from edgeproof.runtime import Model
    from edgeproof.deploy import deploy

    block, x, result = resnet_onnx
    assert [t.name for t in result.spec.inputs] == ["input_1"]  # `input.1` renamed: onnx-tf breaks on dots
    assert result.spec.inputs[0].layout.value == "NCHW" and result.spec.inputs[0].shape == (None, 3, 16, 16)
    fp32 = next(r for r in result.records if r.mode == "fp32")
    assert fp32.inputs[0].layout == "NHWC" and fp32.inputs[0].shape == [-1, 16, 16, 3]
    assert "input_1: NCHW (source model) -> NHWC (onnx2tf)" in fp32.layout_changes
    verdicts = {v.mode: v for v in result.verdicts}
    assert verdicts["fp32"].status.value == "pass", verdicts["fp32"].summary()
    assert verdicts["dynamic"].status.value in ("pass", "fail") and verdicts["dynamic"].artifact_metric is not None
    assert result.onnx_backend == "onnx2tf"
    pi = deploy("pi", artifacts=work / "artifacts", models=["resblock"], progress=False)
    model = Model.load(pi.out / "resblock-onnx-fp32")
    with torch.no_grad():
        want = block(torch.from_numpy(x[:8])).numpy()
    assert np.abs(model(x[:8])["logits"] - want).max() <= 1e-4  # the fp32 budget (edgeproof/_spec.py DEFAULT_BUDGETS)


def test_an_op_onnx2tf_cannot_convert_falls_back_to_onnx_tf(work):
    from edgeproof.pipeline import convert_user_model

    lppool_onnx(work / "lppool.onnx")
    np.savez(work / "lppool.npz", **lppool_sample(20))
    result = convert_user_model(work / "lppool.onnx", sample_data=work / "lppool.npz", artifacts=work / "artifacts",
                                targets=["tflite"], modes=["fp32"], progress=False)
    attempts = result.info.onnx_backend["attempts"]
    assert [a["backend"] for a in attempts] == ["onnx2tf", "onnx-tf"]
    assert not attempts[0]["ok"] and "LpPool" in attempts[0]["error"]
    assert attempts[1]["ok"] and result.onnx_backend == "onnx-tf"
    conversion = json.loads((result.root / "conversion.json").read_text())
    assert conversion["onnx_backend"]["used"] == "onnx-tf"
    assert "onnx-tf" in conversion["artifacts"][0]["route"]
    assert "onnx-tf** worked" in result.report.read_text() and "LpPool" in result.report.read_text()
    (verdict,) = [v for v in result.verdicts if v.browser is None]  # the native row; LiteRT.js has its own
    assert [v.cell for v in result.verdicts if v.browser] == ["tflite/fp32 in litertjs-wasm"]
    assert verdict.status.value == "pass", verdict.summary()
    assert result.records[0].inputs[0].layout == "NCHW"  # onnx-tf keeps the ONNX layout

    # forcing the backend that cannot do it: a clear error, and the earlier good folder stays as it was
    before = sorted(p.name for p in result.root.rglob("*"))
    with pytest.raises(UserConversionError, match="onnx2tf.*LpPool"):
        convert_user_model(work / "lppool.onnx", sample_data=work / "lppool.npz", artifacts=work / "artifacts",
                           targets=["tflite"], modes=["fp32"], onnx_backend="onnx2tf", progress=False)
    assert sorted(p.name for p in result.root.rglob("*")) == before


def test_a_fixed_batch_onnx_with_an_int64_output(work):
    """An ONNX file exported with batch 1 (common from tf2onnx) whose second output is an int64 argmax:
    run in steps of its batch, the int64 output comes back as int32 at the boundary."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgeproof.pipeline import convert_user_model

    w = numpy_helper.from_array(np.random.default_rng(6).standard_normal((6, 4)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["scores"]),
         helper.make_node("ArgMax", ["scores"], ["label"], axis=1, keepdims=0)],
        "fixed_batch", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("label", TensorProto.INT64, [1])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(work / "fixed.onnx"))
    np.savez(work / "fixed.npz", x=np.random.default_rng(7).standard_normal((10, 6)).astype(np.float32))
    result = convert_user_model(work / "fixed.onnx", sample_data=work / "fixed.npz", artifacts=work / "artifacts",
                                targets=["tflite"], modes=["fp32"], progress=False)
    assert result.spec.inputs[0].shape == (1, 6)
    (record,) = result.records
    assert [t.dtype for t in record.outputs] == ["float32", "int32"]  # in the spec's order: scores, label
    (verdict,) = [v for v in result.verdicts if v.browser is None]  # the native row; LiteRT.js has its own
    assert [v.cell for v in result.verdicts if v.browser] == ["tflite/fp32 in litertjs-wasm"]
    assert verdict.status.value == "pass" and verdict.test_examples == 10, verdict.summary()
    assert verdict.details["per_output"]["label"]["max_abs_error"] == 0.0


def test_a_model_of_tens_of_megabytes(work):
    """A wide Dense stack (8.4 M parameters, ~34 MB in fp32), to fp32 and dynamic-range TFLite."""
    from edgeproof.pipeline import convert_user_model

    model = wide_keras()
    np.savez(work / "wide.npz", **wide_sample(16))
    result = convert_user_model(model, name="wide", sample_data=work / "wide.npz", artifacts=work / "artifacts",
                                targets=["tflite"], modes=["fp32", "dynamic"], progress=False)
    sizes = {r.mode: r.size_bytes for r in result.records}
    # 8.4 M float32 parameters are 33.6 MB; dynamic-range stores them as int8 (a quarter) plus scales: under a third
    assert sizes["fp32"] > 30e6 and sizes["dynamic"] < sizes["fp32"] / 3
    assert {v.mode: v.status.value for v in result.verdicts} == {"fp32": "pass", "dynamic": "pass"}, \
        [v.summary() for v in result.verdicts]


def test_custom_keras_layer_needs_registering_and_then_converts(work):
    from edgeproof.pipeline import convert_user_model

    keras = keras_seeded()
    Scale = _scale_layer()
    inp = keras.Input((4,), name="x")
    keras.Model(inp, keras.layers.Dense(2)(Scale(3.0)(inp))).save(str(work / "custom.keras"))
    np.savez(work / "custom.npz", x=np.random.default_rng(5).standard_normal((8, 4)).astype(np.float32))
    artifacts = work / "custom-artifacts"
    with pytest.raises(CustomLayerError) as err:
        convert_user_model(work / "custom.keras", sample_data=work / "custom.npz", artifacts=artifacts, progress=False)
    assert err.value.layer == "Scale"
    assert "custom_objects" in str(err.value) and "--keras-custom" in str(err.value)
    assert not artifacts.exists()
    code = cli.main(["convert", "--keras", str(work / "custom.keras"), "--keras-custom", "tests.test_user_models:Scale",
                     "--sample-data", str(work / "custom.npz"), "--targets", "tflite", "--modes", "fp32",
                     "--artifacts", str(artifacts)])
    assert code == 0
    assert json.loads((artifacts / "custom" / "keras" / "parity.json").read_text())["artifacts"][0]["status"] == "pass"


def test_edgeproof_verify_runs_a_user_models_verification_again(keras_two, encoder_cli, resnet_onnx, work, capsys):
    """`edgeproof verify --model NAME` verifies a user model again from its folder (the .keras and .onnx kept
    there, the torch factory and weights user_model.json names, the sample data it was converted with):
    parity.json is rewritten with the same verdicts. An unknown name lists reference and user models."""
    artifacts = work / "artifacts"
    folders = {"two_input": "keras", "encoder": "torch", "resblock": "onnx"}
    paths = {name: artifacts / name / source / "parity.json" for name, source in folders.items()}
    before = {name: (json.loads(p.read_text()), p.stat().st_mtime_ns) for name, p in paths.items()}
    args = [a for name in folders for a in ("--model", name)]
    code = cli.main(["verify", *args, "--targets", "tflite", "--artifacts", str(artifacts)])
    out = capsys.readouterr().out
    failed = False
    for name, path in paths.items():
        old, mtime = before[name]
        new = json.loads(path.read_text())
        assert path.stat().st_mtime_ns != mtime, f"{name}: parity.json was not rewritten"
        assert new["reference"] == old["reference"]
        assert [(v["target"], v["mode"], v["status"]) for v in new["artifacts"]] == \
            [(v["target"], v["mode"], v["status"]) for v in old["artifacts"]], name
        for a, b in zip(old["artifacts"], new["artifacts"]):
            if a["status"] != "unsupported":
                # the same artifacts and probes verified twice: float32 kernels may sum in another order between
                # runs (threads), moving an error of ~1e-6 by ulps; 1e-4 relative / 1e-7 absolute covers that
                assert b["probe"]["max_abs_error"] == pytest.approx(a["probe"]["max_abs_error"], rel=1e-4, abs=1e-7)
                assert b["artifact_metric"] == a["artifact_metric"]
        failed |= any(v["status"] == "fail" and v["target"] == "tflite" for v in new["artifacts"])
        assert f"[{name}/{folders[name]}] reference" in out
    assert code == (1 if failed else 0), out
    assert "numeric parity only: no labels" in (artifacts / "encoder" / "torch" / "report.md").read_text()
    assert "| tfjs fp32 |" in (artifacts / "encoder" / "torch" / "report.md").read_text()  # not re-run, still reported

    assert cli.main(["verify", "--model", "nope", "--artifacts", str(artifacts)]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nope'" in err and f"your own models under {artifacts}:" in err
    for name in REFERENCE_MODELS + list(folders):
        assert name in err
