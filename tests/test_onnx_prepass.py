"""The ONNX pre-pass on hand-built graphs: names other exporters produce made safe (the mapping kept), exact GELU
fused into one Gelu node, every step checked with onnxruntime, and a step that would change the results undone."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the pipeline stack (onnx) is needed for the ONNX pre-pass")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgeproof.convert._onnx_prepass import prepass, run_graph, sanitize_names  # noqa: E402

FEED = {"x": np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)}


def _graph(nodes, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_names_from_other_exporters_become_safe_and_the_originals_are_kept():
    model = _graph([helper.make_node("Relu", ["x"], ["relu.0/out@1"], name="Softmax@0"),
                    helper.make_node("Neg", ["relu.0/out@1"], ["图像.1"], name="/encoder/layer.0/neg"),
                    helper.make_node("Identity", ["图像.1"], ["y"], name="")])
    names = sanitize_names(model)
    for node in model.graph.node:
        assert all(c.isalnum() and c.isascii() or c == "_" for c in node.name), node.name
        assert node.name[0].isalnum()  # onnx2tf wants op names starting with a letter or digit
    assert names["Softmax_0"] == "Softmax@0" and names["encoder_layer_0_neg"] == "/encoder/layer.0/neg"
    assert [o for n in model.graph.node for o in n.output][-1] == "y"  # graph outputs keep their names
    onnx.checker.check_model(model)
    assert np.allclose(run_graph(model, FEED)[0], -np.maximum(FEED["x"], 0))


@pytest.mark.parametrize("half_first", [False, True, "inner", "folded"])
def test_exact_gelu_is_fused_into_one_node(half_first):
    model = _graph(_gelu_nodes(half_first), GELU_CONSTANTS)
    result = prepass(model, FEED)
    ops = [n.op_type for n in result.model.graph.node]
    assert ops == (["Gelu", "Mul"] if half_first == "folded" else ["Gelu"]), ops
    assert {s["step"]: s["ok"] for s in result.steps}["gelu"] is True
    from math import erf

    expected = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))(FEED["x"].astype(np.float64))
    expected *= 2 if half_first == "folded" else 1
    assert np.max(np.abs(run_graph(result.model, FEED)[0] - expected)) < 2e-6  # float32 GELU vs the exact one


def test_a_step_that_would_change_the_results_is_undone_and_recorded(monkeypatch):
    from edgeproof.convert import _onnx_prepass

    def wrong_simplify(model):  # a "simplification" that computes something else
        for node in model.graph.node:
            node.op_type = "Neg" if node.op_type == "Relu" else node.op_type
        return model

    monkeypatch.setattr(_onnx_prepass, "_simplify", wrong_simplify)
    model = _graph([helper.make_node("Relu", ["x"], ["y"], name="r")])
    result = prepass(model, FEED)
    step = next(s for s in result.steps if s["step"] == "simplify")
    assert step["ok"] is False and "moved by" in step["error"]
    assert [n.op_type for n in result.model.graph.node] == ["Relu"]
    assert "undone: simplify" in result.notes()[0]


def _gelu_nodes(half_first, x: str = "x", y: str = "y"):
    """The three orders exporters write exact GELU in: (x * 0.5) * (1 + erf) (half_first), (x * (1 + erf)) * 0.5
    (False) and x * (0.5 * (1 + erf)) ("inner": torch's dynamo exporter); "folded": x * (1 + erf), the 0.5 folded
    into the next layer by onnxsim (wav2vec2's feature extractor)."""
    nodes = [helper.make_node("Div", [x, "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"])]
    if half_first == "folded":  # onnxsim folded the 0.5 into the next layer's weights: y = 2 GELU(x)
        return nodes + [helper.make_node("Mul", [x, "a"], [y])]
    if half_first == "inner":
        return nodes + [helper.make_node("Mul", ["half", "a"], ["h"]), helper.make_node("Mul", [x, "h"], [y])]
    if half_first:
        return nodes + [helper.make_node("Mul", [x, "half"], ["h"]), helper.make_node("Mul", ["h", "a"], [y])]
    return nodes + [helper.make_node("Mul", [x, "a"], ["m"]), helper.make_node("Mul", ["m", "half"], [y])]


GELU_CONSTANTS = [("sqrt2", [np.sqrt(2.0)]), ("one", [1.0]), ("half", [0.5])]


@pytest.mark.parametrize("half_first", [False, True, "inner", "folded"])
def test_for_onnx_tf_exact_gelu_is_written_in_the_one_form_tflite_fuses(half_first):
    result = prepass(_graph(_gelu_nodes(half_first), GELU_CONSTANTS), FEED, gelu=False)
    nodes = list(result.model.graph.node)
    if half_first == "folded":  # then times 2
        assert nodes[-1].op_type == "Mul" and nodes[-1].input[0] == nodes[-2].output[0]
        nodes = nodes[:-1]
    assert [n.op_type for n in nodes] == ["Mul", "Mul", "Erf", "Add", "Mul"], [n.op_type for n in nodes]
    assert list(nodes[-1].input) == [nodes[0].output[0], nodes[3].output[0]]  # (x * 0.5) * (1 + erf(x / sqrt 2))
    assert {s["step"]: s["ok"] for s in result.steps}["gelu"] is True
    from math import erf

    expected = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))(FEED["x"].astype(np.float64))
    expected *= 2 if half_first == "folded" else 1
    assert np.max(np.abs(run_graph(result.model, FEED)[0] - expected)) < 2e-6


