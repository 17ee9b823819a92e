"""The TF.js conversion strips debug ops (Assert, CheckNumerics): they only check, compute nothing, and TF.js has
no kernel for them. onnx-tf writes Asserts into every transformer it converts (its Gather/Reshape handlers), and the
converter refused those SavedModels with "Unsupported Ops in the model before optimization Assert"."""
from __future__ import annotations

import json

import pytest

tf = pytest.importorskip("tensorflow", reason="the pipeline stack (TensorFlow, tensorflowjs) is needed")


def test_a_saved_model_with_an_assert_converts_to_tfjs_without_it(tmp_path):
    from edgeproof.convert._tfjs import convert_in_process

    class Checked(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(x)), [x])]):
                return {"y": tf.identity(x * 2.0 + 1.0)}

    module = Checked()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.__call__})
    assert "Assert" in {n.op for f in tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
                        .graph.as_graph_def().library.function for n in f.node_def}  # the op is really there
    convert_in_process(tmp_path / "sm", tmp_path / "tfjs", "fp32")
    graph = json.loads((tmp_path / "tfjs" / "model.json").read_text())["modelTopology"]
    ops = {n["op"] for n in graph["node"]} | {n["op"] for f in graph.get("library", {}).get("function", [])
                                             for n in f.get("nodeDef", [])}
    assert "Assert" not in ops and ops & {"Mul", "AddV2", "_FusedMatMul", "Identity"}, ops
