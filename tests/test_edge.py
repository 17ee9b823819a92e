"""A .tflite made by the pipeline stack runs in the runtime-only environment with the same numbers."""
import json

import numpy as np
import pytest

from edgeproof._frameworks import import_tensorflow, import_tf_keras
from edgeproof.runtime import load_interpreter

from .conftest import run_python

pytestmark = [pytest.mark.edge, pytest.mark.stack]


def test_tflite_runtime_in_edge_env_matches_ai_edge_litert(edge_python, tmp_path):
    tf, keras = import_tensorflow(), import_tf_keras()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(2)])
    path = tmp_path / "m.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    x = np.random.default_rng(3).standard_normal((1, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)

    _, interp = load_interpreter(str(path))
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    main_out = interp.get_tensor(interp.get_output_details()[0]["index"])

    code = (
        "import json, sys, numpy as np\n"
        "from edgeproof.runtime import load_interpreter\n"
        f"name, it = load_interpreter({str(path)!r})\n"
        f"it.set_tensor(it.get_input_details()[0]['index'], np.load({str(tmp_path / 'x.npy')!r}))\n"
        "it.invoke()\n"
        "print(json.dumps({'interpreter': name, 'out': it.get_tensor(it.get_output_details()[0]['index']).tolist(),"
        " 'tf_loaded': 'tensorflow' in sys.modules}))\n")
    result = run_python(code, python=edge_python)
    assert result.returncode == 0, result.stderr
    edge = json.loads(result.stdout)
    assert edge["interpreter"] == "tflite_runtime" and not edge["tf_loaded"]
    # the same .tflite in two interpreters: float32 kernels summing the same products, measured within 2.9e-6 on
    # outputs up to |20| and 8.4e-7 on outputs in [0, 1] (deploy/_selftest.py, scripts/selftest_spread.py): 1e-6
    np.testing.assert_allclose(np.array(edge["out"], dtype=np.float32), main_out, atol=1e-6)
    # Keras vs its conversion: float32 reassociation by the converter, the fp32 budget's 1e-4 scaled down 10x for a
    # model this small (one layer)
    np.testing.assert_allclose(main_out, model(x).numpy(), atol=1e-5)