def test_an_opset_13_transformer_block_goes_through_onnx_tf_into_builtin_tflite_ops(tmp_path):
    """Unsqueeze-13/Squeeze-13 (axes as an input: onnx-tf 1.10 has no handler of its own) around an exact GELU in the
    form TFLite does not fuse by itself: through the pre-pass and onnx-tf, the SavedModel computes what onnxruntime
    does, and the TFLite file has the builtin GELU and no Select-only Erf."""
    pytest.importorskip("tensorflow", reason="the pipeline stack (TensorFlow, onnx-tf) is needed for onnx-tf")
    from edgeproof.convert._onnx_backends import onnx_to_saved_model

    nodes = [helper.make_node("Unsqueeze", ["x", "axes"], ["u"]), *_gelu_nodes(False, x="u", y="g"),
             helper.make_node("Squeeze", ["g", "axes"], ["q"]),
             helper.make_node("Split", ["q", "sizes"], ["s1", "s2"], axis=1),  # int64 sizes: SplitV, Select-only
             helper.make_node("Concat", ["s2", "s1"], ["y"], axis=1)]
    model = _graph(nodes, GELU_CONSTANTS, opset=13)
    model.graph.initializer.append(numpy_helper.from_array(np.asarray([1], np.int64), "axes"))
    model.graph.initializer.append(numpy_helper.from_array(np.asarray([2, 4], np.int64), "sizes"))
    passed = prepass(model, FEED, gelu=False)
    onnx.save(passed.model, str(tmp_path / "m.onnx"))
    onnx_to_saved_model(tmp_path / "m.onnx", tmp_path / "sm", "onnx-tf")
    import tensorflow as tf

    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    out = loaded.signatures["serving_default"](x=tf.constant(FEED["x"]))
    assert np.max(np.abs(next(iter(out.values())).numpy() - run_graph(model, FEED)[0])) < 1e-6
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "GELU" in ops and not any("Erf" in op or "FLEX" in op.upper() for op in ops), ops


