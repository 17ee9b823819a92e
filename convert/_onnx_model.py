"""An ONNX file (from any exporter, or torch's export on the way to TensorFlow): read and checked, its
inputs and outputs as the graph declares them, and onnxruntime running it as the reference."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import numpy as np

from edgeproof._util import one_line
from edgeproof.errors import CorruptModelError, ModelFormatError

from ._model_files import require_exists, sniff
from ._user_inputs import Declared, unique_names


class OnnxModel:
    """An ONNX file: declared inputs and outputs (names made safe), and onnxruntime as the reference."""

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
        self._declared = [Declared(n, i.name, value_dims(i), _np_dtype(i)) for n, i in zip(names, graph_inputs)]
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

    @property
    def output_map(self) -> list[tuple[str, str]]:
        """(safe name, name in the graph) of every output."""
        return list(self._outputs)

    @property
    def opset(self) -> int:
        return next(o.version for o in self.proto.opset_import if o.domain in ("", "ai.onnx"))

    def save_source(self, dest: Path) -> list[str]:
        shutil.copyfile(self.path, dest / "source_model.onnx")
        return ["source_model.onnx: the ONNX model as given"]


def _starts_like_onnx(path: Path) -> bool:
    if path.is_dir():
        return False
    with open(path, "rb") as f:
        return f.read(1) == b"\x08"


def value_dims(value_info) -> tuple[Optional[int], ...]:
    """An ONNX value's dimensions, None where open (a name or unknown)."""
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)


def node_attrs(node) -> dict:
    """An ONNX node's attributes as Python values."""
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _np_dtype(value_info) -> str:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type)).name


