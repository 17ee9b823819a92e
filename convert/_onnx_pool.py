"""Pre-pass step `pooling`: a pooling window that covers its whole (static) input written as a global pooling.

Hugging Face's EfficientNet ends in `AvgPool2d(hidden_dim, ceil_mode=True)`: a 1280 x 1280 window (320 for the
small configs) over a 2 x 2 (or 7 x 7) map, one output, averaged over the cells that exist. onnx2tf writes that as
Pad to the window's size and a VALID AvgPool: [N, 2, 2, 320] padded to [N, 320, 320, 320], 131 MB per image, which
TF.js wasm ran out of memory on at batch 48 ("memory access out of bounds") and which every runtime computes for
nothing. GlobalAveragePool / GlobalMaxPool compute the same (the pre-pass checks that with onnxruntime) and every
backend has them.
"""
from __future__ import annotations

import math
from typing import Optional

from ._onnx_model import node_attrs, value_dims

GLOBAL = {"AveragePool": "GlobalAveragePool", "MaxPool": "GlobalMaxPool"}


def _static_shapes(model) -> dict[str, tuple[Optional[int], ...]]:
    """Value name -> its dimensions (None where open), from shape inference's value_info and the graph's inputs."""
    graph = model.graph
    return {info.name: value_dims(info) for info in list(graph.input) + list(graph.value_info) + list(graph.output)}


def _covers_whole_input(node, shape: tuple[Optional[int], ...]) -> bool:
    """The one window of `node` starts at 0 and reaches past every spatial dimension: one output per channel."""
    attrs = node_attrs(node)
    spatial = shape[2:]
    kernel = list(attrs.get("kernel_shape", []))
    if len(kernel) != len(spatial) or not spatial or any(d is None for d in spatial):
        return False
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    if (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad) not in ("NOTSET", "VALID"):
        return False
    if any(attrs.get("pads", [0])) or any(d != 1 for d in attrs.get("dilations", [1])):
        return False
    strides = list(attrs.get("strides", [1] * len(kernel)))
    rounding = math.ceil if attrs.get("ceil_mode", 0) else math.floor
    return all(k >= d and rounding((d - k) / s) + 1 == 1 for k, d, s in zip(kernel, spatial, strides))


def global_pooling(model):
    """Every whole-input AveragePool/MaxPool as its global form; None when the graph has none."""
    import onnx

    shapes = _static_shapes(model)
    changed = 0
    for i, node in enumerate(model.graph.node):
        shape = shapes.get(node.input[0]) if node.input else None
        if node.op_type not in GLOBAL or not shape or len(node.output) != 1 or not _covers_whole_input(node, shape):
            continue
        model.graph.node[i].CopyFrom(onnx.helper.make_node(GLOBAL[node.op_type], [node.input[0]], list(node.output),
                                                           name=node.name))
        changed += 1
    return model if changed else None
