"""Pre-pass steps on pooling.

`pooling`: a pooling window that covers its whole (static) input written as a global pooling.

Hugging Face's EfficientNet ends in `AvgPool2d(hidden_dim, ceil_mode=True)`: a 1280 x 1280 window (320 for the
small configs) over a 2 x 2 (or 7 x 7) map, one output, averaged over the cells that exist. onnx2tf writes that as
Pad to the window's size and a VALID AvgPool: [N, 2, 2, 320] padded to [N, 320, 320, 320], 131 MB per image, which
TF.js wasm ran out of memory on at batch 48 ("memory access out of bounds") and which every runtime computes for
nothing. GlobalAveragePool / GlobalMaxPool compute the same (the pre-pass checks that with onnxruntime) and every
backend has them.

`maxpool_pads`: a MaxPool with padding written as a reflect Pad and an unpadded MaxPool. ONNX pads a max pool with
-inf; onnx2tf writes that as PadV2 with -3.4e38, and full-integer calibration then gives the padded tensor a scale of
1.3e36 (ResNet's stem: every int8 output 0, or the interpreter aborts in Prepare). With each spatial pad p at most
(k - 1) / 2, every window that reaches a reflected cell also holds the cell it mirrors, so the maximum is the same
for every input, not only the probes (the pre-pass still checks it with onnxruntime).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

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


def _reflect_pads(node, shape: tuple[Optional[int], ...]) -> Optional[list[int]]:
    """The Pad `pads` (every dimension, begins then ends) that a reflect padding of `node`'s input needs, or None
    when reflecting is not exact for this pool (a pad over (k - 1) / 2, dilation, an open or too small dimension)."""
    attrs = node_attrs(node)
    pads, kernel = list(attrs.get("pads", [])), list(attrs.get("kernel_shape", []))
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    spatial = shape[2:]
    if (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad) != "NOTSET" or not any(pads):
        return None
    if len(pads) != 2 * len(kernel) or len(spatial) != len(kernel) or any(d != 1 for d in attrs.get("dilations", [1])):
        return None
    begins, ends = pads[:len(kernel)], pads[len(kernel):]
    for b, e, k, d in zip(begins, ends, kernel, spatial):
        if 2 * max(b, e) > k - 1 or d is None or d <= max(b, e):
            return None
    return [0, 0] + begins + [0, 0] + ends


def reflect_padded_max_pools(model):
    """Every padded MaxPool (one output, opset 11 or later) as Pad(reflect) + MaxPool without pads; None when the
    graph has none."""
    import onnx
    from onnx import numpy_helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    shapes = _static_shapes(model)
    nodes, changed = [], 0
    for node in model.graph.node:
        shape = shapes.get(node.input[0]) if node.op_type == "MaxPool" and node.input else None
        pads = _reflect_pads(node, shape) if shape and len(node.output) == 1 and opset >= 11 else None
        if pads is None:
            nodes.append(node)
            continue
        stem = f"{node.name or node.output[0]}_reflect"
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(pads, np.int64), f"{stem}_pads"))
        nodes.append(onnx.helper.make_node("Pad", [node.input[0], f"{stem}_pads"], [f"{stem}_padded"],
                                           name=f"{stem}_pad", mode="reflect"))
        attrs = {k: v for k, v in node_attrs(node).items() if k != "pads"}
        nodes.append(onnx.helper.make_node("MaxPool", [f"{stem}_padded"], list(node.output), name=node.name, **attrs))
        changed += 1
    if not changed:
        return None
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model
