"""ONNX -> TensorFlow SavedModel, once for every ONNX graph (a user's file, or torch's export of a zoo or
user module): the graph is prepared for the converters, then onnx2tf (NCHW graphs become NHWC) or onnx-tf
(keeps NCHW; needs the compatibility module) turns it into a SavedModel, which is checked against the
source model on the probes; when a backend fails (or its graph computes something else) the next one is
tried, and every attempt is recorded.

Preparation writes a copy of the graph with: safe tensor names (onnx-tf breaks on `input.1`), the
open non-batch dimensions fixed from the sample data, and int64 inputs/outputs taking/returning
int32 at the graph's boundary with a Cast inside (TFLite and TF.js want int32 ids)."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from edgeproof._atomic import write_bytes_atomic
from edgeproof._spec import Layout, ModelContract, TensorSpec
from edgeproof._util import one_line
from edgeproof.errors import UserConversionError

from ._onnx_backends import OnnxBackend, TfExport, onnx2tf_options
from ._onnx_prepass import RECURRENT_OPS
from ._saved_model import BoundSavedModel, bind_saved_model
from ._user_inputs import Declared

INT64_SUFFIX = "__int64"
ONNX_NAMES_JSON = "onnx_names.json"  # safe node name -> the exporter's node name (the pre-pass renames nodes)


def _subgraphs(node):
    from onnx import AttributeProto

    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == AttributeProto.GRAPHS:
            yield from attr.graphs


def _rename_uses(graph, old: str, new: str) -> None:
    """Every node input `old` -> `new`, in subgraphs too (they may read outer-scope names)."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for sub in _subgraphs(node):
            _rename_uses(sub, old, new)