def test_a_finfo_min_mask_fill_becomes_a_finite_one_that_computes_the_same():
    """transformers fill masked attention scores with torch.finfo(float32).min: -inf in float16 (0 x -inf = NaN in
    every fp16 artifact) and an int8 scale no kernel can take. Set to -1e4, softmax gives the same zeros."""
    masked = np.where(np.arange(6) < 4, 0.0, np.finfo(np.float32).min).astype(np.float32)
    model = _graph([helper.make_node("Add", ["x", "fill"], ["s"]), helper.make_node("Softmax", ["s"], ["y"])],
                   [("fill", masked)])
    result = prepass(model, FEED)
    fill = next(numpy_helper.to_array(i) for i in result.model.graph.initializer if i.name == "fill")
    assert fill.tolist() == [0, 0, 0, 0, -1e4, -1e4] and {s["step"]: s["ok"] for s in result.steps}["sentinels"]
    assert np.array_equal(run_graph(result.model, FEED)[0], run_graph(model, FEED)[0])
    assert np.isfinite(fill.astype(np.float16)).all() and not np.isfinite(masked.astype(np.float16)).all()


def test_a_huge_constant_that_really_matters_is_left_alone():
    """A constant at 1e30 that the outputs depend on: the step changes the results, so it is undone and recorded."""
    model = _graph([helper.make_node("Mul", ["x", "tiny"], ["s"]), helper.make_node("Relu", ["s"], ["r"]),
                    helper.make_node("Mul", ["r", "big"], ["y"])], [("big", [1e30]), ("tiny", [1e-30])])
    result = prepass(model, FEED)
    step = next(s for s in result.steps if s["step"] == "sentinels")
    assert step["ok"] is False and "moved" in step["error"], step
    assert np.allclose(run_graph(result.model, FEED)[0], np.maximum(FEED["x"], 0), rtol=1e-5)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_an_opset_20_transformer_block_is_written_down_to_opset_15_for_onnx_tf(approximate):
    """LayerNormalization (17) and Gelu (20) have no opset-15 form, and onnx's version converter has no adapter for
    Split-18 (num_outputs), so it could not take the graph down to onnx-tf's opset: the first two are written out in
    primitive operators, Split gets explicit sizes, and the graph computes the same."""
    nodes = [helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["n"], axis=-1, epsilon=1e-5),
             helper.make_node("Gelu", ["n"], ["g"], approximate=approximate),
             helper.make_node("Split", ["g"], ["s1", "s2", "s3"], axis=1, num_outputs=3),  # Split-18: no adapter
             helper.make_node("Concat", ["s3", "s1", "s2"], ["c"], axis=1),
             helper.make_node("ReduceMean", ["c", "axis1"], ["m"], keepdims=1, noop_with_empty_axes=0),
             helper.make_node("Sub", ["c", "m"], ["y"])]  # ReduceMean-18: onnx's adapter keeps noop_with_empty_axes
    model = _graph(nodes, [("scale", np.linspace(0.5, 2, 6)), ("bias", np.linspace(-1, 1, 6))], opset=20)
    model.graph.initializer.append(numpy_helper.from_array(np.asarray([1], np.int64), "axis1"))
    result = prepass(model, FEED, gelu=False)
    assert {s["step"]: s["ok"] for s in result.steps}["opset15"] is True, result.steps
    assert result.model.opset_import[0].version == 15
    assert not {n.op_type for n in result.model.graph.node} & {"LayerNormalization", "Gelu"}
    assert np.max(np.abs(run_graph(result.model, FEED)[0] - run_graph(model, FEED)[0])) < 1e-5


def test_tensor_names_from_other_exporters_start_with_a_letter_or_digit():
    """TensorFlow op names may not start with `_`: onnx-tf lost track of an input named `___1` (what `图像.1` became
    with each non-ASCII character replaced) and failed with KeyError '___1'."""
    from edgeproof.convert._sample_data import sanitize
    from edgeproof.convert._user_inputs import unique_names

    assert [sanitize(n) for n in ("图像.1", "类别/logits", "input.1", "_x", "0:0")] == \
        ["t_1", "logits", "input_1", "x", "t_0"]
    assert unique_names(["图像.1", "图表.1"]) == ["t_1", "t_1_2"]


