"""The ONNX pre-pass: a graph from any exporter made easy for the ONNX -> TensorFlow backends, before any of
them sees it. Each step is checked with onnxruntime on the probes: the graph after the step must compute
what the graph before it computed (every output within 1e-4 x its scale); a step that fails or changes the
results is undone and recorded with its reason, never silently applied.

Steps, in order:
1. names: every node, value and initializer name made safe (`Softmax@0`, `encoder/layer.0/attn`, non-ASCII
   -> letters, digits and `_`), the mapping kept so reports can name the original nodes;
2. shapes: ONNX shape inference over the graph (its inputs' open dimensions already fixed from
   --input-shape and the sample data, the batch left open);
3. reshapes (recurrent graphs, only the batch open): Reshape targets computed from Shape made constants (0 for a
   dimension that follows the data's, -1 for one more), found with onnxruntime at two batch sizes;
4. simplify: onnxsim constant folding and simplification (the batch dimension kept dynamic; not for graphs with
   recurrent layers, whose initial states it folds into constants onnx2tf cannot take);
5. sentinels: float constants at +-1e30 and beyond, infinities included (the attention-mask fill value
   `torch.finfo(float32).min` of transformers), set to +-1e4: exp(-1e4) is 0 in float32 as exp(-3.4e38) is, but
   -3.4e38 becomes -inf in float16 (0 x -inf = NaN in every fp16 artifact) and breaks int8 scales;
6. pooling: an AveragePool/MaxPool whose one window covers its whole static input (Hugging Face EfficientNet's
   `AvgPool2d(1280, ceil_mode=True)`) as GlobalAveragePool/GlobalMaxPool, not padded to the window's size;
7. opset: graphs below opset 13 converted up to 13 (the converters' best-supported range);
8. maxpool_pads: a padded MaxPool as a reflect Pad + MaxPool without pads (exact when each pad is at most
   (k - 1) / 2): ONNX pads a max pool with -inf, which onnx2tf writes as PadV2 with -3.4e38 and full-integer
   calibration turns into a scale of 1.3e36;
9. constants: Constant nodes made initializers (onnx2tf moves an axis to its NHWC place only for an initializer;
   the version converter writes Squeeze-13's axes as a Constant node);
10. opset15 (onnx-tf's graph only): graphs above opset 15 written down to it, LayerNormalization and Gelu in
   primitive operators first (onnx-tf knows no later opset);
11. gelu: exact GELU written out with Erf fused into one `Gelu` node (TFLite has no builtin Erf); for onnx-tf,
   which stops at opset 15, written in the one form the TFLite converter fuses into its GELU instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from edgeproof._util import one_line, scaled_error

from ._onnx_shapes import constant_reshapes, constants_as_initializers

MIN_OPSET = 13
CHECK_TOLERANCE = 1e-4  # relative to each output's scale: float reassociation, not a different computation
_SAFE = re.compile(r"[^A-Za-z0-9_]")


@dataclass
class PrepassResult:
    model: Any  # the onnx.ModelProto after every step that held
    steps: list[dict[str, Any]] = field(default_factory=list)  # {"step", "ok", "detail" | "error"}
    names: dict[str, str] = field(default_factory=dict)  # safe node name -> the exporter's node name

    def notes(self) -> list[str]:
        failed = [f"{s['step']}: {s['error']}" for s in self.steps if s["ok"] is False]
        done = [s["step"] for s in self.steps if s["ok"]]
        return [f"ONNX pre-pass: {', '.join(done) or 'nothing'} applied"
                + (f"; undone: {'; '.join(failed)}" if failed else "")]


def _safe(name: str, taken: set[str], prefix: str) -> str:
    base = _SAFE.sub("_", name.encode("ascii", "replace").decode()).strip("_") or prefix
    if base[0].isdigit():  # onnx2tf wants op names that start with a letter or digit; TF scopes with a letter
        base = f"{prefix}_{base}"
    candidate, k = base, 1
    while candidate in taken:
        k += 1
        candidate = f"{base}_{k}"
    taken.add(candidate)
    return candidate


def _graphs(graph):
    """The graph and every subgraph (If / Loop / Scan bodies), depth first."""
    from onnx import AttributeProto

    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def sanitize_names(model) -> dict[str, str]:
    """Rename, in place, every node and every value that is not a graph input or output to a safe name
    (subgraphs included, so outer-scope references follow). Returns {new node name: old node name}."""
    graphs = list(_graphs(model.graph))
    keep = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    taken = set(keep)
    values: dict[str, str] = {}
    for g in graphs:
        for name in [i.name for i in g.initializer] + [o for n in g.node for o in n.output] + [i.name for i in g.input]:
            if name and name not in keep and name not in values and _SAFE.search(name):
                values[name] = _safe(name, taken, "t")
            elif name:
                taken.add(name)
    nodes: dict[str, str] = {}
    node_taken: set[str] = set()
    for g in graphs:
        for i in g.initializer:
            i.name = values.get(i.name, i.name)
        for coll in (g.input, g.output, g.value_info):
            for v in coll:
                v.name = values.get(v.name, v.name)
        for n, node in enumerate(g.node):
            node.input[:] = [values.get(x, x) for x in node.input]
            node.output[:] = [values.get(x, x) for x in node.output]
            old = node.name or f"{node.op_type}_{n}"
            node.name = _safe(old, node_taken, "node")
            if node.name != old:
                nodes[node.name] = old
    return nodes


def _session(model, optimize: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_graph(model, feed: dict[str, np.ndarray], optimize: bool = True) -> list[np.ndarray]:
    """onnxruntime on `feed` (keyed by graph input name; each cast to the input's element type); a graph with
    a static batch runs in steps of it."""
    from onnx import helper

    session = _session(model, optimize)
    typed, step = {}, None
    for i in model.graph.input:
        if i.name in feed:
            dtype = helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
            typed[i.name] = np.ascontiguousarray(feed[i.name].astype(dtype, copy=False))
            dims = i.type.tensor_type.shape.dim
            if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                step = dims[0].dim_value
    n = len(next(iter(typed.values()))) if typed else 0
    if step is None or step >= n:
        return session.run(None, typed)
    parts = [session.run(None, {k: v[i:i + step] for k, v in typed.items()}) for i in range(0, n - n % step, step)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def _holds(before: list[np.ndarray], after: list[np.ndarray]) -> Optional[str]:
    """None when `after` computes what `before` did, else why not."""
    if len(before) != len(after):
        return f"{len(after)} outputs instead of {len(before)}"
    for k, (a, b) in enumerate(zip(before, after)):
        if np.shape(a) != np.shape(b):
            return f"output {k} has shape {list(np.shape(b))} instead of {list(np.shape(a))}"
        error, limit = scaled_error(b, a, CHECK_TOLERANCE)
        if not error <= limit:
            return f"output {k} moved by {error:.3g} (allowed {limit:.3g})"
    return None




RECURRENT_OPS = {"LSTM", "GRU", "RNN"}


def _recurrent(model) -> Optional[bool]:
    return True if any(n.op_type in RECURRENT_OPS for n in model.graph.node) else None


def _simplify(model):
    import onnxsim

    if _recurrent(model):
        return None  # onnxsim folds recurrent layers' initial states into constants onnx2tf's LSTM/GRU cannot take

    simplified, ok = onnxsim.simplify(model, check_n=0, skip_shape_inference=False)
    if not ok:
        raise RuntimeError("onnxsim could not validate the simplified graph")
    return simplified


SENTINEL, FINITE_SENTINEL = 1e30, 1e4


def _finite_sentinels(model):
    """Float constants at +-SENTINEL and beyond set to +-FINITE_SENTINEL; None when there are none."""
    from onnx import numpy_helper

    tensors = [(t, None) for t in model.graph.initializer]
    tensors += [(a.t, a) for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    changed = 0
    for tensor, _ in tensors:
        array = numpy_helper.to_array(tensor)
        if array.dtype.kind != "f" or not array.size:
            continue
        huge = np.abs(array.astype(np.float64)) >= SENTINEL
        if huge.any():
            fixed = np.where(huge, np.sign(array) * FINITE_SENTINEL, array).astype(array.dtype)
            tensor.CopyFrom(numpy_helper.from_array(fixed, tensor.name))
            changed += 1
    return model if changed else None


def _infer_shapes(model):
    import onnx

    return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)


def _upgrade_opset(model):
    from onnx import version_converter

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset >= MIN_OPSET:
        return None  # nothing to do
    return version_converter.convert_version(model, MIN_OPSET)


def prepass(model, feed: dict[str, np.ndarray], say: Callable[..., None] = lambda *a, **k: None,
            gelu: bool = True) -> PrepassResult:
    """Run every step on a copy of `model`; `feed` holds the probes keyed by graph input name. `gelu`: fuse
    exact GELU (opset 20); onnx-tf, which stops at opset 15, gets the graph without that step."""
    import onnx

    current = onnx.ModelProto()
    current.CopyFrom(model)
    reference = run_graph(current, feed)
    result = PrepassResult(current)

    def names(m):
        result.names = sanitize_names(m)
        return m

    from ._onnx_gelu import canonical_gelu, fuse_gelu
    from ._onnx_opset15 import to_opset15
    from ._onnx_pool import global_pooling, reflect_padded_max_pools

    steps: list[tuple[str, Callable]] = [("names", names), ("shapes", _infer_shapes),
                                         ("reshapes", lambda m: _recurrent(m) and constant_reshapes(m, feed, run_graph)),
                                         ("simplify", _simplify),
                                         ("sentinels", _finite_sentinels), ("pooling", global_pooling),
                                         ("opset", _upgrade_opset), ("maxpool_pads", reflect_padded_max_pools),
                                         ("constants", constants_as_initializers)]
    steps += [("gelu", fuse_gelu)] if gelu else [("opset15", to_opset15), ("gelu", canonical_gelu)]
    for step, apply in steps:
        candidate = onnx.ModelProto()
        candidate.CopyFrom(result.model)
        try:
            changed = apply(candidate)
            if changed is None:  # nothing to do for this graph
                result.steps.append({"step": step, "ok": None, "detail": "not needed"})
                continue
            onnx.checker.check_model(changed)
            why = _holds(reference, run_graph(changed, feed))
        except Exception as err:  # a step the graph does not take: undone, recorded
            why = one_line(err, 240)
        if why is None:
            result.model = changed
            result.steps.append({"step": step, "ok": True})
        else:
            if step == "names":
                result.names = {}
            result.steps.append({"step": step, "ok": False, "error": why})
            say(f"   ONNX pre-pass: {step} undone ({why})", flush=True)
    return result
