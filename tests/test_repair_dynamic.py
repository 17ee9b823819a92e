"""The repair ladder for dynamic-range TFLite: a hybrid layer whose input has an outlier feature loses everything
else to the on-the-fly int8 activations; the attribution finds that layer, the first rung computes it in float
from its int8 weights, and the ladder stops there. A passing dynamic-range model is left alone."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.stack


def _outlier_mlp(path, outlier: float):
    """Two hybrid-sized Dense layers (>= 1024 weights: the converter quantizes them); feature 0 of the input is
    `outlier` + U(0, 1) with a tiny weight, the other 63 features N(0, 1)."""
    from edgeproof._frameworks import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(5)
    x = keras.Input((64,), name="features")
    h = keras.layers.Dense(64, activation="tanh", name="wide_in")(x)
    out = keras.layers.Dense(32, name="head")(h)
    model = keras.Model(x, out)
    kernel, bias = model.get_layer("wide_in").get_weights()
    kernel[0] *= 1e-3 / max(outlier, 1.0)  # the outlier feature contributes about as much as one other feature
    model.get_layer("wide_in").set_weights([kernel, bias])
    model.save(path)
    rng = np.random.default_rng(0)
    xs = rng.normal(0, 1, (64, 64)).astype(np.float32)
    xs[:, 0] = outlier + rng.uniform(0, 1, 64)
    return xs


def _convert(tmp_path, name: str, outlier: float):
    from edgeproof.pipeline import convert_user_model

    np.savez(tmp_path / f"{name}.npz", features=_outlier_mlp(tmp_path / f"{name}.keras", outlier))
    return convert_user_model(tmp_path / f"{name}.keras", sample_data=tmp_path / f"{name}.npz", name=name,
                              artifacts=tmp_path / "artifacts", targets=["tflite"], modes=["fp32", "dynamic"],
                              progress=False)


def _repair(tmp_path, name: str, root, cells=None):
    from edgeproof.convert import find_models
    from edgeproof.verify._repair import repair_model

    source = find_models(tmp_path / "artifacts", [name])[0].open_source()
    return {o.cell: o for o in repair_model(source, root, say=lambda *a, **k: None, cells=cells)}["tflite/dynamic"]


def test_an_outlier_input_layer_is_found_and_computed_in_float_from_its_int8_weights(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from edgeproof.convert import load_records
    from edgeproof.verify import load_verdicts

    result = _convert(tmp_path, "outliers", outlier=1000.0)
    natives = {v.cell: v for v in result.verdicts if not v.browser}
    assert natives["tflite/dynamic"].status.value == "fail", natives["tflite/dynamic"].summary()
    outcome = _repair(tmp_path, "outliers", result.root)
    assert outcome.status == "repaired" and outcome.chosen == "tflite/dynamic-mixed1", outcome.tried
    assert [t["cell"] for t in outcome.tried] == ["tflite/dynamic-mixed1"]  # stopped at the first that passes
    layers = json.loads((result.root / outcome.attribution).read_text())["layers"]
    assert len(layers) == 2 and layers[0]["source"] == "wide_in"  # the outlier's layer ranks first
    # the output layer (no layer path in the file: its weight is `tfl.pseudo_qconst`) by its op and tensor
    assert layers[1]["source"] == "FULLY_CONNECTED -> StatefulPartitionedCall:0", layers[1]
    assert layers[0]["output_error"] > 10 * layers[1]["output_error"]
    recipe = {r.key: r for r in load_records(result.root)}["tflite/dynamic-mixed1"].recipe
    assert recipe["kind"] == "dynamic-mixed" and recipe["float_layers"] == [layers[0]["tensor"]]
    verdicts = {v.cell: v for v in load_verdicts(result.root)[1] if not v.browser}
    assert verdicts["tflite/dynamic"].status.value == "fail"  # the original stays visible as failed
    assert verdicts["tflite/dynamic-mixed1"].status.value == "pass"
    # the repaired file keeps every weight int8: the floated layer reads its weight through a DEQUANTIZE
    files = {m: (result.root / "tflite" / f"{m}.tflite").stat().st_size for m in ("fp32", "dynamic", "dynamic-mixed1")}
    assert files["dynamic-mixed1"] < 0.5 * files["fp32"], files
    interpreter = Interpreter(model_path=str(result.root / "tflite" / "dynamic-mixed1.tflite"))
    ops = [o["op_name"] for o in interpreter._get_ops_details()]
    assert ops.count("DEQUANTIZE") == 1 and ops.count("FULLY_CONNECTED") == 2
    speed = outcome.speed or {}
    assert set(speed.get("median_ms", {})) == {"tflite/dynamic-mixed1", "tflite/fp32", "tflite/dynamic"}, speed
    assert speed["faster_than_fp32"] or "DEQUANTIZE" in speed["why"]


def test_a_passing_dynamic_range_model_is_left_alone_without_attribution(tmp_path):
    from edgeproof.convert import load_records

    result = _convert(tmp_path, "plain", outlier=0.0)
    assert {v.cell: v.status.value for v in result.verdicts if not v.browser}["tflite/dynamic"] == "pass"
    before = {r.key for r in load_records(result.root)}
    earlier = {"cell": "tflite/int8", "status": "not repaired", "tried": []}  # from an earlier `edgeproof repair`
    (result.root / "repair.json").write_text(json.dumps([earlier, {"cell": "tflite/dynamic", "status": "old"}]))
    outcome = _repair(tmp_path, "plain", result.root, cells=["tflite/dynamic"])
    assert outcome.status == "left alone: passes" and not outcome.tried and outcome.attribution is None
    assert {r.key for r in load_records(result.root)} == before
    # --cells tflite/dynamic: that ladder's outcome replaces its old one, the other cells' outcomes are kept
    written = json.loads((result.root / "repair.json").read_text())
    assert [(o["cell"], o["status"]) for o in written] == [("tflite/int8", "not repaired"),
                                                           ("tflite/dynamic", "left alone: passes")]


def test_a_cell_without_a_ladder_is_a_one_line_error(tmp_path, capsys):
    from edgeproof import cli

    assert cli.main(["repair", "--cells", "tflite/fp16", "--artifacts", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["edgeproof repair: error: no repair ladder for tflite/fp16: the cells with one are tflite/int8, "
                   "tflite/dynamic, tfjs/uint8"]


def test_naming_a_layer_the_dynamic_model_does_not_have_is_an_error(tmp_path):
    from edgeproof._frameworks import import_tensorflow
    from edgeproof.convert._dynamic_mixed import float_layers

    tf = import_tensorflow()
    _outlier_mlp(tmp_path / "m.keras", 0.0)
    from edgeproof._frameworks import import_tf_keras

    converter = tf.lite.TFLiteConverter.from_keras_model(import_tf_keras().models.load_model(tmp_path / "m.keras"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with pytest.raises(ValueError, match="no hybrid"):
        float_layers(converter.convert(), ["no/such/layer"])
