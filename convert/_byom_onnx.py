"""A user's ONNX model (from any exporter): read and checked, run by onnxruntime as the reference,
prepared for the converters, and turned into a TensorFlow SavedModel by onnx2tf, or by onnx-tf when
onnx2tf cannot (both attempts are recorded).

Preparation writes a copy of the graph with: safe tensor names (onnx-tf breaks on `input.1`), the
open non-batch dimensions fixed from the sample data, and int64 inputs/outputs taking/returning
int32 at the graph's boundary with a Cast inside (TFLite and TF.js want int32 ids)."""
from __future__ import annotations

import contextlib
import io
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from edgeproof._spec import Layout, ModelSpec
from edgeproof.errors import CorruptModelError, ModelFormatError, UserConversionError

from ._byom_files import require_exists, sniff
from ._byom_savedmodel import BoundSavedModel, bind_saved_model
from ._byom_spec import Declared, unique_names
from ._onnx_backends import OnnxBackend, onnx_to_saved_model

INT64_SUFFIX = "__int64"


def one_line(err: BaseException, limit: int = 400) -> str:
    text = " ".join(str(err).split())
    return (f"{type(err).__name__}: {text}" if text else type(err).__name__)[:limit]


class OnnxSource:
    """An ONNX file as a user model: declared inputs, outputs, and onnxruntime as the reference."""

    kind = "onnx"

    def __init__(self, path: Path | str, proto=None, what: str = "ONNX model"):
        import onnx

        self.path = require_exists(path, what)
        if proto is None:
            found = sniff(self.path) if not _starts_like_onnx(self.path) else None
            if found is not None:
                kind, option = found
                raise ModelFormatError(f"{self.path} is {kind}, not an ONNX model: "
                                       + (f"pass it with {option}" if option.startswith("--") else
                                          "--onnx takes a .onnx file exported by torch.onnx, tf2onnx, "
                                          "Hugging Face optimum, skl2onnx..."))
            try:
                proto = onnx.load(str(self.path))
            except Exception as err:
                raise CorruptModelError(f"{self.path} cannot be parsed as ONNX ({one_line(err, 200)}): the file is "
                                        f"truncated, damaged or not an ONNX model") from None
        if not proto.graph.node or not proto.graph.output:
            raise CorruptModelError(f"{self.path} holds no ONNX graph (no nodes or no outputs): the file is damaged "
                                    f"or not an ONNX model")
        try:
            onnx.checker.check_model(proto)
        except Exception as err:
            raise CorruptModelError(f"{self.path} fails onnx.checker ({one_line(err, 300)})") from None
        self.proto = proto
        initializers = {i.name for i in proto.graph.initializer}
        graph_inputs = [i for i in proto.graph.input if i.name not in initializers]
        names = unique_names([i.name for i in graph_inputs])
        self._declared = [Declared(n, i.name, _dims(i), _np_dtype(i)) for n, i in zip(names, graph_inputs)]
        self._outputs = list(zip(unique_names([o.name for o in proto.graph.output]),
                                 [o.name for o in proto.graph.output]))
        self._session = None

    def declared_inputs(self, sample=None) -> list[Declared]:
        return list(self._declared)

    @property
    def output_names(self) -> list[str]:
        return [n for n, _ in self._outputs]

    def _ort(self):
        if self._session is None:
            import onnxruntime as ort

            try:
                self._session = ort.InferenceSession(self.proto.SerializeToString(), providers=["CPUExecutionProvider"])
            except Exception as err:
                raise CorruptModelError(f"onnxruntime cannot load {self.path}: {one_line(err, 300)}") from None
        return self._session

    def reference(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {d.source_name: np.ascontiguousarray(inputs[d.name].astype(d.dtype, copy=False)) for d in self._declared}
        values = self._ort().run([s for _, s in self._outputs], feed)
        return {n: np.asarray(v) for (n, _), v in zip(self._outputs, values)}

    def save_source(self, dest: Path) -> list[str]:
        shutil.copyfile(self.path, dest / "source_model.onnx")
        return ["source_model.onnx: the ONNX model as given"]

    def export_saved_model(self, spec: ModelSpec, declared: Sequence[Declared], root: Path, probes, reference_probe,
                           backends: Sequence[OnnxBackend], say: Callable) -> "OnnxToTf":
        prepared = prepare(self.proto, declared, self._outputs)
        path = root / "model.onnx"
        import onnx

        onnx.save(prepared, str(path))
        return onnx_to_tf(path, root / "saved_model", spec, probes, reference_probe, backends, say)


def _starts_like_onnx(path: Path) -> bool:
    if path.is_dir():
        return False
    with open(path, "rb") as f:
        return f.read(1) == b"\x08"


def _dims(value_info) -> tuple[Optional[int], ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)


def _np_dtype(value_info) -> str:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type)).name


