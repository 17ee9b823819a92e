"""Pre-pass step `reshapes` (run on graphs with recurrent layers): Reshape targets computed at run time made constants.

torch's dynamo exporter follows every `nn.LSTM` layer with Shape -> Slice -> Mul -> Concat -> Reshape (its
[seq, directions, N, H] output back to [seq, N, directions x H]). onnxsim would fold that, but the pre-pass does not
run onnxsim on recurrent graphs (see `_onnx_prepass`), and ONNX's shape inference cannot see through it with an open
batch: the next LSTM gets an input of unknown size, and onnx2tf failed building its weights ("Can't convert Python
sequence with mixed types to Tensor", a None among [4, hidden, input_size]).

Each computed target is evaluated with onnxruntime at two batch sizes (one when the batch is fixed): a dimension
that does not change becomes a constant, one that follows the data's own dimension at that place becomes 0 (copy
it), and a single remaining one becomes -1. A target that fits none of these is left as it is, and so is every
target of a graph with an open dimension other than the batch (the probes see one size of it).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ._onnx_model import value_dims


def prune_dead_nodes(graph) -> None:
    """Nodes none of whose outputs is used (by a node or a graph output) removed, until none is left."""
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)


def _batch_feeds(model, feed: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Probe feeds of one and two rows (one feed of the fixed batch when the graph's batch is static)."""
    first = model.graph.input[0].type.tensor_type.shape.dim
    if first and first[0].HasField("dim_value") and first[0].dim_value > 0:
        n = first[0].dim_value
        return [{k: np.resize(v, (n, *v.shape[1:])) for k, v in feed.items()}]
    return [{k: np.resize(v, (rows, *v.shape[1:])) for k, v in feed.items()} for rows in (1, 2)]


def _target(runs: list[tuple[np.ndarray, tuple]]) -> Optional[list[int]]:
    """A constant Reshape target from (target, data shape) pairs seen at different batches; None when none fits."""
    targets = [[int(v) for v in t] for t, _ in runs]
    if len(runs) == 1:
        return targets[0]
    if any(len(t) != len(targets[0]) for t in targets):
        return None
    fixed: list[int] = []
    for i, values in enumerate(zip(*targets)):
        if len(set(values)) == 1:
            fixed.append(values[0])
        elif all(i < len(shape) and shape[i] == v for v, (_, shape) in zip(values, runs)):
            fixed.append(0)  # the data's own dimension at this place
        else:
            fixed.append(-1)
    return None if fixed.count(-1) > 1 else fixed


def _only_batch_open(model) -> bool:
    """Every graph input static but for its first dimension: the probes' batch is the one thing that can vary."""
    return all(d is not None for i in model.graph.input for d in value_dims(i)[1:])


def constant_reshapes(model, feed: dict[str, np.ndarray], run_graph: Callable[..., list[np.ndarray]]):
    """Computed Reshape targets as constants, `run_graph(model, feed)` (onnxruntime) finding them; None when there
    are none."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {t.name for t in graph.initializer}
    reshapes = [n for n in graph.node if n.op_type == "Reshape" and n.input[1] not in constants]
    if not reshapes or not _only_batch_open(model):
        return None
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    wanted = [name for n in reshapes for name in n.input[:2]]
    probe.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in dict.fromkeys(wanted))
    offset = len(model.graph.output)
    runs = [dict(zip(dict.fromkeys(wanted), run_graph(probe, f)[offset:])) for f in _batch_feeds(model, feed)]
    changed = 0
    for node in reshapes:
        fixed = _target([(run[node.input[1]], run[node.input[0]].shape) for run in runs])
        if fixed is None:
            continue
        name = f"{node.name or node.output[0]}_constant_shape"
        graph.initializer.append(numpy_helper.from_array(np.asarray(fixed, np.int64), name))
        node.input[1] = name
        changed += 1
    if not changed:
        return None
    prune_dead_nodes(graph)
    return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)


def constants_as_initializers(model):
    """Constant nodes (a `value` tensor) of the main graph made initializers; None when there are none.

    onnx's version converter writes an opset-12 Squeeze's axes as a Constant node feeding Squeeze-13, and the pre-pass
    does not run onnxsim (which makes them initializers) on recurrent graphs. onnx2tf converts an axis to its NHWC
    place only when it is an initializer: a CRNN's Squeeze of the collapsed height squeezed the width instead ("Can
    not squeeze dim[2], expected a dimension of 1, got 32")."""
    from onnx import numpy_helper

    graph = model.graph
    constants = [n for n in graph.node if n.op_type == "Constant" and len(n.attribute) == 1
                 and n.attribute[0].name == "value" and len(n.output) == 1]
    if not constants:
        return None
    for node in constants:
        graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(node.attribute[0].t), node.output[0]))
        graph.node.remove(node)
    return model