def _pool_graph(nodes, spatial: int):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, spatial, spatial])
    outs = [helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None) for n in nodes]
    return helper.make_model(helper.make_graph(nodes, "pool", [x], outs), opset_imports=[helper.make_opsetid("", 13)])


def test_a_pooling_window_over_the_whole_input_becomes_global_pooling():
    """HF EfficientNet's AvgPool2d(1280, ceil_mode=True) on a 2 x 2 map (onnx2tf padded it to 1280 x 1280: 131 MB per
    image at 320 channels, TF.js wasm out of memory); a window that does not cover the input is left alone."""
    nodes = [helper.make_node("AveragePool", ["x"], ["avg"], kernel_shape=[320, 320], strides=[320, 320], ceil_mode=1),
             helper.make_node("MaxPool", ["x"], ["max"], kernel_shape=[5, 5], strides=[5, 5], ceil_mode=1),
             helper.make_node("AveragePool", ["x"], ["local"], kernel_shape=[2, 2], strides=[1, 1])]
    x = np.random.default_rng(3).normal(size=(4, 3, 3, 3)).astype(np.float32)
    result = prepass(_pool_graph(nodes, 3), {"x": x})
    assert {s["step"]: s["ok"] for s in result.steps}["pooling"] is True, result.steps
    assert [n.op_type for n in result.model.graph.node] == ["GlobalAveragePool", "GlobalMaxPool", "AveragePool"]
    avg, top, local = run_graph(result.model, {"x": x})
    np.testing.assert_allclose(avg, x.mean(axis=(2, 3), keepdims=True), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(top, x.max(axis=(2, 3), keepdims=True))
    assert local.shape == (4, 3, 2, 2)


def test_a_pooling_window_with_pads_or_smaller_than_its_input_is_not_made_global():
    nodes = [helper.make_node("AveragePool", ["x"], ["padded"], kernel_shape=[4, 4], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["x"], ["two"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)]
    result = prepass(_pool_graph(nodes, 4), {"x": np.ones((2, 3, 4, 4), np.float32)})
    assert {s["step"]: s["ok"] for s in result.steps}["pooling"] is None
    assert [n.op_type for n in result.model.graph.node] == ["AveragePool", "MaxPool"]


def test_a_padded_max_pool_becomes_a_reflect_pad_that_computes_the_same_for_any_input():
    """ONNX pads a max pool with -inf; onnx2tf wrote it as PadV2(-3.4e38), and int8 calibration gave that tensor a
    scale of 1.3e36 (resnet_hf: every int8 output 0, or SIGABRT). Reflecting is exact when each pad is at most
    (k - 1) / 2, checked here on inputs that are not the probes (all negative: where 0-padding would differ)."""
    nodes = [helper.make_node("MaxPool", ["x"], ["stem"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["x"], ["ceil"], kernel_shape=[5, 5], pads=[2, 1, 2, 2], ceil_mode=1),
             helper.make_node("MaxPool", ["x"], ["wide"], kernel_shape=[2, 2], pads=[1, 1, 1, 1])]
    original = _pool_graph(nodes, 7)
    rng = np.random.default_rng(5)
    result = prepass(original, {"x": rng.normal(size=(2, 3, 7, 7)).astype(np.float32)})
    assert {s["step"]: s["ok"] for s in result.steps}["maxpool_pads"] is True, result.steps
    ops = [n.op_type for n in result.model.graph.node]
    assert ops == ["Pad", "MaxPool", "Pad", "MaxPool", "MaxPool"], ops  # a pad over (k - 1) / 2 is left alone
    assert all(not any(a.name == "pads" and any(a.ints) for a in n.attribute)
               for n in result.model.graph.node[:4] if n.op_type == "MaxPool")
    for x in (-np.abs(rng.normal(size=(3, 3, 7, 7))) - 5, rng.normal(size=(1, 3, 7, 7)) * 100):
        feed = {"x": x.astype(np.float32)}
        for got, want in zip(run_graph(result.model, feed), run_graph(original, feed)):
            np.testing.assert_array_equal(got, want)

