"""Exact GELU written out by exporters as `0.5 * x * (1 + erf(x / sqrt(2)))` fused back into one ONNX `Gelu`
node (opset 20). TFLite has no builtin Erf (the unfused form needs Select TF ops) and TF.js lacks some of its
kernels; both run GELU itself. Used by the ONNX pre-pass as one checked step."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

GELU_OPSET = 20
SQRT2 = float(np.sqrt(2.0))


def _constants(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _scalar(name: str, consts: dict[str, np.ndarray], value: float) -> bool:
    array = consts.get(name)
    return array is not None and array.size == 1 and abs(float(array.reshape(-1)[0]) - value) < 1e-4 * abs(value)


def _other(node, name: str) -> Optional[str]:
    rest = [i for i in node.input if i != name]
    return rest[0] if len(rest) == 1 else None


def _match(erf, producers, consumers, consts, outputs) -> Optional[tuple[str, str, list, float]]:
    """(x, y, nodes, factor) of the GELU around this Erf node (y = factor x GELU(x): 2 when a simplifier folded the
    0.5 into the next layer's weights), or None."""
    pre = producers.get(erf.input[0])
    if pre is None or pre.op_type not in ("Div", "Mul") or len(consumers.get(erf.input[0], [])) != 1:
        return None
    scale = SQRT2 if pre.op_type == "Div" else 1.0 / SQRT2
    x = next((i for i in pre.input if not _scalar(i, consts, scale)), None)
    if x is None or not any(_scalar(i, consts, scale) for i in pre.input):
        return None

    def only(name):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and name not in outputs else None

    add = only(erf.output[0])
    if add is None or add.op_type != "Add" or not _scalar(_other(add, erf.output[0]) or "", consts, 1.0):
        return None
    mul = only(add.output[0])
    if mul is None or mul.op_type != "Mul":
        return None
    partner = _other(mul, add.output[0])
    if partner == x:  # 0.5 applied last: y = (x * (1 + erf)) * 0.5
        half = only(mul.output[0])
        if half is None or half.op_type != "Mul" or not _scalar(_other(half, mul.output[0]) or "", consts, 0.5):
            return x, mul.output[0], [pre, erf, add, mul], 2.0  # the 0.5 folded into the next layer (onnxsim)
        return x, half.output[0], [pre, erf, add, mul, half], 1.0
    if _scalar(partner or "", consts, 0.5):  # 0.5 applied to (1 + erf), then x: y = x * (0.5 * (1 + erf))
        times_x = only(mul.output[0])
        if times_x is None or times_x.op_type != "Mul" or _other(times_x, mul.output[0]) != x:
            return None
        return x, times_x.output[0], [pre, erf, add, mul, times_x], 1.0
    halved = producers.get(partner or "")  # 0.5 applied first: y = (x * 0.5) * (1 + erf)
    if halved is None or halved.op_type != "Mul" or x not in halved.input or only(halved.output[0]) is not mul:
        return None
    if not _scalar(_other(halved, x) or "", consts, 0.5):
        return None
    return x, mul.output[0], [pre, erf, add, halved, mul], 1.0


def _scalar_initializer(graph, value: float) -> str:
    from onnx import TensorProto, helper

    name = f"edgeproof_gelu_{value:g}".replace(".", "_")
    if not any(i.name == name for i in graph.initializer):
        graph.initializer.append(helper.make_tensor(name, TensorProto.FLOAT, [], [value]))
    return name


def _rewrite(model, replace_with, opset: Optional[int]) -> Optional[Any]:
    """A copy with every exact-GELU pattern's nodes replaced by `replace_with(x, y, name, graph)` (a list of nodes
    computing y from x); `opset`: raise the graph to it first when lower. None when there is no pattern."""
    import onnx
    from onnx import helper, version_converter

    if not any(n.op_type == "Erf" for n in model.graph.node):
        return None
    own = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
    work = onnx.ModelProto()
    work.CopyFrom(version_converter.convert_version(model, opset) if opset and own < opset else model)
    graph = work.graph
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    consts, outputs = _constants(graph), {o.name for o in graph.output}
    replaced, drop = {}, set()
    for erf in [n for n in graph.node if n.op_type == "Erf"]:
        found = _match(erf, producers, consumers, consts, outputs)
        if found is None or any(id(n) in drop for n in found[2]):
            continue
        x, y, nodes, factor = found
        drop.update(id(n) for n in nodes)
        name = erf.name or f"erf_{len(replaced)}"
        written = replace_with(x, y if factor == 1.0 else f"{name}_gelu_out", name, graph)
        if factor != 1.0:
            written.append(helper.make_node("Mul", [f"{name}_gelu_out", _scalar_initializer(graph, factor)], [y],
                                            name=f"{name}_gelu_times_{factor:g}"))
        replaced[id(nodes[-1])] = written
    if not replaced:
        return None
    kept = []
    for n in graph.node:
        if id(n) in replaced:
            kept.extend(replaced[id(n)])
        elif id(n) not in drop:
            kept.append(n)
    del graph.node[:]
    graph.node.extend(kept)
    return work


def fuse_gelu(model) -> Optional[Any]:
    """A copy with every exact-GELU pattern fused into one `Gelu` node (opset raised to 20 first when lower);
    None when there is none."""
    from onnx import helper

    return _rewrite(model, lambda x, y, name, graph: [helper.make_node("Gelu", [x], [y], name=f"{name}_gelu")],
                    GELU_OPSET)


def canonical_gelu(model) -> Optional[Any]:
    """A copy with every exact-GELU pattern written as `(x * 0.5) * (1 + erf(x * (1/sqrt 2)))`, the form the TFLite
    converter fuses into its builtin GELU (`x * (0.5 * (1 + erf(..)))` and others it leaves as a Select-only Erf).
    For backends that stop below opset 20 (onnx-tf); None when there is no pattern."""
    from onnx import helper

    def written_out(x, y, name, graph):
        c = {k: _scalar_initializer(graph, v) for k, v in {"half": 0.5, "rsqrt2": 1.0 / SQRT2, "one": 1.0}.items()}
        t = [f"{name}_gelu_{k}" for k in ("half", "scaled", "erf", "plus1")]
        return [helper.make_node("Mul", [x, c["half"]], [t[0]], name=t[0]),
                helper.make_node("Mul", [x, c["rsqrt2"]], [t[1]], name=t[1]),
                helper.make_node("Erf", [t[1]], [t[2]], name=t[2]),
                helper.make_node("Add", [t[2], c["one"]], [t[3]], name=t[3]),
                helper.make_node("Mul", [t[0], t[3]], [y], name=f"{name}_gelu")]

    return _rewrite(model, written_out, None)
