"""ONNX -> TensorFlow SavedModel, once for every ONNX graph (a user's file, or torch's export of a zoo or
user module): the graph is prepared for the converters, then onnx2tf (NCHW graphs become NHWC) or onnx-tf
(keeps NCHW; needs the compatibility module) turns it into a SavedModel, which is checked against the
source model on the probes; when a backend fails (or its graph computes something else) the next one is
tried, and every attempt is recorded.

Preparation writes a copy of the graph with: safe tensor names (onnx-tf breaks on `input.1`), the
open non-batch dimensions fixed from the sample data, and int64 inputs/outputs taking/returning
int32 at the graph's boundary with a Cast inside (TFLite and TF.js want int32 ids)."""
from __future__ import annotations

import contextlib
import io
import re
import shutil
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from edgeproof._spec import Layout, ModelContract, TensorSpec
from edgeproof._util import one_line
from edgeproof.errors import UserConversionError

from ._saved_model import BoundSavedModel, bind_saved_model
from ._user_inputs import Declared

INT64_SUFFIX = "__int64"


class OnnxBackend(str, Enum):
    ONNX2TF = "onnx2tf"
    ONNX_TF = "onnx-tf"


def backends_for(choice: Optional[str]) -> list[OnnxBackend]:
    """`auto` (or None): onnx2tf, then onnx-tf when onnx2tf fails; a backend's name: that one only."""
    if choice in (None, "auto"):
        return [OnnxBackend.ONNX2TF, OnnxBackend.ONNX_TF]
    return [OnnxBackend(choice)]


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

    @property
    def prefer_layout(self) -> Optional[str]:
        return "NHWC" if self.backend is OnnxBackend.ONNX2TF else None

    @property
    def converter(self) -> str:
        return self.backend.value

    def record(self) -> dict[str, Any]:
        return {"used": self.backend.value, "attempts": self.attempts}


def _onnx2tf_options(native_inputs: Sequence[TensorSpec]) -> dict[str, Any]:
    """onnx2tf turns every 3-D..5-D input channels-last. Only NCHW images should be (as the source model
    takes them, `native_inputs`): the others keep their shape exactly (a [batch, tokens, features] input
    is not an image)."""
    keep = [t.name for t in native_inputs if len(t.shape) >= 3 and not (len(t.shape) == 4 and t.layout is Layout.NCHW)]
    return {"keep_shape_absolutely_input_names": keep} if keep else {}


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _onnx2tf_reason(printed: str) -> Optional[str]:
    """onnx2tf prints its reason ("LpPool OP is not yet implemented.") before raising something vaguer."""
    lines = [_ANSI.sub("", l).strip() for l in printed.splitlines()]
    errors = [l.split("ERROR:", 1)[1].strip() for l in lines if "ERROR:" in l]
    errors = [e for e in errors if e and not e.startswith("input_onnx_file_path")]
    return errors[0][:300] if errors else None


def onnx_to_tf(onnx_path: Path, saved_model: Path, contract: ModelContract, native_inputs: Sequence[TensorSpec],
               probes, reference_probe, backends: Sequence[OnnxBackend], say: Callable) -> OnnxToTf:
    """Try each backend in order; the first whose SavedModel computes what onnxruntime computes wins."""
    attempts: list[dict[str, Any]] = []
    for backend in backends:
        say(f"   ONNX -> TensorFlow with {backend.value}", flush=True)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                export = onnx_to_saved_model(onnx_path, saved_model, backend,
                                             _onnx2tf_options(native_inputs) if backend is OnnxBackend.ONNX2TF else None)
            bound = bind_saved_model(saved_model, contract, probes, reference_probe,
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


@dataclass
class TfExport:
    saved_model: Path
    backend: OnnxBackend
    notes: list[str] = field(default_factory=list)


def onnx_to_saved_model(onnx_path: Path, out_dir: Path, backend: OnnxBackend | str,
                        onnx2tf_options: Optional[dict[str, Any]] = None) -> TfExport:
    """`onnx2tf_options`: extra keyword arguments for onnx2tf.convert (users' models: which inputs keep
    their layout)."""
    backend = OnnxBackend(backend)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    if backend is OnnxBackend.ONNX2TF:
        import onnx2tf

        onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(out_dir), non_verbose=True,
                        output_signaturedefs=True, copy_onnx_input_output_names_to_tflite=True,
                        **(onnx2tf_options or {}))
        for extra in out_dir.glob("*.tflite"):  # we convert every precision ourselves, from the SavedModel
            extra.unlink()
        return TfExport(out_dir, backend)
    import onnx

    from ._onnx_tf_compat import export_saved_model, prepare

    rep = prepare(onnx.load(str(onnx_path)))
    export_saved_model(rep, str(out_dir))
    return TfExport(out_dir, backend, ["onnx-tf keeps the ONNX (NCHW) layout at the model's edges"])


def onnx_route(model, declared: Optional[Sequence[Declared]], contract: ModelContract,
               native_inputs: Sequence[TensorSpec], root: Path, probes, reference_probe,
               backends: Sequence[OnnxBackend], say: Callable,
               names: tuple[str, str] = ("model.onnx", "saved_model")) -> OnnxToTf:
    """An OnnxModel prepared (`declared`: its inputs with open dimensions fixed; None: as the graph
    declares them) into root/model.onnx, then converted into root/saved_model by the first backend whose
    graph computes what onnxruntime computes. `names`: (ONNX file, SavedModel folder) under root."""
    import onnx

    prepared = prepare(model.proto, declared if declared is not None else model.declared_inputs(), model.output_map)
    onnx_path = root / names[0]
    onnx.save(prepared, str(onnx_path))
    return onnx_to_tf(onnx_path, root / names[1], contract, native_inputs, probes, reference_probe, backends, say)
