"""A graph at ONNX opset 16+ brought down to opset 15 for onnx-tf (the last opset it knows). onnx's version
converter cannot take operators that have no form at 15; the common ones are written out in primitive operators
first: LayerNormalization (opset 17: every transformer the torch exporter writes at 17+) and Gelu (opset 20:
the dynamo exporter's GELU). Used by the ONNX pre-pass as one checked step, on the onnx-tf graph only."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ._onnx_model import node_attrs

ONNX_TF_OPSET = 15
SQRT2 = float(np.sqrt(2.0))


class _Writer:
    """Nodes and scalar constants added to a graph, named from the node they replace."""

    def __init__(self, graph, opset: int, base: str):
        self.graph, self.opset, self.base, self.nodes, self.k = graph, opset, base, [], 0

    def const(self, value: Any, dtype=np.float32) -> str:
        from onnx import numpy_helper

        self.k += 1
        name = f"{self.base}_c{self.k}"
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], output: Optional[str] = None, **attrs) -> str:
        from onnx import helper

        self.k += 1
        output = output or f"{self.base}_t{self.k}"
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=f"{self.base}_{op_type}_{self.k}", **attrs))
        return output

    def mean(self, x: str, axes: list[int]) -> str:
        if self.opset >= 18:  # ReduceMean-18 takes its axes as an input
            return self.op("ReduceMean", [x, self.const(axes, np.int64)], keepdims=1)
        return self.op("ReduceMean", [x], axes=axes, keepdims=1)


def _layer_norm(w: _Writer, node, ranks: dict[str, int]) -> None:
    attrs = node_attrs(node)
    axis, eps = int(attrs.get("axis", -1)), float(attrs.get("epsilon", 1e-5))
    if axis >= 0:
        rank = ranks.get(node.input[0])
        if rank is None:
            raise ValueError(f"LayerNormalization {node.name!r}: axis {axis} on an input of unknown rank")
        axis -= rank
    axes = list(range(axis, 0))
    x = node.input[0]
    centred = w.op("Sub", [x, w.mean(x, axes)])
    variance = w.mean(w.op("Mul", [centred, centred]), axes)
    normed = w.op("Div", [centred, w.op("Sqrt", [w.op("Add", [variance, w.const(eps)])])])
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    scaled = w.op("Mul", [normed, node.input[1]], None if bias else node.output[0])
    if bias:
        w.op("Add", [scaled, bias], node.output[0])
    if len([o for o in node.output if o]) > 1:
        raise ValueError(f"LayerNormalization {node.name!r}: its mean/inverse-std outputs are used")


def _gelu(w: _Writer, node, ranks: dict[str, int]) -> None:
    x, approximate = node.input[0], node_attrs(node).get("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    half = w.op("Mul", [x, w.const(0.5)])
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = w.op("Mul", [w.op("Mul", [x, x]), x])
        inner = w.op("Mul", [w.op("Add", [x, w.op("Mul", [cube, w.const(0.044715)])]),
                             w.const(float(np.sqrt(2.0 / np.pi)))])
        w.op("Mul", [half, w.op("Add", [w.op("Tanh", [inner]), w.const(1.0)])], node.output[0])
        return
    erf = w.op("Erf", [w.op("Mul", [x, w.const(1.0 / SQRT2)])])  # the form TFLite fuses into its GELU
    w.op("Mul", [half, w.op("Add", [erf, w.const(1.0)])], node.output[0])


_WRITE_OUT = {"LayerNormalization": _layer_norm, "Gelu": _gelu}
KEEP_DOMAIN = "edgeproof.opset15"  # operators onnx's converter has no adapter for, whose opset-13 form is the same


def _explicit_split(node, graph, shapes: dict[str, list]) -> None:
    """Split-18's `num_outputs` (it has no adapter down to 17) as the explicit sizes Split-13 takes."""
    from onnx import numpy_helper

    attrs = node_attrs(node)
    if "num_outputs" not in attrs:
        return
    axis, parts = int(attrs.get("axis", 0)), int(attrs["num_outputs"])
    shape = shapes.get(node.input[0])
    size = shape[axis] if shape and -len(shape) <= axis < len(shape) else None
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"Split {node.name!r}: num_outputs on an axis of unknown size")
    chunk = -(-size // parts)
    sizes = [min(chunk, size - k * chunk) for k in range(parts)]
    name = f"{node.name or 'split'}_sizes"
    graph.initializer.append(numpy_helper.from_array(np.asarray(sizes, np.int64), name))
    if len(node.input) == 1:
        node.input.append(name)
    kept = [a for a in node.attribute if a.name != "num_outputs"]
    del node.attribute[:]
    node.attribute.extend(kept)


def _drop_noop_with_empty_axes(node) -> None:
    """onnx's ReduceX 18 -> 17 adapter moves the axes into the attribute but keeps `noop_with_empty_axes`, which no
    opset below 18 has (the checker refuses the graph). It only matters without axes, where it must be 0 (reduce
    over all axes, the old meaning)."""
    if not node.op_type.startswith("Reduce"):
        return
    attrs = node_attrs(node)
    if "noop_with_empty_axes" not in attrs:
        return
    if attrs["noop_with_empty_axes"] and not attrs.get("axes"):
        raise ValueError(f"{node.op_type} {node.name!r}: noop_with_empty_axes=1 without axes has no opset-15 form")
    kept = [a for a in node.attribute if a.name != "noop_with_empty_axes"]
    del node.attribute[:]
    node.attribute.extend(kept)


def to_opset15(model) -> Optional[Any]:
    """A copy at opset 15 with LayerNormalization and Gelu written out; None when the graph is at 15 or below."""
    import onnx
    from onnx import version_converter

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), ONNX_TF_OPSET)
    if opset <= ONNX_TF_OPSET:
        return None
    work = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    graph = work.graph
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
              for v in [*graph.input, *graph.value_info, *graph.output] if v.type.tensor_type.HasField("shape")}
    ranks = {name: len(shape) for name, shape in shapes.items()}
    kept = []
    for n, node in enumerate(graph.node):
        write = _WRITE_OUT.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if node.op_type == "Split" and node.domain in ("", "ai.onnx"):
            _explicit_split(node, graph, shapes)
            node.domain = KEEP_DOMAIN
        if write is None:
            kept.append(node)
            continue
        w = _Writer(graph, opset, f"{node.name or node.op_type}_{n}_w")
        write(w, node, ranks)
        kept.extend(w.nodes)
    del graph.node[:]
    graph.node.extend(kept)
    from onnx import helper

    work.opset_import.append(helper.make_opsetid(KEEP_DOMAIN, 1))
    down = version_converter.convert_version(work, ONNX_TF_OPSET)
    for node in down.graph.node:
        if node.domain == KEEP_DOMAIN:
            node.domain = ""
        _drop_noop_with_empty_axes(node)
    kept_imports = [o for o in down.opset_import if o.domain != KEEP_DOMAIN]
    del down.opset_import[:]
    down.opset_import.extend(kept_imports)
    return down
