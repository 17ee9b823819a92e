"""A grouped convolution (1 < groups < channels: RegNet, ResNeXt) through onnx2tf into TF.js: TF.js has no grouped
Conv2D ("depth of input (16) must match input depth for filter 8"), so the ONNX route asks onnx2tf for one
convolution per group; the TF.js model then runs and computes what onnxruntime does."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.stack
onnx = pytest.importorskip("onnx", reason="the pipeline stack (onnx, onnx2tf, tensorflowjs) is needed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def test_a_grouped_conv_converts_to_a_tfjs_model_that_runs(tmp_path):
    from edgeproof._spec import Layout, TensorSpec
    from edgeproof.convert._onnx_prepass import run_graph
    from edgeproof.convert._onnx_backends import onnx2tf_options, onnx_to_saved_model
    from edgeproof.convert._tfjs import convert_in_process
    from edgeproof.verify._tfjs_node import TfjsNodeRunner

    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.normal(size=(8, 4, 3, 3)).astype(np.float32), "w")  # 8 in, 2 groups of 4
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], group=2, pads=[1, 1, 1, 1])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(tmp_path / "g.onnx"))
    options = onnx2tf_options([TensorSpec("x", (None, 8, 6, 6), "float32", Layout.NCHW)])
    assert options["disable_group_convolution"] is True
    onnx_to_saved_model(tmp_path / "g.onnx", tmp_path / "sm", "onnx2tf", options)
    convert_in_process(tmp_path / "sm", tmp_path / "tfjs", "fp32")
    x = rng.normal(size=(1, 8, 6, 6)).astype(np.float32)
    (expected,) = run_graph(model, {"x": x})
    with TfjsNodeRunner("wasm") as runner:
        name = runner.load(tmp_path / "tfjs" / "model.json")["inputs"][0]["name"]
        (got,) = runner.predict({name: x.transpose(0, 2, 3, 1)}).values()  # onnx2tf: NHWC at the edges
    np.testing.assert_allclose(np.asarray(got), expected.transpose(0, 2, 3, 1), atol=1e-5)
