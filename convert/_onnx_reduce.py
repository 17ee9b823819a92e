"""Pre-pass step `sums`: a ReduceSum (ReduceSumSquare, ReduceL2) over static dimensions written with ReduceMean times
the number of elements.

TFLite's 16x8 quantizer (int16 activations, the repair ladder's `16x8` rungs) gives SUM the same scale on its
input and its output, so every sum saturates at the largest input value: a sentence encoder's mean pooling divided
by an attention-mask count of 1.0 instead of 64, and its L2 norm summed squares the same way (minilm_imdb_sentiment:
16x8 cosine -0.10). MEAN is rescaled by every quantizer, and MEAN x n is the sum in float (the pre-pass checks it
with onnxruntime). Only float sums whose reduced dimensions are all known are rewritten; an L2 norm becomes
Sqrt(ReduceMean(x * x) x count).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._onnx_model import node_attrs, value_dims

FLOAT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64}  # TensorProto FLOAT, FLOAT16, DOUBLE


def _shapes_and_types(model) -> dict[str, tuple[tuple[Optional[int], ...], int]]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    graph = inferred.graph
    return {v.name: (value_dims(v), v.type.tensor_type.elem_type)
            for v in list(graph.input) + list(graph.value_info) + list(graph.output)}


def _reduced_axes(node, constants: dict[str, np.ndarray], rank: int) -> Optional[list[int]]:
    """The axes a reduction reduces (its `axes` input, or attribute in the older opsets), None when not static."""
    axes = constants.get(node.input[1]) if len(node.input) > 1 and node.input[1] else node_attrs(node).get("axes")
    if axes is None or not len(axes):
        return None
    return sorted(int(a) % rank for a in np.asarray(axes).reshape(-1))


SUMS = ("ReduceSum", "ReduceSumSquare", "ReduceL2")


def _as_mean(node, axes: list[int], count, opset: int) -> list:
    """The nodes computing `node` (a sum, sum of squares or L2 norm) from ReduceMean x count."""
    from onnx import helper

    stem, keepdims = node.name or node.output[0], int(node_attrs(node).get("keepdims", 1))
    source, nodes = node.input[0], []
    if node.op_type != "ReduceSum":
        nodes.append(helper.make_node("Mul", [source, source], [f"{stem}_squares"], name=f"{stem}_squares"))
        source = f"{stem}_squares"
    if opset >= 18:
        nodes.append(helper.make_node("ReduceMean", [source, node.input[1]], [f"{stem}_mean"], name=f"{stem}_mean",
                                      keepdims=keepdims))
    else:
        nodes.append(helper.make_node("ReduceMean", [source], [f"{stem}_mean"], name=f"{stem}_mean", axes=axes,
                                      keepdims=keepdims))
    total = list(node.output) if node.op_type != "ReduceL2" else [f"{stem}_total"]
    nodes.append(helper.make_node("Mul", [f"{stem}_mean", count.name], total, name=stem))
    if node.op_type == "ReduceL2":
        nodes.append(helper.make_node("Sqrt", total, list(node.output), name=f"{stem}_sqrt"))
    return nodes


def sums_as_means(model):
    """Every float ReduceSum, ReduceSumSquare and ReduceL2 over known dimensions written with ReduceMean x count;
    None when the graph has none."""
    import onnx
    from onnx import numpy_helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        return None
    info = _shapes_and_types(model)
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes, changed = [], 0
    for node in model.graph.node:
        shape, elem = info.get(node.input[0], ((), 0)) if node.op_type in SUMS else ((), 0)
        axes = _reduced_axes(node, constants, len(shape)) if shape and elem in FLOAT_TYPES else None
        sizes = [shape[a] for a in axes] if axes is not None else [None]
        if any(s is None for s in sizes):
            nodes.append(node)
            continue
        count = numpy_helper.from_array(np.asarray(np.prod(sizes), FLOAT_TYPES[elem]),
                                        f"{node.name or node.output[0]}_count")
        model.graph.initializer.append(count)
        nodes += _as_mean(node, axes, count, opset)
        changed += 1
    if not changed:
        return None
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model