def _rename_output(graph, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    _rename_uses(graph, old, new)
    for vi in graph.value_info:
        if vi.name == old:
            vi.name = new


def prepare(proto, declared: Sequence[Declared], outputs: Sequence[tuple[str, str]], batch: Optional[int] = None):
    """A copy of the graph ready for the converters (see the module docstring); `batch`: fix the batch
    dimension too (every shape static: what the converters handle best)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    by_source = {d.source_name: d for d in declared}
    casts = []
    for gi in graph.input:
        d = by_source.get(gi.name)
        if d is None:
            continue  # an initializer listed as an input (old exporters)
        if gi.name != d.name:
            _rename_uses(graph, gi.name, d.name)
            gi.name = d.name
        dims = gi.type.tensor_type.shape.dim
        for i, size in enumerate(d.shape):
            if i < len(dims) and size is not None:
                dims[i].ClearField("dim_param")
                dims[i].dim_value = int(size)
            elif i < len(dims) and i == 0 and batch is not None:
                dims[i].ClearField("dim_param")
                dims[i].dim_value = int(batch)
            elif i < len(dims) and i == 0:
                dims[i].dim_param = "batch"
        if gi.type.tensor_type.elem_type == TensorProto.INT64:
            _rename_uses(graph, d.name, d.name + INT64_SUFFIX)
            gi.type.tensor_type.elem_type = TensorProto.INT32
            casts.append(helper.make_node("Cast", [d.name], [d.name + INT64_SUFFIX], to=TensorProto.INT64,
                                          name=f"edgeproof_cast_{d.name}"))
    for go, (name, source_name) in zip(graph.output, outputs):
        if source_name != name:
            _rename_output(graph, source_name, name)
            go.name = name
        if go.type.tensor_type.elem_type == TensorProto.INT64:
            _rename_output(graph, name, name + INT64_SUFFIX)
            go.type.tensor_type.elem_type = TensorProto.INT32
            graph.node.append(helper.make_node("Cast", [name + INT64_SUFFIX], [name], to=TensorProto.INT32,
                                               name=f"edgeproof_cast_{name}"))
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    return model


# -- ONNX -> TensorFlow, with a fallback ----------------------------------------------------------------------

@dataclass
class OnnxToTf:
    bound: BoundSavedModel
    backend: OnnxBackend
    attempts: list[dict[str, Any]] = field(default_factory=list)  # {"backend", "ok", "error"}
    notes: list[str] = field(default_factory=list)
    prepass: list[dict[str, Any]] = field(default_factory=list)  # the pre-pass steps: {"step", "ok", "error"?}
    noise_floor: dict[str, float] = field(default_factory=dict)  # onnxruntime optimized vs unoptimized, per output

    @property
    def prefer_layout(self) -> Optional[str]:
        return "NHWC" if self.backend is OnnxBackend.ONNX2TF else None

    @property
    def converter(self) -> str:
        return self.backend.value

    def record(self) -> dict[str, Any]:
        return {"used": self.backend.value, "attempts": self.attempts, "prepass": self.prepass}


def _attempt(backend: OnnxBackend, onnx_path: Path, saved_model: Path, contract: ModelContract,
             native_inputs: Sequence[TensorSpec], probes, reference_probe,
             unroll: bool = False) -> tuple[Optional[Any], Optional[str]]:
    """((export, bound), None) when `backend` turned the graph into a SavedModel that computes what onnxruntime
    computes; (None, why not) otherwise. The backend runs in a worker process (convert/_worker): a converter
    that crashes or exits becomes a failed attempt, not a dead conversion."""
    from ._worker import Job, run_jobs

    options = onnx2tf_options(native_inputs) if backend is OnnxBackend.ONNX2TF else None
    if options is not None and unroll:  # a static batch: recurrent layers unrolled into builtin ops, no tensor lists
        options["enable_rnn_unroll"] = True
    (outcome,) = run_jobs(onnx_path, [Job(backend.value, "", str(saved_model), options=options)])
    if outcome.error:
        shutil.rmtree(saved_model, ignore_errors=True)
        return None, outcome.error[:600]
    try:
        bound = bind_saved_model(saved_model, contract, probes, reference_probe,
                                 "NHWC" if backend is OnnxBackend.ONNX2TF else None)
    except Exception as err:  # a graph that does not compute what onnxruntime computes
        shutil.rmtree(saved_model, ignore_errors=True)
        return None, one_line(err)
    return (TfExport(saved_model, backend, list(outcome.notes)), bound), None


@dataclass
class _Graph:
    path: Path
    passed: Any  # PrepassResult
    batch: Optional[int]


def _shape_plans(dynamic: bool, open_dims: bool, batch: Optional[int]) -> list[tuple[Optional[int], bool]]:
    """(batch, leave the graph's open dimensions open) of the graphs tried: the batch as exported, then fixed to 1;
    where the sample data fixed dimensions the graph leaves open (a sequence length), once more with them open
    (some graphs convert only so: BERT-style attention masks fold to constants otherwise)."""
    plans = [(batch, False)] if batch is not None and dynamic else ([(None, False), (1, False)] if dynamic
                                                                    else [(None, False)])
    return plans + [(plans[-1][0], True)] if open_dims else plans


def _plans(backends, batches, graph, dynamic: bool, unrolled_first: bool = False) -> list[tuple]:
    """(backend, batch, unroll) in the order tried: each backend on the graph as it is, then on a fixed batch;
    with recurrent layers on a fixed batch, onnx2tf once more with them unrolled over time (no WHILE loop, no
    tensor lists), or first with `unrolled_first`."""
    plans = []
    recurrent = any(n.op_type in RECURRENT_OPS for n in graph(batches[0]).passed.model.graph.node)
    for backend in backends:
        for batch in batches:
            unroll = backend is OnnxBackend.ONNX2TF and recurrent and (batch[0] is not None or not dynamic)
            both = [(backend, batch, False)] + ([(backend, batch, True)] if unroll else [])
            plans += both[::-1] if unrolled_first else both
    return plans


def _missing_op(error: str) -> bool:
    """A backend without an op: fixing the batch will not help it."""
    return "not implemented" in error.lower() or "not yet implemented" in error.lower()


def onnx_route(model, declared: Optional[Sequence[Declared]], contract: ModelContract,
               native_inputs: Sequence[TensorSpec], root: Path, probes, reference_probe,
               backends: Sequence[OnnxBackend], say: Callable,
               names: tuple[str, str] = ("model.onnx", "saved_model"), batch: Optional[int] = None,
               unrolled_first: bool = False) -> OnnxToTf:
    """An OnnxModel prepared and pre-passed into root/model.onnx, then converted into root/saved_model by the
    first plan whose graph computes what onnxruntime computes: each backend on the graph as it is (a dynamic
    batch), then with its batch fixed to 1 (every shape static, what the converters handle best). Every
    attempt is recorded. `declared`: the inputs with open dimensions fixed (None: as the graph declares them);
    `names`: (ONNX file, SavedModel folder) under root; `batch`: only a graph with this batch; `unrolled_first`:
    onnx2tf on a fixed batch unrolls recurrent layers before it tries them as loops."""
    import onnx

    from ._onnx_prepass import prepass

    declared = list(declared if declared is not None else model.declared_inputs())
    own = {d.source_name: d.shape for d in model.declared_inputs()}
    as_graph = [replace(d, shape=own.get(d.source_name, d.shape)) for d in declared]  # open dims left open
    feed = native_feed(probes, contract.inputs, native_inputs)
    graphs: dict[tuple, _Graph] = {}

    def graph(plan: tuple) -> _Graph:
        batch, keep_open, *rest = plan
        gelu = not rest  # (batch, open, "opset15"): onnx-tf's graph, no opset-20 Gelu
        if plan not in graphs:
            passed = prepass(prepare(model.proto, as_graph if keep_open else declared, model.output_map, batch),
                             feed, say, gelu=gelu)
            path = root / (names[0] if plan == (None, False) else f".{batch}{'o' * keep_open}{'' if gelu else 'f'}-"
                                                                 f"{names[0]}")
            onnx.save(passed.model, str(path))
            graphs[plan] = _Graph(path, passed, batch)
        return graphs[plan]

    dynamic = any(d.shape and d.shape[0] is None for d in declared)
    plans = _plans(backends, _shape_plans(dynamic, as_graph != declared, batch), graph, dynamic, unrolled_first)
    attempt = lambda backend, g, unroll: _attempt(backend, g.path, root / names[1], contract,  # noqa: E731
                                                   native_inputs, probes, reference_probe, unroll=unroll)
    attempts: list[dict[str, Any]] = []
    try:
        found = _first_precise(plans, graph, attempt, attempts, dynamic, say)
        if found is None:
            raise UserConversionError(f"no ONNX backend could convert {names[0]}: "
                                      + "; ".join(f"{a['backend']}: {a['error']}" for a in attempts))
        g, done, backend = _restore(found, root / names[1]) if found[0].path.name.startswith(".imprecise-") else found
        return _converted(g, done, backend, attempts, root, names, feed)
    finally:
        for g in graphs.values():
            if g.path.name != names[0]:
                g.path.unlink(missing_ok=True)


def _first_precise(plans, graph: Callable, attempt: Callable, attempts: list[dict[str, Any]], dynamic: bool,
                   say: Callable) -> Optional[tuple]:
    """(graph, (export, bound), backend) of the first plan whose SavedModel is within 1e-4 of every output's scale;
    a graph within 1e-3 but not 1e-4 is set aside (its backend is done) while the other backends try for a closer
    one, and is the answer when none is closer. None when no plan converts. Every attempt goes into `attempts`."""
    aside: Optional[tuple] = None
    done_with: set[OnnxBackend] = set()  # a backend without an op (or with an imprecise graph)
    for backend, plan, unroll in plans:
        if backend in done_with:
            continue
        g, batch = graph(plan if backend is OnnxBackend.ONNX2TF else plan + ("opset15",)), plan[0]
        say(f"   ONNX -> TensorFlow with {backend.value}" + (f" (batch fixed to {batch})" if batch else "")
            + (", open dimensions left open" if plan[1] else "") + (", recurrent layers unrolled" if unroll else ""),
            flush=True)
        done, error = attempt(backend, g, unroll)
        attempts.append({"backend": backend.value, "batch": batch or ("dynamic" if dynamic else "as exported"),
                         "open_dims": plan[1], "unrolled": unroll, "ok": done is not None, "error": error,
                         **({"max_abs_error_vs_onnxruntime": done[1].max_abs_error} if done else {})})
        if done is not None and done[1].precise:
            _drop(aside)
            return g, done, backend
        if done is not None and aside is not None:  # no closer than the first: the first stays
            shutil.rmtree(done[1].path, ignore_errors=True)
            break
        if done is not None:
            say(f"   {backend.value}'s graph is {done[1].max_abs_error:.3g} from the source (more than 1e-4 of "
                f"an output's scale): trying another backend for a closer one", flush=True)
            aside, done_with = _set_aside(g, done, backend), done_with | {backend}
            continue
        say(f"   {backend.value} failed: {error}", flush=True)
        if _missing_op(error or ""):
            done_with.add(backend)
    return aside


def _set_aside(g: _Graph, done, backend: OnnxBackend) -> tuple:
    """An imprecise plan's SavedModel moved out of the way of the next plan's (kept in case none is closer)."""
    export, bound = done
    folder = bound.path.with_name(f".imprecise-{bound.path.name}")
    shutil.rmtree(folder, ignore_errors=True)
    bound.path.replace(folder)
    kept = g.path.with_name(f".imprecise-{g.path.name}")
    shutil.copyfile(g.path, kept)
    return _Graph(kept, g.passed, g.batch), (replace(export, saved_model=folder), replace(bound, path=folder)), backend


def _restore(aside: tuple, saved_model: Path) -> tuple:
    g, (export, bound), backend = aside
    shutil.rmtree(saved_model, ignore_errors=True)
    bound.path.replace(saved_model)
    return g, (replace(export, saved_model=saved_model), replace(bound, path=saved_model)), backend


def _drop(aside: Optional[tuple]) -> None:
    if aside is not None:
        shutil.rmtree(aside[1][1].path, ignore_errors=True)
        aside[0].path.unlink(missing_ok=True)


def _converted(g: _Graph, done, backend: OnnxBackend, attempts: list[dict], root: Path, names: tuple[str, str],
               feed: dict) -> OnnxToTf:
    export, bound = done
    if g.path.name != names[0]:  # another plan's graph is the one converted: it becomes the model's ONNX file
        g.path.replace(root / names[0])
        g.path = root / names[0]
    if g.passed.names:
        write_bytes_atomic(root / ONNX_NAMES_JSON, json.dumps(g.passed.names, indent=1, sort_keys=True).encode())
    notes = g.passed.notes() + list(export.notes)
    failed = [a for a in attempts if not a["ok"]]
    if failed:
        notes.append(f"ONNX -> TensorFlow: {backend.value}" + (f" with the batch fixed to {g.batch}" if g.batch else "")
                     + " converted the model after " + "; ".join(f"{a['backend']} (batch {a['batch']}) failed: "
                                                               f"{a['error']}" for a in failed))
    result = OnnxToTf(bound, backend, attempts, notes, g.passed.steps)
    result.noise_floor = ort_noise_floor(g.passed.model, feed)
    return result


def native_feed(probes: dict, inputs: Sequence[TensorSpec], native_inputs: Sequence[TensorSpec]) -> dict:
    """Canonical probes as the source graph takes them (PyTorch images: NHWC -> NCHW)."""
    native = {t.name: t for t in native_inputs}
    feed = {}
    for t in inputs:
        array = probes[t.name]
        n = native.get(t.name, t)
        if {t.layout, n.layout} == {Layout.NHWC, Layout.NCHW} and array.ndim == 4:
            array = array.transpose(0, 3, 1, 2) if n.layout is Layout.NCHW else array.transpose(0, 2, 3, 1)
        feed[t.name] = np.ascontiguousarray(array)
    return feed


def ort_noise_floor(model, feed: dict) -> dict[str, float]:
    """Per output: onnxruntime with every graph optimisation against none, on the probes (the same graph
    evaluated two legitimate ways: the source's own float noise)."""
    from ._onnx_prepass import run_graph

    try:
        fast, plain = run_graph(model, feed, optimize=True), run_graph(model, feed, optimize=False)
    except Exception:  # an unoptimized session that cannot run: the floor is not measured, budgets use the scale
        return {}
    return {o.name: float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if np.size(a) else 0.0
            for o, a, b in zip(model.graph.output, fast, plain)}
