"""A Keras GRU with its state in and out (corpus: keras_gru_stateful): the TFLite converter writes the GRU as a WHILE
loop over tensor lists, which full-integer quantization cannot lower ("Lowering tensor list ops is failed"). The
batch-1 retry exports the model with GRU and SimpleRNN layers unrolled (a clone, the same weights), and the int8
TFLite passes the gate."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.stack

STEPS, WIDTH, UNITS, ROWS = 6, 5, 8, 16


def _gru(keras, steps=STEPS):
    tokens = keras.Input((steps, WIDTH), name="x")
    state = keras.Input((UNITS,), name="state")
    seq, last = keras.layers.GRU(UNITS, return_sequences=True, return_state=True)(tokens, initial_state=state)
    return keras.Model([tokens, state], [keras.layers.Dense(3, name="scores")(seq[:, -1]), last])


@pytest.fixture(scope="module")
def keras():
    from edgeproof._frameworks import import_tf_keras

    return import_tf_keras()


def test_the_unrolled_clone_computes_what_the_model_computes(keras):
    from edgeproof.convert._keras_model import unrolled_rnn_clone

    keras.utils.set_random_seed(0)
    model = _gru(keras)
    clone = unrolled_rnn_clone(model)
    assert clone is not None and [l.unroll for l in clone.layers if isinstance(l, keras.layers.GRU)] == [True]
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(4, STEPS, WIDTH)).astype(np.float32), rng.normal(size=(4, UNITS)).astype(np.float32)]
    for a, b in zip(model(x), clone(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert unrolled_rnn_clone(_gru(keras, steps=None)) is None  # an open time dimension cannot be unrolled
    assert unrolled_rnn_clone(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])) is None  # no loop


def test_a_keras_gru_with_state_gets_a_full_integer_tflite(keras, tmp_path):
    from edgeproof import convert_user_model

    keras.utils.set_random_seed(1)
    model = _gru(keras)
    model.save(tmp_path / "gru.keras")
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "gru.npz", x=rng.normal(size=(ROWS, STEPS, WIDTH)).astype(np.float32),
             state=(rng.normal(size=(ROWS, UNITS)) * 0.5).astype(np.float32))
    result = convert_user_model(tmp_path / "gru.keras", sample_data=tmp_path / "gru.npz", artifacts=tmp_path / "art",
                                targets=["tflite"], modes=["int8"], representative_samples=ROWS, progress=False)
    (verdict,) = [v for v in result.verdicts if v.browser is None and v.key.endswith("tflite/int8")]
    assert verdict.status == "pass", verdict
    record = next(r for r in result.records if r.key.endswith("tflite/int8"))
    assert any("batch-1 export" in n for n in record.notes), record.notes