# -- preparation ------------------------------------------------------------------------------------------

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


def prepare(proto, declared: Sequence[Declared], outputs: Sequence[tuple[str, str]]):
    """A copy of the graph ready for the converters (see the module docstring)."""
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
    exporter: Optional[str] = None  # the PyTorch route: "onnx(dynamo, opset 18)"

    @property
    def prefer_layout(self) -> Optional[str]:
        return "NHWC" if self.backend is OnnxBackend.ONNX2TF else None

    def record(self) -> dict[str, Any]:
        return {"used": self.backend.value, "attempts": self.attempts}


def _onnx2tf_options(spec: ModelSpec) -> dict[str, Any]:
    """onnx2tf turns every 3-D..5-D input channels-last. Only NCHW images should be: the others keep
    their shape exactly (a [batch, tokens, features] input is not an image)."""
    keep = [t.name for t in spec.inputs if len(t.shape) >= 3 and not (len(t.shape) == 4 and t.layout is Layout.NCHW)]
    return {"keep_shape_absolutely_input_names": keep} if keep else {}


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _onnx2tf_reason(printed: str) -> Optional[str]:
    """onnx2tf prints its reason ("LpPool OP is not yet implemented.") before raising something vaguer."""
    lines = [_ANSI.sub("", l).strip() for l in printed.splitlines()]
    errors = [l.split("ERROR:", 1)[1].strip() for l in lines if "ERROR:" in l]
    errors = [e for e in errors if e and not e.startswith("input_onnx_file_path")]
    return errors[0][:300] if errors else None


def onnx_to_tf(onnx_path: Path, saved_model: Path, spec: ModelSpec, probes, reference_probe,
               backends: Sequence[OnnxBackend], say: Callable) -> OnnxToTf:
    """Try each backend in order; the first whose SavedModel computes what onnxruntime computes wins."""
    attempts: list[dict[str, Any]] = []
    for backend in backends:
        say(f"   ONNX -> TensorFlow with {backend.value}", flush=True)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                export = onnx_to_saved_model(onnx_path, saved_model, backend,
                                             _onnx2tf_options(spec) if backend is OnnxBackend.ONNX2TF else None)
            bound = bind_saved_model(saved_model, spec, probes, reference_probe,
                                     "NHWC" if backend is OnnxBackend.ONNX2TF else None)
        except (Exception, SystemExit) as err:  # onnx2tf may sys.exit() on a graph it cannot handle
            reason = _onnx2tf_reason(printed.getvalue()) if backend is OnnxBackend.ONNX2TF else None
            error = f"{reason} ({one_line(err, 200)})" if reason else one_line(err)
            attempts.append({"backend": backend.value, "ok": False, "error": error})
            say(f"   {backend.value} failed: {error}", flush=True)
            shutil.rmtree(saved_model, ignore_errors=True)
            continue
        attempts.append({"backend": backend.value, "ok": True, "error": None,
                         "max_abs_error_vs_onnxruntime": bound.max_abs_error})
        notes = list(export.notes)
        failed = [a for a in attempts if not a["ok"]]
        if failed:
            notes.append(f"ONNX -> TensorFlow: {backend.value} converted the model after "
                         + "; ".join(f"{a['backend']} failed: {a['error']}" for a in failed))
        return OnnxToTf(bound, backend, attempts, notes)
    raise UserConversionError(f"no ONNX backend could convert {onnx_path.name}: "
                              + "; ".join(f"{a['backend']}: {a['error']}" for a in attempts))
