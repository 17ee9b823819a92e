"""The repair ladder and attribution on a real (small) Keras CNN: every 8-bit artifact gets per-layer
attribution; a full-int8 artifact that breaks its budget gets candidates proven by the same gate until one
passes, which becomes its own cell with its recipe, while the original stays failed; one that passes is left
alone."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgeproof import ParityBudget

pytestmark = pytest.mark.stack


def _small_cnn(path):
    from edgeproof._frameworks import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(3)
    x = keras.Input((12, 12, 1), name="image")
    # named layers: Keras numbers unnamed ones per process (conv2d_12 after other tests built models)
    h = keras.layers.Conv2D(8, 3, activation="relu", name="conv_a")(x)
    h = keras.layers.Conv2D(8, 3, activation="relu", name="conv_b")(h)
    out = keras.layers.Dense(4, activation="softmax", name="probs")(keras.layers.Flatten()(h))
    model = keras.Model(x, out)
    model.save(path)
    xs = np.random.default_rng(0).uniform(0, 1, (200, 12, 12, 1)).astype(np.float32)
    return xs, model.predict(xs, verbose=0).argmax(-1)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    work = tmp_path_factory.mktemp("repair")
    xs, labels = _small_cnn(work / "small.keras")
    np.savez(work / "small.npz", image=xs, labels=labels)
    return work


def _convert(small, name, budgets=None):
    from edgeproof.pipeline import convert_user_model

    return convert_user_model(small / "small.keras", sample_data=small / "small.npz", name=name,
                              artifacts=small / "artifacts", targets=["tflite"], modes=["fp32", "int8"],
                              budgets=budgets, progress=False)


def test_a_failing_int8_climbs_the_ladder_and_stops_at_the_first_passing_recipe(small):
    from edgeproof.convert import find_models, load_records
    from edgeproof.verify import load_verdicts
    from edgeproof.verify._repair import repair_model

    # Measured on this model: plain and better-calibrated full int8 miss the outputs by 2.5e-3, int16
    # activations (16x8) by 6.8e-4: an absolute 1e-3 budget separates them (the metric budget is left wide).
    tight = ParityBudget(max_abs_error=1e-3, min_cosine=0.99, max_metric_drop=100.0, min_top1_agreement=0.0,
                         scaled=False)
    result = _convert(small, "tight", {"int8": tight})
    assert {v.cell: v.status.value for v in result.verdicts}["tflite/int8"] == "fail"
    source = find_models(small / "artifacts", ["tight"])[0].open_source()
    (outcome,) = [o for o in repair_model(source, result.root, say=lambda *a, **k: None) if o.cell == "tflite/int8"]
    assert [t["cell"] for t in outcome.tried] == ["tflite/int8-calib", "tflite/int8-16x8"]  # stopped at 16x8
    assert outcome.tried[0]["verdict"].startswith("fail") and outcome.tried[1]["verdict"] == "pass"
    assert outcome.status == "repaired" and outcome.chosen == "tflite/int8-16x8"
    records = {r.key: r for r in load_records(result.root)}
    assert records["tflite/int8-16x8"].recipe == {"kind": "16x8"}
    verdicts = {v.cell: v for v in load_verdicts(result.root)[1]}
    assert verdicts["tflite/int8"].status.value == "fail"  # the original cell stays visible as failed
    assert verdicts["tflite/int8-16x8"].status.value == "pass" and verdicts["tflite/int8-16x8"].recipe
    # the chosen .tflite gets its LiteRT.js row (deploy --target web ships a .tflite only on a passing one);
    # the failing candidate gets none: a browser row costs a Chromium run and proves nothing the gate needs
    row = verdicts["tflite/int8-16x8 in litertjs-wasm"]
    assert row.status.value in ("pass", "fail", "unsupported") and (row.passed or row.reason or row.failures)
    print(f"16x8 in LiteRT.js: {row.summary()}")
    assert outcome.browsers == {"litertjs-wasm": row.summary()}
    assert "tflite/int8-calib in litertjs-wasm" not in verdicts
    assert "In the browser: litertjs-wasm: " in (result.root / "report.md").read_text()
    attribution = json.loads((result.root / outcome.attribution).read_text())
    assert {l["source"] for l in attribution["layers"]} >= {"conv_a", "conv_b", "probs"}
    assert attribution["split"]["added_by_quantization"] > attribution["split"]["fp32_conversion"]


def test_an_int8_that_passes_is_left_alone_with_its_attribution(small):
    from edgeproof.convert import find_models, load_records
    from edgeproof.verify._repair import repair_model

    result = _convert(small, "plain")
    assert {v.cell: v.status.value for v in result.verdicts}["tflite/int8"] == "pass"
    before = {r.key for r in load_records(result.root)}
    source = find_models(small / "artifacts", ["plain"])[0].open_source()
    (outcome,) = [o for o in repair_model(source, result.root, say=lambda *a, **k: None) if o.cell == "tflite/int8"]
    assert outcome.status == "left alone: passes" and not outcome.tried
    assert {r.key for r in load_records(result.root)} == before  # no variant was made
    assert (result.root / outcome.attribution).is_file()
